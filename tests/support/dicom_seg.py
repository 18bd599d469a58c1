"""Checks of a DICOM SEG that btk wrote, each by a tool independent of btk's own code.

- :func:`dciodvfy`: dicom3tools' validator of the DICOM standard's IODs (Debian package ``dicom3tools``).
- :func:`read_back`: the SEG read with highdicom, its volume placed on the NIfTI grid by highdicom's geometry
  (not btk's), segment numbers turned back into label values by the segments' labels.
- :func:`identifying_elements`: where in the SEG identifiers stand.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from btk.labels import get_convention
from btk.report.colours import label_colours

#: Attributes of the source series and its images (not of its patient or study) that hold free text or people:
#: a SEG of the study copies the Patient and Study modules of its source, never these.
SERIES_AND_IMAGE_TEXT = frozenset(
    {
        "ImageComments",
        "SeriesDescription",
        "ProtocolName",
        "DerivationDescription",
        "ContrastBolusAgent",
        "PerformedProcedureStepDescription",
        "PerformingPhysicianName",
        "OperatorsName",
        "StationName",
        "DeviceSerialNumber",
    }
)


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """The errors and the warnings dicom3tools' ``dciodvfy`` reports for a DICOM file."""
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: apt-get install dicom3tools (.ci/setup installs it)")
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")], [line for line in lines if line.startswith("Warning")]


def read_back(seg_path: Path, reference: Path, labels: str) -> np.ndarray:
    """The SEG as a label map on the grid of the NIfTI image ``reference``, in the convention ``labels``."""
    import highdicom as hd

    seg = hd.seg.segread(seg_path)
    names = {name: value for value, (_, name) in label_colours(get_convention(labels)).items()}
    values = np.zeros(len(seg.SegmentSequence) + 1, dtype=np.uint8)
    for segment in seg.SegmentSequence:
        values[segment.SegmentNumber] = names[segment.SegmentLabel]
    volume = seg.get_volume(combine_segments=True)
    grid = hd.Volume.from_nibabel(nib.load(str(reference)))
    return values[volume.match_geometry(grid, tol=1e-3).array]


def identifying_elements(dataset: pydicom.Dataset, identifiers: list[str]) -> dict[str, str]:
    """Keyword -> value of every element (nested ones included) whose value holds one of ``identifiers``."""
    found: dict[str, str] = {}
    needles = [identifier.lower() for identifier in identifiers]

    def visit(data: pydicom.Dataset, element) -> None:
        if element.VR in ("SQ", "OB", "OW", "UN"):
            return
        text = str(element.value).lower()
        if any(needle in text for needle in needles):
            found[element.keyword or str(element.tag)] = str(element.value)

    dataset.walk(visit)
    return found
