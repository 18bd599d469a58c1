"""Reading images and label maps with clear errors, and writing outputs atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from btk.errors import BtkError, unwritable_folder

try:  # ISA-L (de)compresses gzip several times faster than zlib
    from isal.igzip import compress as gzip_compress
    from isal.igzip import decompress as gunzip
except ImportError:  # pragma: no cover - platforms without an isal wheel
    from gzip import compress as gzip_compress
    from gzip import decompress as gunzip

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def is_nifti(path: str | Path) -> bool:
    """Whether a file name ends in ``.nii`` or ``.nii.gz``."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(path: str | Path) -> str:
    """The file name without ``.nii.gz`` / ``.nii``: ``case/seg.nii.gz`` -> ``seg``."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_nifti(path: str | Path, *, copy: bool = True) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Read a NIfTI file completely, so truncated or corrupt files fail here, not later.

    Returns the image and its voxel data (in the file's stored type, scaling applied).

    Args:
        path: A ``.nii`` or ``.nii.gz`` file.
        copy: If false, unscaled voxel data come as a read-only view of the decompressed file, which
            saves one copy of the volume for callers that only read it.
    """
    path = Path(path)
    if not path.exists():
        raise BtkError("file not found", path=path, hint="check the path")
    if path.is_dir():
        raise BtkError("is a folder, expected a NIfTI file (.nii or .nii.gz)", path=path)
    if not is_nifti(path):
        raise BtkError("not a NIfTI file name (expected .nii or .nii.gz)", path=path)
    try:
        image, raw = _read_nifti(path)
        data = np.asanyarray(image.dataobj) if copy else _voxel_view(image, raw)
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError,
            nib.wrapstruct.WrapStructError, nib.spatialimages.HeaderDataError) as error:
        raise BtkError(
            f"cannot read the image ({error.__class__.__name__}: {error}); the file is corrupt or truncated",
            path=path,
            hint="re-export or copy the file again",
        ) from None
    return image, data


def _read_nifti(path: Path) -> tuple[nib.Nifti1Image, bytes]:
    """Read a whole NIfTI-1 or NIfTI-2 file into memory, decompressing with ISA-L when available.

    Returns the image and the file's uncompressed bytes (which the image's data are read from).
    """
    raw = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        raw = gunzip(raw)
    if len(raw) < 4:
        raise ValueError("the file is too short to hold a NIfTI header")
    header_size = int.from_bytes(raw[:4], "little")
    image_class = nib.Nifti2Image if header_size in (540, 540 << 24) else nib.Nifti1Image
    return image_class.from_bytes(raw), raw


def _voxel_view(image: nib.Nifti1Image, raw: bytes) -> np.ndarray:
    """The voxel data as a read-only view of ``raw`` when they need no scaling, else a scaled copy."""
    proxy = image.dataobj  # where nibabel found the data: the header's vox_offset may be 0 in .nii files
    if proxy.slope != 1.0 or proxy.inter != 0.0:
        return np.asanyarray(proxy)
    shape, dtype, offset = proxy.shape, proxy.dtype, int(proxy.offset)
    count = int(np.prod(shape))
    if len(raw) < offset + count * dtype.itemsize:
        raise ValueError("the file ends before its voxel data do")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape, order="F")


def load_label_map(path: str | Path, *, copy: bool = True) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Read a segmentation: a 3-D image of whole, non-negative numbers, returned as ``uint8``.

    A 4-D image with a single volume is accepted and squeezed; anything else is an error. ``copy``: as
    for :func:`load_nifti`.
    """
    image, data = load_nifti(path, copy=copy)
    data = as_label_array(data, source=path)
    return image, data


def as_label_array(data: np.ndarray, source: str | Path | None = None) -> np.ndarray:
    """Check that an array is a 3-D label map and return it as ``uint8``."""
    data = np.asarray(data)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise BtkError(
            f"a segmentation must be a 3-D image, this one has shape {data.shape}",
            path=source,
            hint="pass one 3-D label map per candidate",
        )
    if data.dtype.kind == "b":
        return data.astype(np.uint8, copy=False)
    if data.dtype.kind not in "iuf":
        raise BtkError(f"voxel type {data.dtype} is not numeric", path=source)
    if data.dtype.kind == "f":
        if not np.isfinite(data).all():
            raise BtkError("the segmentation contains NaN or infinite values", path=source)
        if not np.array_equal(data, np.round(data)):
            raise BtkError(
                "the segmentation holds non-integer values; it looks like a probability map or an image",
                path=source,
                hint="threshold it into a label map first",
            )
    if data.min() < 0 or data.max() > 255:
        raise BtkError(
            f"label values must lie between 0 and 255, found {data.min()} to {data.max()}", path=source
        )
    return data.astype(np.uint8, copy=False)


def sha256(path: str | Path) -> str:
    """Hex SHA-256 checksum of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Readers never see a half-written file, and a failure leaves nothing behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable_folder(path.parent, error, creating=True) from None
    suffix = "".join(path.suffixes) or ".tmp"
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".partial{suffix}", dir=path.parent)
    except OSError as error:
        raise unwritable_folder(path.parent, error) from None
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.chmod(temporary_path, 0o666 & ~_umask())
        os.replace(temporary_path, path)
    finally:
        temporary_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: gzip level of written ``.nii.gz`` files: the fastest; label maps and masks compress well even so.
GZIP_LEVEL = 1


def save_nifti(image: nib.Nifti1Image, path: str | Path) -> None:
    """Write a NIfTI image atomically (``.nii.gz`` is gzip-compressed, ``.nii`` not)."""
    raw = image.to_bytes()
    if str(path).lower().endswith(".gz"):
        raw = gzip_compress(raw, compresslevel=GZIP_LEVEL)
    with atomic_path(path) as temporary:
        temporary.write_bytes(raw)


def save_label_map(data: np.ndarray, reference: nib.Nifti1Image, path: str | Path) -> None:
    """Write a ``uint8`` label map atomically with the affine and header of ``reference``."""
    header = reference.header.copy()
    header.set_data_dtype(np.uint8)
    header["scl_slope"], header["scl_inter"] = 1, 0
    image = nib.Nifti1Image(np.asarray(data, dtype=np.uint8), reference.affine, header)
    image.header["cal_min"], image.header["cal_max"] = 0, int(np.max(data, initial=0))
    save_nifti(image, path)


def save_json(payload: Any, path: str | Path) -> None:
    """Write JSON atomically (indented, UTF-8)."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def check_writable_output(path: str | Path, force: bool) -> Path:
    """Refuse to overwrite an existing output unless ``force``; return the path."""
    path = Path(path)
    if path.exists() and not force:
        raise BtkError("the output exists already", path=path, hint="pass --force to overwrite it")
    if path.is_dir():
        raise BtkError("the output path is a folder, expected a file name", path=path)
    return path
