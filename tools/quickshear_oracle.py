"""Make the reference side of btk's defacing test: brainles-preprocessing's Quickshear on real HD-BET brain masks.

brainles-preprocessing (the BraTS orchestrator's preprocessing) defaces with ``QuickshearDefacer``, whose core is
``run_quickshear`` (adapted from nipy/quickshear). This script:

1. creates (or reuses) a private virtual environment, by default
   ``~/.cache/btk-reference/brainles-preprocessing-0.6.14``, and installs ``brainles-preprocessing==0.6.14``
   there with ``pip install --no-deps``, and numpy, scipy and nibabel (what that one module needs);
2. runs itself with that environment's Python, loads ``run_quickshear`` from its file (the package's
   ``__init__`` pulls in HD-BET and ANTs, which this needs not), and runs it on two HD-BET brain masks of the
   shipped TCIA exam that BraTS Toolkit made (``tests/data/exams/TCGA-FG-6692/brats_toolkit_reference``):
   the mask on the BraTS SRI24 grid (1 mm) and the one on the T1c's native grid (0.9 x 0.9 x 5.5 mm);
3. writes the kept region (1: kept, 0: sheared off) of each to ``tests/data/defacing_oracle/`` with a JSON
   file recording the inputs' sha256, the package version and the buffer.

``run_quickshear`` takes its buffer in voxels along the superior axis (10 by default, 10 mm on the 1 mm
grid); brainles-preprocessing registers the brain to SRI24 before shearing, so it shears 10 mm below the
brain on any input. For the native mask the script passes 10 mm in that grid's slices (10 / 5.5 voxels),
the same plane geometrically (a convex hull is unchanged by scaling an axis).

Usage: ``python tools/quickshear_oracle.py [--venv DIR] [--output DIR]``. Exit status 3: the package could not
be installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

VERSION = "0.6.14"
ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "exams" / "TCGA-FG-6692" / "brats_toolkit_reference"
#: Oracle name -> the brain mask it shears.
MASKS = {
    "sri24": REFERENCE / "mask_hdbet_brats-space" / "OtherEXampleFromTCIA_hdbet_mask_brats.nii.gz",
    "native-t1c": REFERENCE / "masks_hdbet_native-space" / "OtherEXampleFromTCIA_hdbet_mask_native_t1c.nii.gz",
}
BUFFER_MM = 10.0
INSTALL_FAILED = 3


def default_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "btk-reference" / f"brainles-preprocessing-{VERSION}"


def prepare(environment: Path) -> Path:
    """The environment's Python, with brainles-preprocessing installed (no dependencies but the three needed)."""
    python = environment / "bin" / "python"
    if not python.exists():
        venv.create(environment, with_pip=True)
    for packages in ([f"brainles-preprocessing=={VERSION}", "--no-deps"], ["numpy", "scipy", "nibabel"]):
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *packages], capture_output=True, text=True
        )
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            sys.exit(INSTALL_FAILED)
    return python


def shear(output: Path) -> None:
    """Inside the environment: run brainles-preprocessing's run_quickshear on each mask, write the kept regions."""
    import importlib.metadata
    import importlib.util

    import nibabel as nib
    import numpy as np

    distribution = importlib.metadata.distribution("brainles-preprocessing")
    module_file = Path(str(distribution.locate_file("brainles_preprocessing/defacing/quickshear/nipy_quickshear.py")))
    spec = importlib.util.spec_from_file_location("nipy_quickshear", module_file)
    assert spec is not None and spec.loader is not None
    quickshear = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickshear)
    output.mkdir(parents=True, exist_ok=True)
    record: dict = {"package": f"brainles-preprocessing {distribution.version}", "buffer_mm": BUFFER_MM, "cases": {}}
    for name, path in MASKS.items():
        image = nib.load(str(path))
        mask = (np.asanyarray(image.dataobj) > 0).astype(np.uint8)
        superior_axis = int(np.argmax(np.abs(image.affine[2, :3])))
        slice_mm = float(np.linalg.norm(image.affine[:3, superior_axis]))
        buffer_voxels = BUFFER_MM / slice_mm
        kept = quickshear.run_quickshear(nib.Nifti1Image(mask, image.affine), buffer=buffer_voxels)
        target = output / f"{name}_quickshear_kept.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(kept, dtype=np.uint8), image.affine), str(target))
        record["cases"][name] = {
            "mask": str(path.relative_to(ROOT)),
            "mask_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "buffer_voxels": buffer_voxels,
            "kept": target.name,
        }
    (output / "quickshear.json").write_text(json.dumps(record, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=default_venv())
    parser.add_argument("--output", type=Path, default=ROOT / "tests" / "data" / "defacing_oracle")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.inside:
        shear(arguments.output)
        return
    python = prepare(arguments.venv)
    command = [str(python), __file__, "--inside", "--output", str(arguments.output)]
    subprocess.run(command, check=True)
    print(f"Wrote {arguments.output}")


if __name__ == "__main__":
    main()
