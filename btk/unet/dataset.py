"""Training cases prepared once: normalised, cropped to the brain and stored as memory-mapped arrays.

BraTS training sets do not fit in memory as float32 volumes, so each case is written once to
``RUN_DIR/cache/<case>/`` (``images.npy`` float16, ``regions.npy`` uint8, ``tumour.npy`` voxel indices)
and read back with ``mmap_mode="r"``: a patch touches only the pages it needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from btk.arrays import bounding_box
from btk.console import logger, progress
from btk.errors import unwritable_folder
from btk.io import atomic_path, save_json
from btk.unet.cases import Case, load_images, load_regions
from btk.unet.normalise import brain_mask, normalise

#: Version of the cache layout; a cache written by another version is rebuilt.
CACHE_VERSION = 1


@dataclass
class PreparedCase:
    """A normalised case cropped to its brain: images (4, X, Y, Z), regions (3, X, Y, Z), tumour voxels."""

    name: str
    images: np.ndarray
    regions: np.ndarray
    tumour: np.ndarray


def prepare_case(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Load, normalise and crop one case to the box around its brain: (images float16, regions uint8)."""
    images, _ = load_images(case)
    regions = load_regions(case, images.shape[1:])
    mask = brain_mask(images)
    box = (slice(None), *bounding_box(mask | regions[0].astype(bool), margin=2))
    return normalise(images, mask)[box].astype(np.float16), regions[box]


def _save_array(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.save(handle, array)


def _read_cache(name: str, folder: Path, expected: dict) -> PreparedCase | None:
    """The case cached in ``folder``, mapped into memory; None if the cache is stale, incomplete or damaged
    (the case is then prepared again)."""
    try:
        if json.loads((folder / "cache.json").read_text(encoding="utf-8")) != expected:
            return None
        images, regions, tumour = (
            np.load(folder / f"{part}.npy", mmap_mode="r", allow_pickle=False)
            for part in ("images", "regions", "tumour")
        )
    except (OSError, ValueError, EOFError):  # missing, truncated or not .npy/JSON (JSONDecodeError is a ValueError)
        return None
    consistent = (
        images.ndim == 4
        and images.shape[0] == 4
        and images.dtype == np.float16
        and regions.shape == (3, *images.shape[1:])
        and regions.dtype == np.uint8
        and tumour.ndim == 1
        and tumour.dtype == np.int64
        and (tumour.size == 0 or 0 <= int(tumour.min()) <= int(tumour.max()) < regions[0].size)
    )
    return PreparedCase(name, images, regions, tumour) if consistent else None


def load_prepared(cases: list[Case], cache_dir: Path) -> list[PreparedCase]:
    """Prepare every case (reusing the cache when it is complete) and map it into memory."""
    prepared = []
    with progress() as bar:
        task = bar.add_task("Preparing cases", total=len(cases))
        for case in cases:
            if case.segmentation is None:
                raise ValueError(f"case {case.name} has no segmentation; training needs one")
            folder = cache_dir / case.name
            expected = {
                "version": CACHE_VERSION,
                "images": [str(p.resolve()) for p in case.images],
                "mtimes": [p.stat().st_mtime_ns for p in (*case.images, case.segmentation)],
            }
            cached = _read_cache(case.name, folder, expected)
            if cached is None:
                logger.debug("Caching %s", case.name)
                images, regions = prepare_case(case)
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise unwritable_folder(cache_dir.parent, error, creating=True) from None
                _save_array(images, folder / "images.npy")
                _save_array(regions, folder / "regions.npy")
                _save_array(np.flatnonzero(regions[0]).astype(np.int64), folder / "tumour.npy")
                save_json(expected, folder / "cache.json")
                cached = _read_cache(case.name, folder, expected)
                assert cached is not None, f"the cache just written for {case.name} does not read back"
            prepared.append(cached)
            bar.advance(task)
    return prepared
