"""How well the shipped TCIA exam lands in each atlas space: overlap of its registered brain with the template's.

    python -m bench.atlas_spaces [--spaces brats-sri24 brats-mni152] [--registration rigid affine] [--fast]

For each space (and T1-to-atlas transform type) the exam is preprocessed from its NIfTI files (HD-BET on CPU)
and compared with the space's template: Dice of the exam's atlas-space brain mask (``brats/mask``) with the
template's brain (brain-only templates: their non-zero voxels; the BraTS SRI24 atlas: its shipped
skull-stripped version), the highest Dice two masks of their volumes can reach (``bound``: a rigid
registration cannot scale a brain smaller than the template's), and the distance (mm) between the two
masks' centres of mass. Printed with the registration and total seconds from the exam's provenance.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.spaces import SPACES, AtlasSpace, atlas_folder

REPO = Path(__file__).resolve().parents[1]
EXAM = REPO / "examples" / "exams" / "TCGA-FG-6692"
#: The brain of each space's template, where the template itself shows the skull.
TEMPLATE_BRAINS = {"brats-sri24": atlas_folder() / "t1_skullstripped_brats_space.nii.gz"}


def template_brain(space: AtlasSpace) -> np.ndarray:
    """The template's brain voxels (boolean, on the space's grid)."""
    path = TEMPLATE_BRAINS.get(space.name, space.template_path())
    return np.asanyarray(nib.load(str(path)).dataobj) > 0


def agreement(mask: np.ndarray, brain: np.ndarray) -> tuple[float, float, float]:
    """Dice of two boolean masks on one 1 mm grid, the largest Dice masks of their volumes can have, and the
    distance (mm) between their centres of mass."""
    volumes = np.count_nonzero(mask), np.count_nonzero(brain)
    dice = 2.0 * np.count_nonzero(mask & brain) / sum(volumes)
    offset = np.argwhere(mask).mean(axis=0) - np.argwhere(brain).mean(axis=0)
    return float(dice), 2.0 * min(volumes) / sum(volumes), float(np.linalg.norm(offset))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--registration", nargs="+", default=["rigid"], choices=["rigid", "affine"])
    parser.add_argument("--fast", action="store_true", help="HD-BET fast mode (default: accurate)")
    arguments = parser.parse_args()
    from btk.preprocess import Preprocessor

    print(f"{'space':14} {'transform':9} {'Dice':>6} {'bound':>6} {'COM mm':>7} {'reg s':>6} {'total s':>7}")
    with tempfile.TemporaryDirectory() as root:
        for name in arguments.spaces:
            space = SPACES[name]
            for transform in arguments.registration:
                preprocessor = Preprocessor(device="cpu", fast=arguments.fast, registration=transform, atlas=name)
                exam = preprocessor.run(EXAM, Path(root) / f"{name}-{transform}" / "TCGA-FG-6692")
                mask = np.asanyarray(nib.load(str(exam.outputs["brats/mask"])).dataobj) > 0
                dice, bound, offset = agreement(mask, template_brain(space))
                timings = exam.provenance["timings_seconds"]
                print(
                    f"{name:14} {transform:9} {dice:6.3f} {bound:6.3f} {offset:7.2f} {timings['registration']:6.1f} "
                    f"{sum(timings.values()):7.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
