"""Writing a DICOM SEG: seconds per SEG and its size, for the shipped exam's T1 series and a finer one.

    python -m bench.dicom_seg [--repeats 5]

The series are the TCIA exam's T1 written as real DICOM (26 axial images of 256 x 224), and the same voxels
exported along the grid's second axis (224 images of 26 x 256); each is converted with dcm2niix and given a
label map of the three glioma labels on the converted grid. Each SEG is written ``--repeats`` times by
:func:`btk.preprocess.write_dicom_seg` in this process (highdicom imported once, before the timing); the
median is printed with the SEG's frames and bytes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.io import open_nifti, save_label_map
from btk.labels import get_convention
from btk.preprocess import convert_dicom, write_dicom_seg
from btk.report.colours import label_colours
from tests.support.preprocess import SERIES, raw_image, write_dicom_series


def series_of(nifti: Path, folder: Path) -> Path:
    """The image as the T1 series (tests.support.preprocess's writer)."""
    _, number, description, te, tr, ti, contrast = SERIES["t1n"]
    write_dicom_series(nifti, folder, number, description, te, tr, ti, contrast, "1.2.826.0.1.3680043.8.498.77")
    return folder


def exported_along_second_axis(nifti: Path, output: Path) -> Path:
    """The same voxels stored with the grid's second axis last: a series of 224 images."""
    image = nib.load(str(nifti))
    axes = np.eye(4)[:, [0, 2, 1, 3]]
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj).transpose(0, 2, 1), image.affine @ axes), str(output))
    return output


def measure(series: Path, root: Path, repeats: int) -> tuple[float, int, int, int]:
    """Median seconds per SEG, its frames, its bytes and the series' images."""
    native = convert_dicom(series, root / "nifti").modalities["t1n"]
    image = open_nifti(native)
    labels = np.zeros(image.shape[:3], np.uint8)
    labels[tuple(slice(n // 4, n // 2) for n in image.shape[:3])] = 2
    labels[tuple(slice(n // 3, n // 2) for n in image.shape[:3])] = 3
    labels[tuple(slice(2 * n // 5, n // 2) for n in image.shape[:3])] = 1
    save_label_map(labels, image, root / "labels.nii.gz")
    convention = get_convention("brats2023")
    seconds = []
    for repeat in range(repeats):
        started = time.perf_counter()
        result = write_dicom_seg(
            root / "labels.nii.gz", series, root / f"seg{repeat}.dcm", convention, label_colours(convention)
        )
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result.frames, result.path.stat().st_size, result.source_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import highdicom  # noqa: F401  - its import (about a second) is not part of writing a SEG

    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        cases = {
            "axial, 26 images of 256 x 224": series_of(raw_image("t1n"), root / "axial" / "dicom"),
            "second axis, 224 images of 26 x 256": series_of(
                exported_along_second_axis(raw_image("t1n"), root / "t1-second-axis.nii.gz"), root / "second" / "dicom"
            ),
        }
        for name, series in cases.items():
            seconds, frames, size, images = measure(series, series.parent, args.repeats)
            print(f"{name}: {seconds:.2f} s per SEG ({images} source images, {frames} frames, {size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
