"""Where the registration time goes: ANTs settings against speed and agreement with BraTS Toolkit's transforms.

    python -m bench.registration [--variants default fewer-iterations ...] [--repeats 1]

For each variant of :class:`btk.preprocess.registration.RegistrationSettings`, the four registrations of one
preprocessing run (T1 to the BraTS atlas; T1c, T2 and FLAIR to T1) of the shipped TCIA exam run one after the
other, each in its own one-thread worker as in ``btk preprocess``. Printed per variant: seconds per registration
and in total, and the mean displacement (mm) of brain voxels between btk's transform and BraTS Toolkit's for the
same pair (T1 to atlas over the reference BraTS-space brain mask; co-registrations over the T1's head voxels).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.preprocess.registration import RegistrationSettings, register
from btk.spaces import SPACES

REPO = Path(__file__).resolve().parents[1]
EXAM = REPO / "examples" / "exams" / "TCGA-FG-6692"
REFERENCE = REPO / "tests" / "data" / "exams" / "TCGA-FG-6692" / "brats_toolkit_reference"
REFERENCE_MASK = REFERENCE / "mask_hdbet_brats-space" / "OtherEXampleFromTCIA_hdbet_mask_brats.nii.gz"
PAIRS = {  # name: (moving file pattern, fixed is the atlas?, BraTS Toolkit's transform)
    "t1_to_atlas": ("T1_AX_*_t1.nii.gz", True, "OtherEXampleFromTCIA_native_t1_to_brats_0GenericAffine.mat"),
    "t1c_to_t1": ("*_t1c.nii.gz", False, "OtherEXampleFromTCIA_t1c_to_t1_0GenericAffine.mat"),
    "t2_to_t1": ("*_t2.nii.gz", False, "OtherEXampleFromTCIA_t2_to_t1_0GenericAffine.mat"),
    "flair_to_t1": ("*_fla.nii.gz", False, "OtherEXampleFromTCIA_fla_to_t1_0GenericAffine.mat"),
}
VARIANTS = {
    "default": {},
    "brats-toolkit-sampling": {"sampling_rate": 0.5},
    "sampling-0.15": {"sampling_rate": 0.15},
    "sampling-0.10": {"sampling_rate": 0.10},
    "fewer-iterations": {"iterations": (500, 250, 100)},
    "two-levels": {"iterations": (1000, 500), "shrink_factors": (8, 4), "smoothing_sigmas": (3, 2)},
    "coarsest-4": {"iterations": (1000, 500), "shrink_factors": (4, 2), "smoothing_sigmas": (2, 1)},
    "step-0.2": {"gradient_step": 0.2},
    "atlas-to-t1-inverted": {},
    "atlas-to-t1-inverted-0.5": {"sampling_rate": 0.5},
}
#: Variants that register the atlas onto the T1 (the metric then samples the T1's small grid, not the 1 mm
#: atlas) and invert the affine; their co-registrations are the default ones, so only T1 to atlas runs.
INVERTED = {"atlas-to-t1-inverted", "atlas-to-t1-inverted-0.5"}


def sample_points(path: Path, threshold: float | None = None, step: int = 7) -> np.ndarray:
    """World (LPS, as ITK uses) coordinates of every ``step``-th voxel of a mask or above an intensity."""
    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj)
    selected = data > (0 if threshold is None else threshold)
    return nib.affines.apply_affine(image.affine, np.argwhere(selected)[::step]) * [-1, -1, 1]


def mean_displacement_mm(ours: Path, theirs: Path, points: np.ndarray) -> float:
    """Mean distance (mm) between where two transforms send the same points."""
    import SimpleITK as sitk

    a, b = sitk.ReadTransform(str(ours)), sitk.ReadTransform(str(theirs))
    moved = [np.array([t.TransformPoint(p) for p in points.tolist()]) for t in (a, b)]
    return float(np.linalg.norm(moved[0] - moved[1], axis=1).mean())


def _inverted(transform: Path) -> Path:
    """The inverse of an affine transform file, written beside it."""
    import SimpleITK as sitk

    inverse = transform.with_name(transform.stem + "-inverted.mat")
    sitk.WriteTransform(sitk.ReadTransform(str(transform)).GetInverse(), str(inverse))
    return inverse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    t1 = next(EXAM.glob(PAIRS["t1_to_atlas"][0]))
    t1_data = np.asanyarray(nib.load(str(t1)).dataobj)
    points = {
        True: sample_points(REFERENCE_MASK),
        False: sample_points(t1, threshold=float(np.percentile(t1_data[t1_data > 0], 30))),
    }
    print(f"{'variant':24s} " + " ".join(f"{name:>22s}" for name in PAIRS) + f" {'total s':>8s}")
    for variant in args.variants:
        settings = RegistrationSettings(**VARIANTS[variant])
        cells, total = [], 0.0
        with tempfile.TemporaryDirectory() as work:
            for name, (pattern, to_atlas, reference) in PAIRS.items():
                if variant in INVERTED and not to_atlas:
                    cells.append("(default)")
                    continue
                moving = next(EXAM.glob(pattern))
                fixed = SPACES["brats-sri24"].template_path() if to_atlas else t1
                started = time.perf_counter()
                if variant in INVERTED:
                    transform = _inverted(register(moving, fixed, Path(work) / f"{name}-inverse.mat", settings))
                else:
                    transform = register(fixed, moving, Path(work) / f"{name}.mat", settings)
                seconds = time.perf_counter() - started
                total += seconds
                shift = mean_displacement_mm(transform, REFERENCE / "registrations" / reference, points[to_atlas])
                cells.append(f"{seconds:6.1f} s {shift:6.2f} mm")
        print(f"{variant:24s} " + " ".join(f"{cell:>22s}" for cell in cells) + f" {total:8.1f}", flush=True)


if __name__ == "__main__":
    main()
