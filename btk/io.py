"""Reading images and label maps with clear errors, and writing outputs atomically."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from btk import __version__
from btk.deid import guard
from btk.errors import InputError, MissingFileError, OutputError, OutputExistsError, unwritable_folder
from btk.nifti import FREE_TEXT_FIELDS, NiftiHeader, read_nifti, read_nifti_header
from btk.staging import hold_file, remove_abandoned

if TYPE_CHECKING:  # nibabel is imported where it is used: reading label maps and writing them needs none of it
    import nibabel as nib

try:  # ISA-L (de)compresses gzip several times faster than zlib
    from isal.igzip import compress as gzip_compress
    from isal.igzip import decompress as gunzip
except ImportError:  # pragma: no cover - platforms without an isal wheel
    from gzip import compress as gzip_compress  # type: ignore[assignment]  # isal types mtime differently
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


def open_nifti(path: str | Path) -> nib.Nifti1Image:
    """Open a NIfTI file lazily: its header is read, its voxel data stay on disk until asked for.

    Args:
        path: A ``.nii`` or ``.nii.gz`` file.

    Returns:
        The image: a ``nibabel.Nifti1Image``, or its subclass ``nibabel.Nifti2Image`` for a NIfTI-2 file.

    Raises:
        nibabel.filebasedimages.ImageFileError: If nibabel reads the file as another kind of image.
    """
    import nibabel as nib

    image = nib.load(str(path))
    if not isinstance(image, nib.Nifti1Image):
        raise nib.filebasedimages.ImageFileError(f"{path} is not a NIfTI image but {type(image).__name__}")
    return image


def load_nifti(path: str | Path, *, copy: bool = True) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Read a NIfTI file completely, so truncated or corrupt files fail here, not later.

    Returns the image and its voxel data (in the file's stored type, scaling applied).

    Args:
        path: A ``.nii`` or ``.nii.gz`` file.
        copy: If false, unscaled voxel data come as a read-only view of the decompressed file, which
            saves one copy of the volume for callers that only read it.
    """
    import nibabel as nib

    path = _readable_nifti_path(path)
    with _unreadable_image(path, nib.filebasedimages.ImageFileError, nib.wrapstruct.WrapStructError):
        image, raw = _read_nifti(path)
        data = np.asanyarray(image.dataobj) if copy else _voxel_view(image, raw)
    return image, data


def read_label_map(path: str | Path) -> tuple[NiftiHeader, np.ndarray]:
    """Read a segmentation without nibabel (:mod:`btk.nifti`): its header and its voxels as ``uint8``.

    The same checks and messages as :func:`load_label_map`; the voxels are a read-only view when the file
    holds unscaled ``uint8`` labels. For commands that must start fast (``btk fuse``).
    """
    path = _readable_nifti_path(path)
    with _unreadable_image(path):
        header, data = read_nifti(path, decompress=gunzip)
    return header, as_label_array(data, source=path)


def _readable_nifti_path(path: str | Path) -> Path:
    """``path``, if it names an existing NIfTI file; else the error saying what it is instead."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError("file not found", path=path, hint="check the path")
    if path.is_dir():
        raise InputError("is a folder, expected a NIfTI file (.nii or .nii.gz)", path=path)
    if not is_nifti(path):
        raise InputError("not a NIfTI file name (expected .nii or .nii.gz)", path=path)
    return path


@contextlib.contextmanager
def _unreadable_image(path: Path, *errors: type[Exception]) -> Iterator[None]:
    """Turn a failure to read or decode an image into the :class:`InputError` saying the file is damaged."""
    caught: tuple[type[Exception], ...] = (OSError, EOFError, ValueError, zlib.error, *errors)
    try:
        yield
    except caught as error:
        raise InputError(
            f"cannot read the image ({error.__class__.__name__}: {error}); the file is corrupt or truncated",
            path=path,
            hint="re-export or copy the file again",
        ) from None


def _read_nifti(path: Path) -> tuple[nib.Nifti1Image, bytes]:
    """Read a whole NIfTI-1 or NIfTI-2 file into memory, decompressing with ISA-L when available.

    Returns the image and the file's uncompressed bytes (which the image's data are read from).
    """
    import nibabel as nib

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
    import nibabel as nib

    proxy = image.dataobj  # where nibabel found the data: the header's vox_offset may be 0 in .nii files
    if not isinstance(proxy, nib.arrayproxy.ArrayProxy) or proxy.slope != 1.0 or proxy.inter != 0.0:
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
        raise InputError(
            f"a segmentation must be a 3-D image, this one has shape {data.shape}",
            path=source,
            hint="pass one 3-D label map per candidate",
        )
    if data.dtype.kind == "b" or data.dtype == np.uint8:
        return data.astype(np.uint8, copy=False)
    if data.dtype.kind not in "iuf":
        raise InputError(f"voxel type {data.dtype} is not numeric", path=source)
    # One cast and one comparison check everything: a NaN, an infinity, a fraction or a value outside 0-255
    # never survives the cast to uint8 unchanged. Only a map that fails is looked at again, to say why.
    with np.errstate(invalid="ignore"):
        labels = data.astype(np.uint8)
    if not np.array_equal(labels, data):
        _refuse_label_values(data, source)
    return labels


def _refuse_label_values(data: np.ndarray, source: str | Path | None) -> None:
    """Raise the :class:`InputError` saying why ``data`` (numeric, not all uint8 values) is no label map."""
    if data.dtype.kind == "f":
        if not np.isfinite(data).all():
            raise InputError("the segmentation contains NaN or infinite values", path=source)
        if not np.array_equal(data, np.round(data)):
            raise InputError(
                "the segmentation holds non-integer values; it looks like a probability map or an image",
                path=source,
                hint="threshold it into a label map first",
            )
    raise InputError(f"label values must lie between 0 and 255, found {data.min()} to {data.max()}", path=source)


def sha256(path: str | Path) -> str:
    """Hex SHA-256 checksum of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Errors meaning that the file system holding an output is full (or the user's quota is used up).
DISK_FULL_ERRORS = (errno.ENOSPC, errno.EDQUOT)


def disk_full(folder: str | Path) -> OutputError:
    """The error for an output that does not fit on its disk."""
    return OutputError(
        "no space left on the device (the disk or your quota is full); nothing was written",
        path=folder,
        hint="free some space there, or choose an output folder on another disk",
        code=errno.ENOSPC,
    )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Readers never see a half-written file, and a failure leaves nothing behind; a full disk is a
    :class:`BtkError`. Text files (JSON, CSV, HTML, text) are checked for the patient identifiers this
    process has read, which are redacted. The temporary file is locked while in use, so one that a killed
    process left behind (``.<name>.<random>.partial...``) is removed by the next write of ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable_folder(path.parent, error, creating=True) from None
    remove_abandoned(path.parent, f".{path.name}.", ".partial")
    suffix = "".join(path.suffixes) or ".tmp"
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".partial{suffix}", dir=path.parent)
    except OSError as error:
        raise unwritable_folder(path.parent, error) from None
    os.close(handle)
    temporary_path = Path(temporary)
    lock = hold_file(temporary_path)
    try:
        yield temporary_path
        _redact_text_file(temporary_path, path)
        os.chmod(temporary_path, 0o666 & ~_umask())
        os.replace(temporary_path, path)
    except OSError as error:
        if error.errno in DISK_FULL_ERRORS:
            raise disk_full(path.parent) from None
        raise
    finally:
        temporary_path.unlink(missing_ok=True)
        os.close(lock)


#: Suffixes of the text files whose content the identifier guard checks before they are published.
TEXT_SUFFIXES = (".json", ".csv", ".tsv", ".html", ".htm", ".txt", ".log", ".md", ".ctbl", ".xml")


def _redact_text_file(temporary: Path, path: Path) -> None:
    """Redact registered patient identifiers from a text file about to be published as ``path``."""
    from btk.console import logger

    if not guard.identifiers or not path.name.lower().endswith(TEXT_SUFFIXES) or not temporary.is_file():
        return
    text = temporary.read_text(encoding="utf-8", errors="surrogateescape")
    if not guard.contains(text):
        return
    redacted = guard.redact(text)
    if path.suffix.lower() == ".json":
        with contextlib.suppress(ValueError):  # only the strings: keys and numbers are btk's, not the patient's
            redacted = json.dumps(guard.redact_data(json.loads(text)), indent=2) + "\n"
    temporary.write_text(redacted, encoding="utf-8", errors="surrogateescape")
    logger.warning("%s: a patient identifier was about to be written; it was redacted", path.name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: gzip level of written ``.nii.gz`` files: the fastest; label maps and masks compress well even so.
GZIP_LEVEL = 1


#: What btk writes into the ``descrip`` header field of every NIfTI file it writes: its mark of ownership
#: (``--force`` replaces only files that carry it), and no free text of an input's header reaches an output.
NIFTI_STAMP = f"btk {__version__}"


def holds_free_text(header: nib.Nifti1Header) -> bool:
    """Whether a NIfTI header carries free text: a non-empty text field, or any header extension."""
    fields = ("descrip", *FREE_TEXT_FIELDS)
    return bool(header.extensions) or any(bytes(header[key]).strip(b"\0 ") for key in fields if key in header)


def scrub_free_text(header: nib.Nifti1Header, description: bytes = b"") -> None:
    """Empty a NIfTI header's free-text fields and drop its extensions (which may hold a whole DICOM header);
    ``descrip`` becomes ``description``. The geometry, data type and scaling are left as they are."""
    header["descrip"] = description
    for key in FREE_TEXT_FIELDS:
        if key in header:
            header[key] = b""
    header.extensions.clear()


def save_nifti(image: nib.Nifti1Image, path: str | Path) -> None:
    """Write a NIfTI image atomically (``.nii.gz`` is gzip-compressed, ``.nii`` not).

    Nothing of an input's header text reaches the file: the ``descrip`` field is set to :data:`NIFTI_STAMP`,
    the other free-text fields are emptied and header extensions are dropped (:func:`scrub_free_text`).
    """
    scrub_free_text(image.header, NIFTI_STAMP.encode())
    write_nifti_bytes(image.to_bytes(), path)


def write_nifti_bytes(raw: bytes, path: str | Path) -> None:
    """Write a whole NIfTI file's bytes atomically, gzip-compressed when ``path`` ends in ``.gz``."""
    if str(path).lower().endswith(".gz"):
        raw = gzip_compress(raw, compresslevel=GZIP_LEVEL)
    with atomic_path(path) as temporary:
        temporary.write_bytes(raw)


def save_label_map(data: np.ndarray, reference: nib.Nifti1Image | NiftiHeader, path: str | Path) -> None:
    """Write a ``uint8`` label map atomically with the geometry and header of ``reference`` (an image, or a
    header read by :func:`read_label_map`); no scaling, ``cal_max`` the highest label, the header's text as
    :func:`save_nifti` leaves it."""
    header = reference if isinstance(reference, NiftiHeader) else NiftiHeader.of_image(reference)
    write_nifti_bytes(header.label_map_file(data, NIFTI_STAMP.encode()), path)


def save_float_image(data: np.ndarray, reference: nib.Nifti1Image, path: str | Path) -> None:
    """Write a ``float32`` image atomically with the affine and header of ``reference`` (no scaling)."""
    import nibabel as nib

    header = reference.header.copy()
    header.set_data_dtype(np.float32)
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), reference.affine, header)
    image.header["scl_slope"], image.header["scl_inter"] = 1, 0
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


def require_nifti_name(path: Path | None) -> Path | None:
    """Check that an output image or label map is named ``*.nii.gz`` or ``*.nii`` (btk reads back only those).

    Meant for the ``-o`` options of the command line (``typer.Option(callback=require_nifti_name)``), so the
    mistake is caught before any work; ``None`` (an option not given) passes.
    """
    if path is not None and not is_nifti(path):
        raise InputError(
            "the output name must end in .nii.gz or .nii",
            path=path,
            hint=f"e.g. {Path(path).with_name(Path(path).name + '.nii.gz')}",
        )
    return path


def require_grid(
    image: nib.Nifti1Image,
    shape: tuple[int, ...],
    affine: np.ndarray,
    *,
    path: str | Path,
    grid: str,
    hint: str,
    tolerance_mm: float = 1e-2,
) -> None:
    """Check that ``image`` (read from ``path``) lies on a voxel grid: the same shape and affine.

    Args:
        image: The image (only its header is used).
        shape, affine: The grid.
        path: The image's file, for the message.
        grid: The grid's name in the message, e.g. "the exam's BraTS grid".
        hint: What to do about a mismatch.
        tolerance_mm: How far any affine entry may differ (mm, or mm per voxel).
    """
    found = tuple(int(n) for n in image.shape[:3])
    if found != tuple(shape):
        raise InputError(f"the image is not on {grid}: shape {found}, expected {tuple(shape)}", path=path, hint=hint)
    difference = float(np.max(np.abs(np.asarray(image.affine) - np.asarray(affine))))
    if difference > tolerance_mm:
        raise InputError(
            f"the image is not on {grid}: it has the right shape, but its voxel-to-world mapping (affine) differs "
            f"by up to {difference:.3g} mm (flipped, shifted or rotated axes); its affine is\n"
            f"{np.array2string(np.asarray(image.affine), precision=3)}\n"
            f"expected\n{np.array2string(np.asarray(affine), precision=3)}",
            path=path,
            hint=hint,
        )


#: Marker files of the folders btk writes: name -> the key that identifies its JSON content as btk's.
FOLDER_MARKERS = {
    "provenance.json": "btk_preprocess",
    "conversion.json": "btk_convert",
    "synthesis.json": "btk_synthesis",
    "evaluation_report.json": "btk_evaluation_report",
    "clinical.json": "btk_clinical",
    "compare.json": "btk_compare",
}


def written_by_btk(path: str | Path) -> bool:
    """Whether btk wrote ``path``: a NIfTI file carrying :data:`NIFTI_STAMP`, or a folder with a btk marker.

    The folder markers are :data:`FOLDER_MARKERS` (``btk preprocess``, ``btk convert``, ``btk synthesise``,
    ``btk clinical`` and ``btk compare`` outputs).
    Anything else (a user's file or folder) is not btk's, and ``--force`` must never replace it.
    """
    path = Path(path)
    if path.is_symlink():
        return False
    if path.is_dir():
        return any(_json_has_key(path / name, key) for name, key in FOLDER_MARKERS.items())
    if path.is_file() and is_nifti(path):
        try:
            description = read_nifti_header(path).description
        except Exception:  # an unreadable file is not recognisably btk's
            return False
        return description.startswith(b"btk ")
    return False


def _json_has_key(path: Path, key: str) -> bool:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and key in content


def guard_output(
    output: str | Path,
    inputs: Iterable[str | Path | None] = (),
    *,
    force: bool = False,
    folder: bool = False,
    replaceable: Callable[[Path], bool] = written_by_btk,
) -> Path:
    """The one check every command makes before it writes ``output``: call it first, before any work.

    Refuses (with a :class:`BtkError`, exit code 2):

    - an output that is one of ``inputs``, holds one of them or lies inside one of them (paths resolved,
      symbolic links followed): no command writes into, replaces or deletes its own inputs;
    - an existing output without ``force`` (unless it is an empty folder and ``folder``);
    - an existing output that btk did not write (``replaceable`` says which it did), even with ``force``:
      ``--force`` replaces btk's own outputs only, never a user's file or folder.

    Args:
        output: The file or folder the command will write.
        inputs: Every file and folder the command reads (``None`` entries are skipped).
        force: ``--force`` was given.
        folder: ``output`` is a folder (else a file; an existing folder is then refused).
        replaceable: Recognises btk's own outputs; default :func:`written_by_btk`. Commands whose outputs it
            does not know (CSV, JSON, run folders) pass their own test.

    Returns:
        ``output`` as a :class:`~pathlib.Path`.

    Example:
        >>> guard_output(args.output, [args.segmentation, args.exam], force=args.force)
    """
    output = Path(output)
    refuse_overlap(output, inputs)
    check_replaceable(output, force, folder=folder, replaceable=replaceable)
    return output


def refuse_overlap(output: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an ``output`` that is, holds, or lies inside one of ``inputs`` (see :func:`guard_output`)."""
    output = Path(output)
    target = output.resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if target == source or _same_file(target, source):
            problem = "the output is one of the command's inputs"
        elif source in target.parents:
            problem = f"the output lies inside the input {given}"
        elif target in source.parents:
            problem = f"the output would hold the input {given}"
        else:
            continue
        raise OutputError(
            f"{problem}; btk never writes into, replaces or deletes its inputs",
            path=output,
            hint="choose an output outside every input",
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_replaceable(
    output: str | Path, force: bool, *, folder: bool = False, replaceable: Callable[[Path], bool] = written_by_btk
) -> None:
    """Refuse an existing ``output`` unless ``force`` and btk wrote it (see :func:`guard_output`)."""
    output = Path(output)
    if not output.exists() and not output.is_symlink():
        return
    if folder and output.is_dir() and not output.is_symlink() and not any(output.iterdir()):
        return  # an empty folder: nothing to lose
    if not folder and output.is_dir():
        raise OutputError("the output path is a folder, expected a file name", path=output)
    if folder and not output.is_dir():
        raise OutputError(
            "the output path is a file, expected a folder; btk never replaces it",
            path=output,
            hint="choose a new output folder",
        )
    kind = "folder" if output.is_dir() else "file"
    if not replaceable(output):
        raise OutputExistsError(
            f"the output exists and is not a {kind} btk wrote; btk never replaces or deletes a {kind} it did not write",
            path=output,
            hint=f"choose a new output name, or move this {kind} away yourself",
        )
    if not force:
        raise OutputExistsError(
            "the output exists already (written by btk before)", path=output, hint="pass --force to replace it"
        )
