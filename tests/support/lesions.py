"""A small, learnable BraTS-like data set: synthetic lesions inserted into real brains.

The brains are real MRI kept in ``tests/data/unet/`` (see its README): the BraTS-space T1 atlas, the
BraTS 2023 case BraTS-GLI-00001-000 and the skull-stripped TCIA exam TCGA-FG-6692. Both patient brains hold
a real, unlabelled tumour, so the hemisphere holding it is replaced by the mirror image of the healthy one.
The atlas has a T1 only; its other contrasts are derived from it (T2-like: inverted T1).

Each generated case: one brain, downsampled to :data:`GRID`, randomly flipped and re-scaled per modality,
with one lesion of random position, size, shape and intensities: an enhancing rim (ET), a necrotic core
(NCR) and surrounding oedema (ED), labelled in the BraTS 2023 convention, written as a BraTS 2023 (or 2020)
case folder.
"""

from __future__ import annotations

import functools
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

DATA = Path(__file__).resolve().parents[1] / "data" / "unet"
#: Shape of the generated volumes (about 3 mm voxels for a BraTS-space brain).
GRID = (48, 64, 48)
#: Brain intensity factors (relative to the modality's brain median) of ED, ET and NCR per modality
#: (t1n, t1c, t2w, t2f): the low and high ends of the random draw.
CONTRASTS = {
    "ED": ((0.8, 0.95), (0.85, 1.0), (1.5, 2.2), (1.6, 2.4)),
    "ET": ((0.85, 1.0), (1.6, 2.4), (1.2, 1.6), (1.3, 1.8)),
    "NCR": ((0.5, 0.7), (0.4, 0.65), (2.0, 2.8), (0.8, 1.3)),
}
LABELS = {"NCR": 1, "ED": 2, "ET": 3}


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(str(path))
    data = np.asarray(image.dataobj, dtype=np.float32)
    return (data[..., 0] if data.ndim == 4 else data), image.affine


def _resample_onto(path: Path, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """An image resampled (linear) onto another grid of the same scanner space."""
    data, own_affine = _load(path)
    transform = np.linalg.inv(own_affine) @ affine
    return ndimage.affine_transform(data, transform[:3, :3], transform[:3, 3], output_shape=shape, order=1)


def _healthy_mirror(images: np.ndarray) -> np.ndarray:
    """Replace the hemisphere (along axis 0) holding the brightest FLAIR blob by the other one's mirror."""
    brain = images.any(axis=0)
    flair = images[3]
    bright = flair > np.percentile(flair[brain], 98)
    labels, count = ndimage.label(bright)
    largest = 1 + int(np.argmax(ndimage.sum(bright, labels, range(1, count + 1))))
    tumour_x = ndimage.center_of_mass(labels == largest)[0]
    xs = np.flatnonzero(brain.any(axis=(1, 2)))
    middle = (xs[0] + xs[-1]) / 2
    result = images.copy()
    for x in range(images.shape[1]):
        mirrored = round(2 * middle - x)
        if (x > middle) == (tumour_x > middle) and 0 <= mirrored < images.shape[1]:
            result[:, x] = images[:, mirrored]
    return result


def _to_grid(images: np.ndarray) -> np.ndarray:
    """Crop to the brain and resample (linear) to :data:`GRID`; background stays exactly zero."""
    brain = images.any(axis=0)
    box = tuple(
        slice(
            int(np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != k)))[0]),
            int(np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != k)))[-1]) + 1,
        )
        for k in range(3)
    )
    cropped = images[(slice(None), *box)]
    factors = [g / s for g, s in zip(GRID, cropped.shape[1:])]
    resized = np.stack([ndimage.zoom(channel, factors, order=1, grid_mode=True, mode="nearest") for channel in cropped])
    mask = ndimage.zoom(cropped.any(axis=0).astype(np.float32), factors, order=1, grid_mode=True, mode="nearest") > 0.5
    return np.where(mask, np.maximum(resized, 1e-3), 0).astype(np.float32)


@functools.lru_cache(maxsize=1)
def source_brains() -> tuple[np.ndarray, ...]:
    """The three real brains on :data:`GRID`, channels t1n, t1c, t2w, t2f."""
    brats = DATA / "brats" / "BraTS-GLI-00001-000"
    brats_images = np.stack([_load(brats / f"BraTS-GLI-00001-000-{m}.nii.gz")[0] for m in ("t1n", "t1c", "t2w", "t2f")])
    tcia = DATA / "tcia"
    t1, affine = _load(tcia / "OtherEXampleFromTCIA_hdbet_native_t1.nii.gz")
    tcia_images = np.stack(
        [t1]
        + [
            _resample_onto(tcia / f"OtherEXampleFromTCIA_hdbet_native_{m}.nii.gz", t1.shape, affine)
            for m in ("t1c", "t2", "fla")
        ]
    )
    tcia_images[:, ~(tcia_images > 0).all(axis=0)] = 0
    atlas, _ = _load(DATA / "atlas" / "t1_skullstripped_brats_space.nii.gz")
    inside = atlas > 0
    inverted = np.where(inside, atlas.max() - atlas, 0)
    flair_like = np.where(inside, np.clip(inverted, 0, np.percentile(inverted[inside], 60)), 0)
    atlas_images = np.stack([atlas, atlas * 1.1, inverted, flair_like])
    return tuple(
        _to_grid(images) for images in (_healthy_mirror(brats_images), _healthy_mirror(tcia_images), atlas_images)
    )


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(GRID), sigma)
    return noise / (noise.std() + 1e-6)


def insert_lesion(brain: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``brain`` (4, *GRID) with one random lesion, and its label map (BraTS 2023 labels)."""
    inside = brain.any(axis=0)
    radius = rng.uniform(5.0, 10.0)
    candidates = np.argwhere(ndimage.binary_erosion(inside, iterations=int(radius * 0.6)))
    centre = candidates[rng.integers(len(candidates))]
    axes = rng.uniform(0.75, 1.3, size=3)
    grid = np.indices(GRID, dtype=np.float32)
    distance = np.sqrt(sum(((grid[k] - centre[k]) / axes[k]) ** 2 for k in range(3)))
    distance *= 1 + 0.15 * _smooth_noise(rng, 3.0)
    core_fraction, necrosis_fraction = rng.uniform(0.45, 0.7), rng.uniform(0.35, 0.7)
    oedema = (distance < radius) & inside
    core = (distance < radius * core_fraction) & inside
    necrosis = (distance < radius * core_fraction * necrosis_fraction) & inside
    labels = np.zeros(GRID, dtype=np.uint8)
    labels[oedema] = LABELS["ED"]
    labels[core] = LABELS["ET"]
    labels[necrosis] = LABELS["NCR"]
    result = brain.copy()
    texture = 1 + 0.08 * _smooth_noise(rng, 1.0)
    for channel in range(4):
        median = float(np.median(brain[channel][inside]))
        target = brain[channel].copy()
        for tissue, value in LABELS.items():
            low, high = CONTRASTS[tissue][channel]
            target[labels == value] = median * rng.uniform(low, high) * texture[labels == value]
        alpha = ndimage.gaussian_filter(oedema.astype(np.float32), 0.7)
        blended = (1 - alpha) * brain[channel] + alpha * ndimage.gaussian_filter(target, 0.5)
        result[channel] = np.where(inside, blended, 0)
    return result, labels


def make_case(index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generated case number ``index`` of the data set ``seed``: images (4, *GRID) and labels."""
    rng = np.random.default_rng([seed, index])
    brains = source_brains()
    brain = brains[index % len(brains)]
    for axis in (1, 2, 3):
        if rng.random() < 0.5:
            brain = np.flip(brain, axis)
    brain = brain * rng.uniform(0.8, 1.25, size=(4, 1, 1, 1)).astype(np.float32)
    return insert_lesion(np.ascontiguousarray(brain), rng)


def write_dataset(folder: Path, count: int, seed: int, naming: str = "2023", prefix: str = "SYN") -> list[Path]:
    """Write ``count`` generated cases as BraTS case folders (2023 or 2020 naming); returns the folders."""
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    if naming == "2023":
        separator, suffixes, to_file_labels = "-", ("t1n", "t1c", "t2w", "t2f"), {}
    else:
        separator, suffixes, to_file_labels = "_", ("t1", "t1ce", "t2", "flair"), {3: 4}
    folders = []
    for index in range(count):
        images, labels = make_case(index, seed)
        for source, target in to_file_labels.items():
            labels = np.where(labels == source, target, labels).astype(np.uint8)
        name = f"{prefix}-{seed:03d}-{index:03d}" if naming == "2023" else f"{prefix}_{seed:03d}_{index:03d}"
        case_folder = folder / name
        case_folder.mkdir(parents=True, exist_ok=True)
        for suffix, channel in zip(suffixes, images):
            nib.save(
                nib.Nifti1Image(channel.astype(np.float32), affine),
                str(case_folder / f"{name}{separator}{suffix}.nii.gz"),
            )
        nib.save(nib.Nifti1Image(labels, affine), str(case_folder / f"{name}{separator}seg.nii.gz"))
        folders.append(case_folder)
    return folders
