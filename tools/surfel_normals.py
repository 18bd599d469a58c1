"""Make ``btk/data/surfel_normals.json``: the surface of each 2x2x2 neighbourhood, for surfel-weighted HD95.

The BraTS 2023 evaluation weights each surface element by its area (as DeepMind's ``surface-distance``
does): a border position is a 2x2x2 neighbourhood of voxels, coded by which of its eight voxels are inside
(bit weights 128, 64, 32, 16, 8, 4, 2, 1 for the voxels at offsets (0,0,0), (0,0,1), (0,1,0), (0,1,1), (1,0,0),
..., (1,1,1)), and its area is that of the marching-cubes surface through the midpoints of its edges. This tool
takes the surface from scikit-image's marching cubes (the classic Lorensen tables), for the configuration
with at most four voxels inside (a configuration and its complement share one surface), and writes each
triangle's area vector (half the cross product, in units of 1/8: the values are exact) per code.

    python tools/surfel_normals.py        # with scikit-image installed (not a btk dependency)

``tests/test_evaluation_brats2023.py`` checks the areas against the official tools' for every code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import skimage
from skimage import measure

TARGET = Path(__file__).resolve().parents[1] / "btk" / "data" / "surfel_normals.json"
WEIGHTS = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]])


def triangle_vectors(code: int) -> list[list[int]]:
    """The area vectors of the surface triangles of ``code``, in units of 1/8, sorted."""
    inside = [(i, j, k) for i in range(2) for j in range(2) for k in range(2) if code & WEIGHTS[i, j, k]]
    if len(inside) in (0, 8):
        return []
    if len(inside) > 4:
        code = 255 - code
    cube = np.array([[[1.0 if code & WEIGHTS[i, j, k] else 0.0 for k in range(2)] for j in range(2)] for i in range(2)])
    vertices, faces, _, _ = measure.marching_cubes(cube, 0.5, method="lorensen", allow_degenerate=True)
    vectors = []
    for a, b, c in vertices.astype(np.float64)[faces]:
        vector = np.cross(b - a, c - a) / 2.0
        if np.any(vector):
            vectors.append([round(float(8 * v)) for v in vector])
    return sorted(vectors)


def main() -> None:
    table = {
        "about": "Area vectors (x8) of the marching-cubes triangles of each 2x2x2 neighbourhood code; "
        f"made by tools/surfel_normals.py with scikit-image {skimage.__version__} (Lorensen tables).",
        "scale": 0.125,
        "codes": [triangle_vectors(code) for code in range(256)],
    }
    TARGET.write_text(json.dumps(table, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
