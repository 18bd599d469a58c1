"""Checking the ITK ``.mat`` transform files of an exam before ANTs reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import loadmat

from btk.errors import InputError, MissingFileError

#: The affine parameters of a 3-D ITK transform: a 3 x 3 matrix and a translation.
_PARAMETERS = 12


def check_transform(path: str | Path) -> Path:
    """Check that ``path`` is a complete 3-D ITK affine transform (the MATLAB v4 file ANTs writes); return it.

    ANTs itself answers a truncated or corrupt file with a C++ exception dump; this says which file is
    broken and what to do.

    Raises:
        BtkError: the file is missing, truncated, not a transform, or holds non-finite numbers.
    """
    path = Path(path)
    hint = "the exam folder is damaged: run btk preprocess on the exam again with --force"
    if not path.is_file():
        raise MissingFileError("the transform file is missing", path=path, hint=hint)
    try:
        content = loadmat(str(path))
    except Exception as error:
        raise InputError(
            f"cannot read the transform (the file is truncated or corrupt: {error.__class__.__name__})",
            path=path,
            hint=hint,
        ) from None
    parameters = [value for name, value in content.items() if "Transform" in name]
    try:
        matrix = np.asarray(parameters[0], dtype=float) if len(parameters) == 1 else np.empty(0)
        centre = np.asarray(content.get("fixed", []), dtype=float)
    except (TypeError, ValueError):
        matrix = centre = np.empty(0)
    if matrix.size != _PARAMETERS or centre.size != 3 or not (np.isfinite(matrix).all() and np.isfinite(centre).all()):
        raise InputError("not a 3-D affine ITK transform (or its numbers are not finite)", path=path, hint=hint)
    return path
