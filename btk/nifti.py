"""NIfTI files read and written with numpy alone, for the commands that must start fast.

``btk fuse`` reads a handful of label maps and writes one; importing nibabel (which imports SciPy and pydicom
with it) takes longer than the fusion itself. This module reads a single-file NIfTI-1 or NIfTI-2 image
(``.nii`` or ``.nii.gz``) into its header and its voxels, computes the voxel-to-world affine as the NIfTI
standard says (sform, else qform, else the Analyze fall-back, as nibabel does), and writes a ``uint8`` label
map with a reference file's header: the same bytes :func:`btk.io.save_label_map` writes through nibabel
(``tests/test_nifti.py`` checks both on real and constructed files).

>>> header, voxels = read_nifti("candidate.nii.gz")      # voxels: a read-only view when unscaled
>>> header.shape, header.affine
>>> raw = header.label_map_file(fused, b"btk")          # a whole .nii file's bytes, for btk.io's writers
>>> read_nifti_header("fused.nii.gz").description        # b"btk": only the header is read

Everything else in btk reads images through nibabel (:mod:`btk.io`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

#: NIfTI data type codes of the numeric types btk reads (complex and RGB images are not label maps).
DATA_TYPES: Final = {
    2: np.uint8,
    4: np.int16,
    8: np.int32,
    16: np.float32,
    64: np.float64,
    256: np.int8,
    512: np.uint16,
    768: np.uint32,
    1024: np.int64,
    1280: np.uint64,
}

#: Where each header field lies: offset and ``struct`` format, per NIfTI version.
_FIELDS: Final[dict[int, dict[str, tuple[int, str]]]] = {
    1: {
        "data_type": (4, "10s"),
        "db_name": (14, "18s"),
        "dim": (40, "8h"),
        "datatype": (70, "h"),
        "bitpix": (72, "h"),
        "pixdim": (76, "8f"),
        "vox_offset": (108, "f"),
        "scl_slope": (112, "f"),
        "scl_inter": (116, "f"),
        "cal_max": (124, "f"),
        "cal_min": (128, "f"),
        "descrip": (148, "80s"),
        "aux_file": (228, "24s"),
        "qform_code": (252, "h"),
        "sform_code": (254, "h"),
        "quatern": (256, "6f"),
        "srow": (280, "12f"),
        "intent_name": (328, "16s"),
        "magic": (344, "4s"),
    },
    2: {
        "magic": (4, "8s"),
        "datatype": (12, "h"),
        "bitpix": (14, "h"),
        "dim": (16, "8q"),
        "pixdim": (104, "8d"),
        "vox_offset": (168, "q"),
        "scl_slope": (176, "d"),
        "scl_inter": (184, "d"),
        "cal_max": (192, "d"),
        "cal_min": (200, "d"),
        "descrip": (240, "80s"),
        "aux_file": (320, "24s"),
        "qform_code": (344, "i"),
        "sform_code": (348, "i"),
        "quatern": (352, "6d"),
        "srow": (400, "12d"),
        "intent_name": (508, "16s"),
    },
}
_HEADER_SIZES: Final = {1: 348, 2: 540}
_SINGLE_FILE_MAGIC: Final = {1: b"n+1\0", 2: b"n+2\0\r\n\x1a\n"}
#: The free-text fields of NIfTI-1 and NIfTI-2 headers besides ``descrip`` (converters and other tools write
#: names, dates and protocol notes there); btk empties them in everything it writes.
FREE_TEXT_FIELDS: Final = ("aux_file", "intent_name", "db_name", "data_type")


class NiftiFormatError(ValueError):
    """The bytes are not a NIfTI image btk can read (the message says why)."""


@dataclass(frozen=True)
class NiftiHeader:
    """A NIfTI-1 or NIfTI-2 header as stored in its file, with the fields btk uses decoded.

    Attributes:
        raw: The header's bytes as stored (348 or 540, in the file's byte order), extensions not included.
        version: 1 or 2.
        endian: ``"<"`` or ``">"``.
        shape: The image's shape (``dim[1:dim[0]+1]``).
        dtype: The stored voxel type.
        voxel_offset: Where the voxels start in the (uncompressed) file.
        slope: The scaling slope (1 when the header says none).
        inter: The scaling intercept.
        affine: The voxel-to-world affine (RAS, mm): the sform if coded, else the qform, else the Analyze
            fall-back, as nibabel computes it.
    """

    raw: bytes
    version: int
    endian: str
    shape: tuple[int, ...]
    dtype: np.dtype
    voxel_offset: int
    slope: float
    inter: float
    affine: np.ndarray

    @classmethod
    def parse(cls, data: bytes) -> NiftiHeader:
        """Decode the header at the start of a single-file NIfTI image's (uncompressed) bytes.

        Raises:
            NiftiFormatError: If the bytes are no NIfTI-1 or NIfTI-2 single file of a numeric type.
        """
        version, endian = _version_and_endian(data)
        raw = data[: _HEADER_SIZES[version]]
        fields = _Fields(raw, version, endian)
        if fields["magic"] != _SINGLE_FILE_MAGIC[version]:
            raise NiftiFormatError("not a single-file NIfTI image (its magic string is not n+1 or n+2)")
        dim = fields["dim"]
        if not 1 <= dim[0] <= 7 or any(n < 1 for n in dim[1 : dim[0] + 1]):
            raise NiftiFormatError(f"the header's dimensions {list(dim)} are invalid")
        code = fields["datatype"]
        if code not in DATA_TYPES:
            raise NiftiFormatError(f"voxel type code {code} is not a real number type")
        slope, inter = float(fields["scl_slope"]), float(fields["scl_inter"])
        if not np.isfinite(slope) or slope == 0:  # the standard: no scaling
            slope, inter = 1.0, 0.0
        shape = tuple(int(n) for n in dim[1 : dim[0] + 1])
        return cls(
            raw=raw,
            version=version,
            endian=endian,
            shape=shape,
            dtype=np.dtype(DATA_TYPES[code]).newbyteorder("<" if endian == "<" else ">"),
            voxel_offset=_voxel_offset(fields["vox_offset"], version),
            slope=slope,
            inter=inter if np.isfinite(inter) else 0.0,
            affine=_affine(fields, shape),
        )

    @classmethod
    def of_image(cls, image: Any) -> NiftiHeader:
        """The header a ``nibabel.Nifti1Image`` (or ``Nifti2Image``) held in memory would be written with.

        The image is not changed: its header is brought up to date with its affine and shape in a copy.
        """
        current = type(image)(image.dataobj, image.affine, image.header)
        current.update_header()
        data = bytes(current.header.binaryblock)
        version, _ = _version_and_endian(data)
        return cls.parse(data + b"\0" * (_voxel_offset(0, version) - len(data)))

    @classmethod
    def unit_grid(cls, shape: tuple[int, ...]) -> NiftiHeader:
        """The header of a ``uint8`` image of ``shape`` on the unit grid (identity affine), as nibabel makes it:
        for label maps given as bare arrays."""
        import nibabel as nib

        return cls.of_image(nib.Nifti1Image(np.zeros(shape, np.uint8), np.eye(4)))

    @property
    def zooms(self) -> tuple[float, ...]:
        """The voxel sizes along the image's axes (``pixdim[1:dim[0]+1]``)."""
        pixdim = _Fields(self.raw, self.version, self.endian)["pixdim"]
        return tuple(float(abs(z)) for z in pixdim[1 : 1 + len(self.shape)])

    @property
    def description(self) -> bytes:
        """The ``descrip`` field, up to its first NUL byte."""
        return bytes(_Fields(self.raw, self.version, self.endian)["descrip"]).split(b"\0", 1)[0]

    def voxels(self, data: bytes) -> np.ndarray:
        """The voxels of the file whose bytes are ``data``: a read-only view unless scaled (then ``float64``).

        Raises:
            NiftiFormatError: If the file ends before its voxels do.
        """
        count = int(np.prod(self.shape))
        if len(data) < self.voxel_offset + count * self.dtype.itemsize:
            raise NiftiFormatError("the file ends before its voxel data do")
        array = np.frombuffer(data, self.dtype, count, self.voxel_offset).reshape(self.shape, order="F")
        if self.slope == 1.0 and self.inter == 0.0:
            return array
        return array.astype(np.float64) * self.slope + self.inter

    def label_map_file(self, labels: np.ndarray, description: bytes) -> bytes:
        """A whole uncompressed NIfTI file holding ``labels`` (3-D, ``uint8``) with this header's geometry.

        As :func:`btk.io.save_label_map` writes it: ``uint8``, no scaling, ``cal_min``/``cal_max`` 0 and the
        highest label, ``descrip`` set to ``description``, the other free-text fields empty, no extensions.
        """
        labels = np.asarray(labels, dtype=np.uint8)
        fields = _Fields(bytearray(self.raw), self.version, self.endian)
        if labels.shape != self.shape:  # a squeezed 4-D image: nibabel resets the unused dimensions
            fields["dim"] = (labels.ndim, *labels.shape, *[1] * (7 - labels.ndim))
            fields["pixdim"] = (*fields["pixdim"][: labels.ndim + 1], *[1.0] * (7 - labels.ndim))
        fields["datatype"], fields["bitpix"] = 2, 8
        fields["scl_slope"], fields["scl_inter"] = 1.0, 0.0
        fields["cal_min"], fields["cal_max"] = 0.0, float(np.max(labels, initial=0))
        offset = _voxel_offset(0, self.version)
        fields["vox_offset"] = offset
        fields["descrip"] = description
        for name in FREE_TEXT_FIELDS:
            if name in _FIELDS[self.version]:
                fields[name] = b""
        header = bytes(fields.raw)
        return header + b"\0" * (offset - len(header)) + labels.tobytes(order="F")


def read_nifti(path: str | Path, decompress: Any = None) -> tuple[NiftiHeader, np.ndarray]:
    """Read a ``.nii`` or ``.nii.gz`` file: its header and its voxels (see :meth:`NiftiHeader.voxels`).

    Args:
        path: The file.
        decompress: The gzip decoder for ``.nii.gz`` files (default: :func:`gzip.decompress`).

    Raises:
        NiftiFormatError: If the file is not a readable NIfTI image.
        OSError, EOFError, zlib.error: If the file cannot be read or decompressed.
    """
    data = Path(path).read_bytes()
    if str(path).lower().endswith(".gz"):
        if decompress is None:
            import gzip

            decompress = gzip.decompress
        data = decompress(data)
    header = NiftiHeader.parse(data)
    return header, header.voxels(data)


def read_nifti_header(path: str | Path) -> NiftiHeader:
    """Read only the header of a ``.nii`` or ``.nii.gz`` file (the first bytes, decompressed as a stream).

    Raises:
        NiftiFormatError: If the file does not start with a NIfTI header.
        OSError, EOFError, zlib.error: If the file cannot be read or decompressed.
    """
    import gzip

    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        start = handle.read(_HEADER_SIZES[2])
    version, _ = _version_and_endian(start)
    return NiftiHeader.parse(start[: _HEADER_SIZES[version]] + b"\0" * 4)


class _Fields:
    """Named access to the fields of a header's bytes (a ``bytearray`` to set them)."""

    def __init__(self, raw: bytes | bytearray, version: int, endian: str):
        self.raw, self._layout, self._endian = raw, _FIELDS[version], endian

    def __getitem__(self, name: str) -> Any:
        offset, form = self._layout[name]
        values = struct.unpack_from(self._endian + form, self.raw, offset)
        return values if len(values) > 1 else values[0]

    def __setitem__(self, name: str, value: Any) -> None:
        offset, form = self._layout[name]
        values = value if isinstance(value, tuple) else (value,)
        assert isinstance(self.raw, bytearray)  # only label_map_file sets fields
        struct.pack_into(self._endian + form, self.raw, offset, *values)


def _version_and_endian(data: bytes) -> tuple[int, str]:
    """The NIfTI version and byte order, from the header size field."""
    if len(data) < 4:
        raise NiftiFormatError("the file is too short to hold a NIfTI header")
    for endian in "<>":
        size = struct.unpack_from(endian + "i", data)[0]
        for version, expected in _HEADER_SIZES.items():
            if size == expected:
                if len(data) < expected:
                    raise NiftiFormatError("the file ends inside its header")
                return version, endian
    raise NiftiFormatError("not a NIfTI file (its header size is neither 348 nor 540)")


def _voxel_offset(stored: float, version: int) -> int:
    """Where the voxels start: the stored offset, at least just after the header and its extension flag."""
    return max(int(stored), _HEADER_SIZES[version] + 4)


def _affine(fields: _Fields, shape: tuple[int, ...]) -> np.ndarray:
    """The voxel-to-world affine: sform, else qform, else the Analyze fall-back (nibabel's choice)."""
    affine = np.eye(4)
    pixdim = np.asarray(fields["pixdim"], dtype=np.float64)
    if fields["sform_code"] > 0:
        affine[:3] = np.asarray(fields["srow"], dtype=np.float64).reshape(3, 4)
    elif fields["qform_code"] > 0:
        b, c, d, *offset = (float(v) for v in fields["quatern"])
        affine[:3, :3] = _rotation(b, c, d) * _qform_zooms(pixdim)
        affine[:3, 3] = offset
    else:
        zooms = np.ones(3)
        zooms[: min(3, len(shape))] = pixdim[1 : 1 + min(3, len(shape))]
        extent = np.ones(3)
        extent[: min(3, len(shape))] = shape[:3]
        scale = zooms * [-1, 1, 1]
        affine[:3, :3] = np.diag(scale)
        affine[:3, 3] = -scale * (extent - 1) / 2
    return affine


def _qform_zooms(pixdim: np.ndarray) -> np.ndarray:
    """The qform's column scales: the voxel sizes, the last one signed by ``qfac`` (0 is read as 1)."""
    if (pixdim[1:4] < 0).any():
        raise NiftiFormatError("the header's voxel sizes (pixdim[1:4]) are negative")
    zooms = pixdim[1:4].copy()
    zooms[2] *= -1.0 if pixdim[0] == -1 else 1.0
    return zooms


def _rotation(b: float, c: float, d: float) -> np.ndarray:
    """The rotation matrix of the unit quaternion ``(a, b, c, d)`` with ``a`` the positive completion."""
    a_squared = 1.0 - (b * b + c * c + d * d)
    if a_squared < 0:
        if a_squared < -3 * np.finfo(np.float32).eps:
            raise NiftiFormatError("the header's qform quaternion is not a unit quaternion")
        a_squared = 0.0
    a = np.sqrt(a_squared)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - b * b - c * c],
        ]
    )
