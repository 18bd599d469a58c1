"""The DICOM SEG of a native-space label map (``btk dicom-seg``, :mod:`btk.preprocess.dicom_seg`).

The source series is the shipped TCIA exam's T1 written as real DICOM (``tests.support.preprocess``) and
converted by dcm2niix, so the label map lies on the native grid exactly as ``btk run`` makes it (dcm2niix
stores this series' voxels flipped with respect to the DICOM rows and slices). Every SEG is checked by
dicom3tools' ``dciodvfy`` and read back with highdicom's own geometry.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from btk.errors import InputError
from btk.io import open_nifti, save_label_map
from btk.labels import get_convention
from btk.preprocess.dicom_seg import write_dicom_seg
from btk.preprocess.seg_concepts import TISSUE_CONCEPTS
from btk.report.colours import label_colours
from tests.support.dicom_seg import dciodvfy, read_back
from tests.support.hostile import assert_no_leftovers, assert_user_error, files_under, run_btk
from tests.support.pipeline import brats_batch
from tests.support.preprocess import SERIES, raw_image, write_dicom_series


def write_series(modality: str, folder: Path, study_uid: str = "1.2.826.0.1.3680043.8.498.1001") -> Path:
    _, number, description, te, tr, ti, contrast = SERIES[modality]
    write_dicom_series(raw_image(modality), folder, number, description, te, tr, ti, contrast, study_uid)
    return folder


def lesion(shape: tuple[int, ...], values: tuple[int, int, int]) -> np.ndarray:
    """An off-centre lesion (oedema, core, enhancing rim) that no flip or transposition leaves in place."""
    necrosis, oedema, enhancing = values
    data = np.zeros(shape, np.uint8)
    data[150:200, 60:130, 9:17] = oedema
    data[160:185, 75:105, 11:15] = enhancing
    data[166:178, 82:96, 12:14] = necrosis
    data[30:34, 40:42, 3] = enhancing  # a small second focus near a corner
    return data


@pytest.fixture(scope="module")
def exam(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The T1 series, its conversion by dcm2niix, and a label map on the converted (native) grid."""
    from btk.preprocess import convert_dicom

    root = tmp_path_factory.mktemp("dicom-seg")
    series = write_series("t1n", root / "dicom" / "T1")
    conversion = convert_dicom(series, root / "nifti")
    native = conversion.modalities["t1n"]
    image = open_nifti(native)
    save_label_map(lesion(image.shape, (1, 2, 3)), image, root / "native-2023.nii.gz")
    save_label_map(lesion(image.shape, (1, 2, 4)), image, root / "native-2021.nii.gz")
    return {"series": series, "native": native, "root": root}


def seg_of(exam: dict[str, Path], labels: str, name: str) -> Path:
    output = exam["root"] / name
    convention = get_convention(labels)
    write_dicom_seg(
        exam["root"] / f"native-{labels[-4:]}.nii.gz", exam["series"], output, labels, label_colours(convention)
    )
    return output


@pytest.mark.slow
@pytest.mark.parametrize("labels", ["brats2023", "brats2021"])
def test_the_seg_passes_dciodvfy_and_reads_back_voxel_for_voxel(exam: dict[str, Path], labels: str):
    seg = seg_of(exam, labels, f"{labels}.dcm")
    errors, warnings = dciodvfy(seg)
    assert errors == [], errors
    assert warnings == [], warnings  # none with this dicom3tools (1.00~20220618); listed here if one appears
    label_map = nib.load(str(exam["root"] / f"native-{labels[-4:]}.nii.gz"))
    expected = np.asarray(label_map.dataobj)
    assert set(np.unique(expected)) == {0, *get_convention(labels).tissues}
    assert np.array_equal(read_back(seg, exam["root"] / f"native-{labels[-4:]}.nii.gz", labels), expected)


@pytest.mark.slow
def test_segments_are_coded_coloured_and_the_source_is_referenced(exam: dict[str, Path]):
    import highdicom as hd

    seg = pydicom.dcmread(seg_of(exam, "brats2023", "coded.dcm"))
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(exam["series"].iterdir())]
    convention = get_convention("brats2023")
    colours = label_colours(convention)
    assert [s.SegmentNumber for s in seg.SegmentSequence] == [1, 2, 3]
    for segment, value in zip(seg.SegmentSequence, sorted(convention.tissues)):
        concept = TISSUE_CONCEPTS[convention.tissues[value]]
        category, kind = segment.SegmentedPropertyCategoryCodeSequence[0], segment.SegmentedPropertyTypeCodeSequence[0]
        assert (category.CodingSchemeDesignator, category.CodeValue) == concept.category[:2]
        assert (kind.CodingSchemeDesignator, kind.CodeValue, kind.CodeMeaning) == concept.type
        assert segment.SegmentLabel == colours[value][1] and segment.SegmentAlgorithmType == "AUTOMATIC"
        rgb = hd.color.CIELabColor.from_dicom_value(segment.RecommendedDisplayCIELabValue).to_rgb()
        assert np.abs(np.subtract(rgb, colours[value][0])).max() <= 2
    assert (kind.CodingSchemeDesignator, kind.CodeValue) == ("NCIt", "C113842")  # ET: Enhancing Lesion, CID 7168
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.SeriesInstanceUID != sources[0].SeriesInstanceUID and seg.Modality == "SEG"
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in sources
    }
    frame_sources = {
        frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for frame in seg.PerFrameFunctionalGroupsSequence
    }
    assert frame_sources <= {s.SOPInstanceUID for s in sources} and len(frame_sources) == 9  # slices 3 and 9 to 16
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyDate"):
        assert seg.get(keyword) == sources[0].get(keyword), keyword


@pytest.mark.slow
def test_any_axis_order_reads_back(tmp_path: Path):
    """A series whose slices run along another axis of the label map's grid, and whose files lie in another order."""
    raw = nib.load(str(raw_image("t1n")))
    data = np.asanyarray(raw.dataobj)
    # the same voxels, stored with the slice axis first and the rows flipped: a "sagittal" export of the grid
    permuted = np.ascontiguousarray(np.flip(data.transpose(2, 0, 1), axis=1))
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1, data.shape[0] - 1
    axes = np.eye(4)[:, [2, 0, 1, 3]]
    moved = nib.Nifti1Image(permuted, raw.affine @ axes @ flip)
    nib.save(moved, str(tmp_path / "moved.nii.gz"))
    _, number, description, te, tr, ti, contrast = SERIES["t1n"]
    write_dicom_series(
        tmp_path / "moved.nii.gz", tmp_path / "series", number, description, te, tr, ti, contrast, "1.2.3"
    )
    for index, path in enumerate(sorted((tmp_path / "series").iterdir())):
        path.rename(path.with_name(f"{(index * 7919) % 1000:04d}.dcm"))  # the files' order says nothing
    save_label_map(lesion(raw.shape, (1, 2, 3)), raw, tmp_path / "labels.nii.gz")
    output = tmp_path / "seg.dcm"
    result = write_dicom_seg(
        tmp_path / "labels.nii.gz", tmp_path / "series", output, "brats2023", label_colours(get_convention("brats2023"))
    )
    assert result.source_images == raw.shape[1]  # one image per voxel along the raw grid's second axis
    assert dciodvfy(output)[0] == []
    assert np.array_equal(read_back(output, tmp_path / "labels.nii.gz", "brats2023"), lesion(raw.shape, (1, 2, 3)))


@pytest.mark.slow
def test_a_series_that_does_not_match_the_grid_is_refused(exam: dict[str, Path], tmp_path: Path):
    colours = label_colours(get_convention("brats2023"))
    labels = exam["root"] / "native-2023.nii.gz"
    t2 = write_series("t2w", tmp_path / "T2")
    with pytest.raises(InputError, match="does not match the label map's grid"):
        write_dicom_seg(labels, t2, tmp_path / "t2.dcm", "brats2023", colours)
    partial = [p for p in sorted(exam["series"].iterdir())][1:]  # one slice missing
    with pytest.raises(InputError, match="not the grid's 26 slices"):
        write_dicom_seg(labels, partial, tmp_path / "partial.dcm", "brats2023", colours)
    with pytest.raises(InputError, match="different series"):
        write_dicom_seg(labels, [*partial, next(t2.iterdir())], tmp_path / "mixed.dcm", "brats2023", colours)
    with pytest.raises(InputError, match="label values 3 are not part of the brats2021"):
        write_dicom_seg(labels, exam["series"], tmp_path / "labels.dcm", "brats2021", colours)
    assert not list(tmp_path.glob("*.dcm")) and not list(tmp_path.glob(".*partial*"))


@pytest.mark.slow
def test_the_command_writes_refuses_and_replaces_only_its_own(exam: dict[str, Path], tmp_path: Path):
    labels, output = exam["root"] / "native-2023.nii.gz", tmp_path / "seg.dcm"
    result = run_btk("dicom-seg", labels, exam["series"], "-o", output)
    assert result.code == 0, result.output
    assert "enhancing tumour (ET)" in result.output and f"Wrote {output}" in " ".join(result.output.split())
    assert dciodvfy(output)[0] == []
    assert_user_error(run_btk("dicom-seg", labels, exam["series"], "-o", output), output)
    assert run_btk("dicom-seg", labels, exam["series"], "-o", output, "--force").code == 0
    mine = tmp_path / "mine.dcm"
    mine.write_bytes(next(exam["series"].iterdir()).read_bytes())  # a user's DICOM file is never replaced
    assert_user_error(run_btk("dicom-seg", labels, exam["series"], "-o", mine, "--force"), mine)
    t2 = write_series("t2w", tmp_path / "T2")  # the wrong series for a map on the T1 grid
    assert_user_error(
        run_btk("dicom-seg", labels, t2, "-o", tmp_path / "t2.dcm"), "does not match the label map's grid"
    )
    before = files_under(exam["series"])
    assert_user_error(
        run_btk("dicom-seg", labels, exam["series"], "-o", exam["series"] / "seg.dcm"), "inside the input"
    )
    assert_no_leftovers(exam["series"], before)


@pytest.mark.slow
def test_a_study_from_nifti_gets_no_seg_and_its_report_says_why(tmp_path: Path):
    from btk.pipeline import Pipeline

    studies, candidates = brats_batch(tmp_path, ["nifti-case"], [2])
    batch = Pipeline(tmp_path / "out", candidates=candidates, method="mav", workers=1).run(studies)
    assert batch.ok, [r.reason for r in batch.failed]
    study = tmp_path / "out" / "nifti-case"
    assert not (study / "dicom").exists()
    reason = "the exam came from NIfTI: no source DICOM series to reference"
    assert json.loads((study / "report" / "report.json").read_text())["dicom_seg"] == {"file": None, "reason": reason}
    assert f"DICOM SEG: none ({reason})" in (study / "report" / "report.html").read_text()
