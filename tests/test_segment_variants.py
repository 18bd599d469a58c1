"""Every contract variant of the registry, implemented for real by the test image and run through the
Segmentor on the real engine: file naming (case schema, time point, separator), parameters file, additional
files, a T1c-only image, other tracks' labels, and missing-sequence synthesis (BraSyn)."""

from __future__ import annotations

import json
import logging
import shutil

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.segment import Exam, PartialExam, Segmentor, load_registry
from tests.support.segment import AFFINE, SHAPE, entry, make_exam, write_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def image(fakeseg_image) -> str:
    return fakeseg_image


@pytest.fixture
def exam(tmp_path):
    return make_exam(tmp_path / "exam")


def _run(tmp_path, exam, *entries, weights=None, labels=None):
    registry = load_registry(write_registry(tmp_path / "registry.json", *entries))
    segmentor = Segmentor(registry, labels=labels)
    report = segmentor.run(exam, [e["name"] for e in entries], tmp_path / "seg", weights=weights)
    for run in report.runs:
        assert run.status == "ok", run.message
    return report


def _log(tmp_path, name):
    return (tmp_path / "seg" / "logs" / f"{name}.log").read_text()


def _labels(path):
    return set(np.unique(np.asarray(nib.load(str(path)).dataobj)).tolist())


def test_case_schema_time_point_separator_and_parameters_file(tmp_path, image, exam):
    contract = {
        "kind": "mlcube",
        "case_schema": "BraTS-MET-{id:05d}-{timepoint_suffix}",
        "timepoint_suffixes": {"pre": "000", "post": "100"},
        "timepoint": "post",
        "separator": "_",
        "parameters_file": True,
        "parameters_name": "model_x.yml",
        "parameters": {"threshold": 1.0e-05, "folds": [0, 1]},
    }
    report = _run(tmp_path, exam, entry("variant", image, contract))
    log = _log(tmp_path, "variant")
    staged = ",".join(f"BraTS-MET-00000-100_{m}.nii.gz" for m in ("t1c", "t1n", "t2f", "t2w"))
    assert f"fakeseg: inputs {staged}" in log
    assert 'fakeseg: parameters model_x.yml: {"threshold": 1.0e-05, "folds": [0, 1]}' in log
    assert _labels(report.outputs["variant"]) == {0, 1, 2, 3}


def test_additional_files_are_mounted_read_only_where_the_options_point(tmp_path, image, exam):
    record = tmp_path / "record"
    (record / "model").mkdir(parents=True)
    (record / "model" / "model.txt").write_text("-1.0\n")
    contract = {"kind": "mlcube", "case": "BraTS-GLI-00001-000"}
    fields = {"additional_files": {"zenodo_record": "1234567", "arguments": {"weights": "model"}}}
    _run(tmp_path, exam, entry("extra", image, contract, **fields), weights={"extra": record})
    log = _log(tmp_path, "extra")
    assert "--weights=/mlcube_io1/model" in log and "weights: threshold -1.0" in log and "weights: read-only" in log
    assert sorted(p.name for p in (record / "model").iterdir()) == ["model.txt"]  # nothing written into it


def test_a_t1c_only_radiotherapy_image_gets_the_t1c_alone_and_writes_gtv(tmp_path, image, exam):
    fields = {"modalities": ["t1c"], "labels": "brats2024-men-rt", "command": ["brats2025", "--labels", "gtv"]}
    report = _run(tmp_path, exam, entry("menrt", image, {"kind": "brats2025", "separator": "_"}, **fields))
    assert "fakeseg: inputs BraTS-GLI-00000-000_t1c.nii.gz\n" in _log(tmp_path, "menrt")
    assert report.labels == "brats2024-men-rt" and _labels(report.outputs["menrt"]) == {0, 1}


def test_a_paediatric_image_is_written_in_the_paediatric_convention(tmp_path, image, exam):
    fields = {"labels": "brats2024-ped", "command": ["brats2025", "--labels", "ped"], "track": "pediatric"}
    report = _run(tmp_path, exam, entry("ped", image, {"kind": "brats2025"}, **fields))
    assert report.labels == "brats2024-ped"
    assert _labels(report.outputs["ped"]) == {0, 1, 2, 4}  # ET, NET (the necrosis), ED; no cyst
    with pytest.raises(BtkError, match=r"ped writes brats2024-ped labels \(NET, CC\)"):
        _run(tmp_path, exam, entry("ped", image, {"kind": "brats2025"}, **fields), labels="brats2023")


# --- missing-sequence synthesis ----------------------------------------------------------------------------


def _synthesis_entry(image, name="syn", command=("synthesise",)):
    contract = {"kind": "mlcube", "case_schema": "BraTS-GLI-{id:05d}-000", "parameters_file": True}
    return entry(name, image, contract, output="image", labels=None, track="missing-mri", command=list(command))


@pytest.fixture
def without_flair(tmp_path, exam):
    folder = tmp_path / "partial"
    folder.mkdir()
    for path in exam.iterdir():
        if "flair" not in path.name:
            shutil.copyfile(path, folder / path.name)
    return folder


def test_synthesis_fills_the_missing_modality_and_flags_it(tmp_path, image, exam, without_flair):
    registry = load_registry(
        write_registry(tmp_path / "r.json", _synthesis_entry(image), entry("seg", image, {"kind": "brats2025"}))
    )
    segmentor = Segmentor(registry)
    report = segmentor.synthesise(without_flair, "syn", tmp_path / "filled")
    assert report.modality == "flair" and report.label == "synthetic FLAIR"
    assert report.image == tmp_path / "filled" / "partial-synthetic-t2f.nii.gz"
    assert sorted(p.name for p in report.folder.iterdir()) == [
        "logs",
        "partial-synthetic-t2f.nii.gz",
        "partial-t1c.nii.gz",
        "partial-t1n.nii.gz",
        "partial-t2w.nii.gz",
        "synthesis.json",
    ]
    assert "fakeseg: synthesised t2f" in (report.folder / "logs" / "syn.log").read_text()
    record = json.loads((report.folder / "synthesis.json").read_text())
    assert record["btk_synthesis"] == 1 and record["synthetic"]["modality"] == "flair"
    assert record["algorithm"] == "syn" and set(record["inputs"]) == {"t1", "t1c", "t2"}
    synthetic = nib.load(str(report.image))
    assert synthetic.shape == SHAPE and np.allclose(synthetic.affine, AFFINE)  # re-stamped with the exam's grid
    real = [
        np.asarray(nib.load(str(p)).dataobj, np.float32)
        for p in PartialExam.from_folder(without_flair).files().values()
    ]
    np.testing.assert_allclose(np.asarray(synthetic.dataobj), sum(real) / 3, rtol=1e-5)  # what the image computed
    completed = Exam.from_folder(report.folder)
    assert completed.flair == report.image
    run = segmentor.run(completed, ["seg"], tmp_path / "seg").runs[0]
    assert run.status == "ok", run.message
    assert sorted(p.name for p in without_flair.iterdir()) == sorted(
        p.name for p in exam.iterdir() if "flair" not in p.name
    )


def test_synthesis_command_and_its_refusals(tmp_path, image, exam, without_flair, capsys):
    registry = write_registry(
        tmp_path / "r.json",
        _synthesis_entry(image),
        _synthesis_entry(image, name="broken", command=["synthesise", "--fault", "exit"]),
        entry("seg", image, {"kind": "brats2025"}),
    )

    def synthesise(*arguments):
        code = main(["synthesise", *map(str, arguments), "--registry", str(registry)])
        return code, " ".join(capsys.readouterr().err.split())

    code, err = synthesise(without_flair, "-a", "syn", "-o", tmp_path / "out")
    assert code == 0 and "synthetic FLAIR (partial-synthetic-t2f.nii.gz) by syn" in err
    code, err = synthesise(without_flair, "-a", "syn", "-o", tmp_path / "out")
    assert code == 2 and "the output exists" in err
    assert synthesise(without_flair, "-a", "syn", "-o", tmp_path / "out", "--force")[0] == 0
    code, err = synthesise(exam, "-a", "syn", "-o", tmp_path / "o2")
    assert code == 2 and "this exam lacks none" in err
    code, err = synthesise(without_flair, "-a", "seg", "-o", tmp_path / "o3")
    assert code == 2 and "seg segments; it does not synthesise" in err
    code, err = synthesise(without_flair, "-a", "broken", "-o", tmp_path / "o4")
    assert code != 0 and "the synthesis with broken failed" in err and "see its log" in err
    assert "Traceback" not in err
    assert not any((tmp_path / name).exists() for name in ("o2", "o3", "o4"))


# --- btk run --synthesise-missing ---------------------------------------------------------------------------


def test_run_synthesises_the_missing_flair_then_segments_and_flags_it(tmp_path, image):
    from tests.support.pipeline import brats_batch, btk

    studies, candidates = brats_batch(tmp_path, ["case"], [3])
    for path in (studies / "case").glob("*t2f*"):
        path.unlink()  # the exam lacks its FLAIR
    registry = write_registry(tmp_path / "r.json", _synthesis_entry(image))
    out = tmp_path / "out"
    common = ["run", studies / "case", "-o", out, "--candidates", candidates / "case", "--method", "mav"]
    refused = btk(*common, "--registry", registry)
    assert refused.returncode == 1 and "to synthesise it, pass --synthesise-missing" in " ".join(refused.stderr.split())
    done = btk(*common, "--registry", registry, "--synthesise-missing", "syn", "--force")
    assert done.returncode == 0, done.stderr
    folder = out / "case" / "synthesise" / "exam"
    record = json.loads((folder / "synthesis.json").read_text())
    assert record["synthetic"] == {
        "modality": "flair",
        "file": "case-synthetic-t2f.nii.gz",
        "sha256": record["synthetic"]["sha256"],
    }
    report = json.loads((out / "case" / "report" / "report.json").read_text())
    assert report["synthetic"] == {"modality": "t2f", "algorithm": "syn"}
    page = (out / "case" / "report" / "report.html").read_text()
    assert (
        '<span class="synthetic">synthetic FLAIR</span>' in page
        and 'alt="fused segmentation over synthetic FLAIR"' in page
    )
    assert sorted(p.name for p in (studies / "case").iterdir()) == [
        "case-t1c.nii.gz",
        "case-t1n.nii.gz",
        "case-t2w.nii.gz",
    ]  # the input is untouched


def test_run_refuses_a_segmentation_algorithm_for_synthesis_and_native_exams(tmp_path, image):
    from btk.pipeline import PipelineOptions, discover
    from btk.pipeline.discovery import with_synthesis
    from tests.support.pipeline import RAW_EXAM

    registry = write_registry(tmp_path / "r.json", entry("seg", image, {"kind": "brats2025"}))
    with pytest.raises(BtkError, match="seg segments; it does not synthesise"):
        PipelineOptions(tmp_path / "out", synthesise="seg", registry=(registry,))
    native = tmp_path / "native"
    native.mkdir()
    for path in RAW_EXAM.iterdir():
        if "flair" not in path.name.lower():
            (native / path.name).symlink_to(path)
    (study,) = discover(native)
    assert study.kind == "nifti" and study.missing == ("t2f",)
    assert "only for exams on an atlas grid" in with_synthesis(study).problem


# --- images that write into their inputs, or several results ------------------------------------------------


def test_an_image_that_writes_into_its_inputs_gets_a_writable_copy(tmp_path, image, exam):
    before = {p.name: p.read_bytes() for p in exam.iterdir()}
    command = ["brats2025", "--write-input"]
    registry = load_registry(
        write_registry(
            tmp_path / "r.json",
            entry("strict", image, {"kind": "brats2025"}, command=command),
            entry("scribbler", image, {"kind": "brats2025"}, command=command, writable_inputs=True),
        )
    )
    report = Segmentor(registry).run(exam, ["strict", "scribbler"], tmp_path / "seg")
    strict, scribbler = report.runs
    assert strict.status == "failed" and "exited with code 1" in strict.message
    assert "cannot write into the input folder (Read-only file system)" in _log(tmp_path, "strict")
    assert scribbler.status == "ok", scribbler.message
    assert "fakeseg: wrote into the input folder" in (tmp_path / "seg" / "logs" / "scribbler.log").read_text()
    assert {p.name: p.read_bytes() for p in exam.iterdir()} == before  # the user's files are untouched


def test_a_legacy_image_with_several_results_gives_the_one_with_most_labels(tmp_path, image, exam):
    contract = {"kind": "brats-legacy", "mount": "/data", "naming": "gz-b17"}
    fields = {"command": ["legacy", "/data", "--extra-result", "--labels", "2021"], "labels": "brats2021"}
    warnings = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("btk").addHandler(handler)
    try:
        report = _run(tmp_path, exam, entry("legacy-two", image, contract, **fields), labels="brats2021")
    finally:
        logging.getLogger("btk").removeHandler(handler)
    assert _labels(report.outputs["legacy-two"]) == {0, 1, 2, 4}  # not the whole-tumour-only extra file
    (warning,) = [w for w in warnings if "wrote several results" in w]
    assert "tumor_extra_class.nii.gz: 2 labels" in warning and "using tumor_fakeseg_class.nii.gz" in warning


def test_an_exam_with_the_t1c_alone_runs_t1c_only_images_and_refuses_the_others(tmp_path, image, exam, capsys):
    t1c_only = tmp_path / "t1c-only"
    t1c_only.mkdir()
    shutil.copyfile(exam / "exam_t1c.nii.gz", t1c_only / "exam_t1c.nii.gz")
    fields = {"modalities": ["t1c"], "labels": "brats2024-men-rt", "command": ["brats2025", "--labels", "gtv"]}
    registry = write_registry(
        tmp_path / "r.json",
        entry("menrt", image, {"kind": "brats2025"}, **fields),
        entry("four", image, {"kind": "brats2025"}),
    )
    base = ["segment", str(t1c_only), "--registry", str(registry), "-o"]
    assert main([*base, str(tmp_path / "seg"), "-a", "menrt"]) == 0, capsys.readouterr().err
    assert _labels(tmp_path / "seg" / "menrt.nii.gz") == {0, 1}
    assert main([*base, str(tmp_path / "seg2"), "-a", "menrt", "-a", "four"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the exam lacks modalities that the algorithms read (four reads t1, t2, flair; the exam has t1c)" in err
    assert not (tmp_path / "seg2").exists()
