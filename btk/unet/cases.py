"""BraTS-format case folders: finding them, telling the 2020 and 2023 naming apart, loading them.

=========  ==========================================================  ===========
naming     files in ``<case>/``                                        labels
=========  ==========================================================  ===========
``2020``   ``<case>_t1``, ``_t1ce``, ``_t2``, ``_flair``, ``_seg``      brats2021
``2023``   ``<case>-t1n``, ``-t1c``, ``-t2w``, ``-t2f``, ``-seg``       brats2023
=========  ==========================================================  ===========

Every file ends in ``.nii.gz`` or ``.nii``. The suffixes are those of :data:`btk.modalities.FILE_SUFFIXES`;
the network always sees the modalities in the order of :data:`btk.modalities.MODALITIES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.errors import BtkError, InputError, MissingFileError
from btk.io import as_label_array, load_nifti
from btk.labels import REGIONS, LabelConvention, get_convention
from btk.modalities import FILE_SUFFIXES, MODALITIES, SEPARATORS

#: The label convention of each BraTS naming's segmentations.
NAMING_LABELS: dict[str, str] = {"2023": "brats2023", "2020": "brats2021"}


@dataclass(frozen=True)
class Case:
    """One BraTS case: its four images (in :data:`btk.modalities.MODALITIES` order) and, for training, its label map."""

    name: str
    images: tuple[Path, ...]
    segmentation: Path | None
    naming: str

    @property
    def convention(self) -> LabelConvention:
        """The label convention of the case's segmentation."""
        return get_convention(NAMING_LABELS[self.naming])


def _existing(stem: Path) -> Path | None:
    for suffix in (".nii.gz", ".nii"):
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def _file_prefix(folder: Path, separator: str, suffix: str) -> str:
    """The case name the files use: the folder's name, or else the one prefix its files share."""
    prefixes = {p.name.rsplit(f"{separator}{suffix}.nii", 1)[0] for p in folder.glob(f"*{separator}{suffix}.nii*")}
    return (
        prefixes.pop()
        if len(prefixes) == 1 and not (folder / f"{folder.name}{separator}{suffix}.nii.gz").exists()
        else folder.name
    )


def read_case(folder: Path, need_segmentation: bool) -> Case:
    """Recognise the naming of one case folder and return its files.

    The files are ``<case><separator><modality>.nii.gz`` where ``<case>`` is the folder's name, or the one
    prefix all files share.

    Raises :class:`BtkError` naming the missing files if neither naming is complete.
    """
    folder = Path(folder)
    missing_by_naming: dict[str, list[str]] = {}
    for naming, separator in SEPARATORS.items():
        suffixes = [FILE_SUFFIXES[naming][modality] for modality in MODALITIES]
        name = _file_prefix(folder, separator, suffixes[0])
        images = [_existing(folder / f"{name}{separator}{suffix}") for suffix in suffixes]
        segmentation = _existing(folder / f"{name}{separator}seg")
        missing = [f"{name}{separator}{s}.nii.gz" for s, p in zip(suffixes, images, strict=True) if p is None]
        if need_segmentation and segmentation is None:
            missing.append(f"{name}{separator}seg.nii.gz")
        if not missing:
            return Case(name, tuple(path for path in images if path is not None), segmentation, naming)
        missing_by_naming[naming] = missing
    best = min(missing_by_naming.values(), key=len)
    raise InputError(
        f"not a complete BraTS case folder: missing {', '.join(best)}",
        path=folder,
        hint="name the files like BraTS 2023 (<case>-t1n/-t1c/-t2w/-t2f/-seg.nii.gz) "
        "or BraTS 2020 (<case>_t1/_t1ce/_t2/_flair/_seg.nii.gz), one folder per case",
    )


def find_cases(data_dir: Path, need_segmentation: bool = True) -> list[Case]:
    """All case folders directly below ``data_dir``, sorted by name.

    Folders that hold no NIfTI file are skipped; a folder with some but not all files is an error.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise MissingFileError("the data folder does not exist or is not a folder", path=data_dir)
    cases = [
        read_case(folder, need_segmentation)
        for folder in sorted(p for p in data_dir.iterdir() if p.is_dir())
        if any(p.name.endswith((".nii", ".nii.gz")) for p in folder.iterdir())
    ]
    if not cases:
        raise InputError(
            "no BraTS case folders found",
            path=data_dir,
            hint="DATA_DIR must hold one folder per case, e.g. BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1n.nii.gz",
        )
    return cases


def load_images(case: Case) -> tuple[np.ndarray, nib.Nifti1Image]:
    """The four images as one ``float32`` array (channel first) and the first image (for its affine).

    Raises :class:`BtkError` if the images do not share one grid.
    """
    arrays = []
    reference = None
    for path in case.images:
        image, data = load_nifti(path)
        data = np.asarray(data, dtype=np.float32)
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise InputError(f"expected a 3-D image, found shape {data.shape}", path=path)
        if reference is None:
            reference = image
        elif data.shape != arrays[0].shape or not np.allclose(image.affine, reference.affine, atol=1e-3):
            raise InputError(
                f"this image's grid ({data.shape}) differs from {case.images[0].name}'s ({arrays[0].shape})",
                path=path,
                hint="the four modalities must be co-registered on one grid (run btk preprocess first)",
            )
        arrays.append(data)
    if reference is None:
        raise ValueError(f"case {case.name} lists no images")
    return np.stack(arrays), reference


def load_regions(case: Case, shape: tuple[int, ...]) -> np.ndarray:
    """The case's label map as nested region masks: ``uint8`` array (3, X, Y, Z) for WT, TC, ET."""
    assert case.segmentation is not None
    _, data = load_nifti(case.segmentation)
    labels = as_label_array(data, source=case.segmentation)
    if labels.shape != shape:
        raise InputError(
            f"the segmentation's shape {labels.shape} differs from the images' {shape}", path=case.segmentation
        )
    convention = case.convention
    try:
        convention.validate(labels, source=case.segmentation)
    except BtkError as error:  # its hint names --labels, an option of other commands, not of `btk train`
        raise error.replace(
            hint=(
                "the file names set the convention: BraTS 2023 naming (-seg) means labels 1, 2, 3, BraTS 2020 naming "
                "(_seg) labels 1, 2, 4; convert the label map, or name the case's files in the naming its labels "
                "follow"
            )
        ) from None
    return np.stack([convention.region_mask(labels, region) for region in REGIONS]).astype(np.uint8)
