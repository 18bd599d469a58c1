"""btk fuse and btk alarms from the command line: outputs, sidecars, and bad input."""

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.fusion.agreement import AgreementReport, CandidateAgreement, ensemble_alarms
from tests.support.data import DATA, candidate_paths, save


def _run(*args):
    return main([str(a) for a in args])


def _no_outputs(folder):
    return [p.name for p in folder.iterdir()] == [] if folder.exists() else True


def test_fuse_writes_image_sidecar_and_agreement(tmp_path, fusion_case, capsys):
    out = tmp_path / "fused.nii.gz"
    assert _run("fuse", fusion_case / "candidates", "-o", out, "--method", "simple", "--weights", "1,2,1,1,1") == 0
    image = nib.load(str(out))
    first = nib.load(str(candidate_paths(fusion_case)[0]))
    assert image.get_data_dtype() == np.uint8
    assert np.array_equal(image.affine, first.affine)
    assert image.header.get_zooms() == first.header.get_zooms()
    sidecar = json.loads((tmp_path / "fused.json").read_text())
    assert sidecar["method"] == "simple" and sidecar["flavour"] == "default" and sidecar["mode"] == "labels"
    assert sidecar["parameters"] == {"threshold": 0.05, "increment": 0.07, "max_iterations": 25}
    assert [c["name"] for c in sidecar["candidates"]] == [
        p.name.removesuffix(".nii.gz") for p in candidate_paths(fusion_case)
    ]
    assert [c["weight"] for c in sidecar["candidates"]] == [1, 2, 1, 1, 1]
    assert all(len(c["sha256"]) == 64 for c in sidecar["candidates"])
    assert sidecar["details"]["iterations"] >= 1 and "fuse" in sidecar["timings_s"]
    agreement = AgreementReport.load(tmp_path / "fused_agreement.json")
    assert agreement.case == "fused" and len(agreement.candidates) == 5
    assert all(0.5 < c.dice["WT"] <= 1 for c in agreement.candidates)
    assert "Agreement with the simple consensus" in capsys.readouterr().err


def test_fuse_without_agreement_writes_no_report_and_the_same_image(tmp_path, capsys):
    case = DATA / "fusion" / "TCGA-FG-6692" / "candidates"
    assert _run("fuse", case, "-o", tmp_path / "with.nii.gz") == 0
    (tmp_path / "without").mkdir()
    out = tmp_path / "without" / "fused.nii.gz"
    capsys.readouterr()
    assert _run("fuse", case, "-o", out, "--no-agreement") == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["fused.json", "fused.nii.gz"]
    assert np.array_equal(
        np.asanyarray(nib.load(str(out)).dataobj), np.asanyarray(nib.load(str(tmp_path / "with.nii.gz")).dataobj)
    )
    err = capsys.readouterr().err
    assert "Agreement with the" not in err and "fused.json" in err and "_agreement.json" not in err


def test_fuse_brats_toolkit_flavour_cli_matches_reference(tmp_path, fusion_case):
    out = tmp_path / "mav.nii.gz"
    assert _run("fuse", *candidate_paths(fusion_case), "-o", out, "--flavour", "brats-toolkit") == 0
    expected = np.asanyarray(nib.load(str(fusion_case / "brats_toolkit_reference" / "mav.nii.gz")).dataobj)
    assert np.array_equal(np.asanyarray(nib.load(str(out)).dataobj), expected)


@pytest.fixture
def candidates(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    seg = np.zeros((12, 12, 12), np.uint8)
    seg[4:8, 4:8, 4:8] = 2
    seg[5:7, 5:7, 5:7] = 4
    paths = []
    for i in range(3):  # one oedema voxel each of their own: three distinct candidates
        distinct = seg.copy()
        distinct[3, 4 + i, 4] = 2
        paths.append(save(distinct, folder / f"c{i}.nii.gz"))
    return paths


def _expect_error(capsys, out, *args, message):
    code = _run("fuse", *args, "-o", out)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert message in err.replace("\n", " "), err
    assert _no_outputs(out.parent)


def test_fewer_than_two_candidates(tmp_path, candidates, capsys):
    _expect_error(capsys, tmp_path / "out" / "f.nii.gz", candidates[0], message="at least 2 candidate")


def test_truncated_file_is_named(tmp_path, candidates, capsys):
    data = candidates[1].read_bytes()
    candidates[1].write_bytes(data[: len(data) // 2])
    _expect_error(capsys, tmp_path / "out" / "f.nii.gz", *candidates, message=f"{candidates[1]}: cannot read the image")


def test_not_a_nifti_file(tmp_path, candidates, capsys):
    bogus = tmp_path / "in" / "notes.nii.gz"
    bogus.write_bytes(gzip.compress(b"hello"))
    _expect_error(capsys, tmp_path / "out" / "f.nii.gz", *candidates, bogus, message=f"{bogus}: cannot read")


def test_different_shape_is_named(tmp_path, candidates, capsys):
    odd = save(np.zeros((12, 12, 13)), tmp_path / "in" / "odd.nii.gz")
    _expect_error(
        capsys,
        tmp_path / "out" / "f.nii.gz",
        *candidates,
        odd,
        message=f"{odd}: shape (12, 12, 13) differs from the first candidate's (12, 12, 12)",
    )


def test_different_affine_is_named(tmp_path, candidates, capsys):
    affine = np.eye(4)
    affine[0, 3] = 5.0
    moved = save(np.zeros((12, 12, 12)), tmp_path / "in" / "moved.nii.gz", affine)
    _expect_error(capsys, tmp_path / "out" / "f.nii.gz", *candidates, moved, message=f"{moved}: the affine")


def test_non_integer_labels(tmp_path, candidates, capsys):
    soft = save(np.full((12, 12, 12), 0.5), tmp_path / "in" / "soft.nii.gz", dtype=np.float32)
    _expect_error(
        capsys, tmp_path / "out" / "f.nii.gz", *candidates, soft, message=f"{soft}: the segmentation holds non-integer"
    )


def test_unknown_labels(tmp_path, candidates, capsys):
    seg = np.zeros((12, 12, 12), np.uint8)
    seg[0, 0, 0] = 7
    strange = save(seg, tmp_path / "in" / "strange.nii.gz")
    _expect_error(
        capsys,
        tmp_path / "out" / "f.nii.gz",
        *candidates,
        strange,
        message=f"{strange}: label values 7 are not part of the brats2021 convention",
    )


def test_four_d_image(tmp_path, candidates, capsys):
    four = save(np.zeros((12, 12, 12, 2)), tmp_path / "in" / "four.nii.gz")
    _expect_error(
        capsys, tmp_path / "out" / "f.nii.gz", *candidates, four, message=f"{four}: a segmentation must be a 3-D image"
    )


def test_existing_output_needs_force(tmp_path, candidates, capsys):
    out = tmp_path / "f.nii.gz"
    assert _run("fuse", *candidates, "-o", out) == 0
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert _run("fuse", *candidates, "-o", out, "--method", "staple") == 2
    assert "exists already" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == written
    assert _run("fuse", *candidates, "-o", out, "--force", "--method", "staple") == 0
    assert nib.load(str(out)).shape == (12, 12, 12)
    assert json.loads((tmp_path / "f.json").read_text())["method"] == "staple"


@pytest.mark.parametrize("existing", ["f.nii.gz", "f.json", "f_agreement.json"])
def test_a_file_btk_did_not_write_is_never_replaced(tmp_path, candidates, capsys, existing):
    out = tmp_path / "f.nii.gz"
    (tmp_path / existing).write_bytes(b"keep me")
    for force in ((), ("--force",)):
        assert _run("fuse", *candidates, "-o", out, *force) == 2
        assert str(tmp_path / existing) in capsys.readouterr().err
        assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [existing]
        assert (tmp_path / existing).read_bytes() == b"keep me"


def test_bad_weights_and_method(tmp_path, candidates, capsys):
    _expect_error(
        capsys, tmp_path / "o" / "f.nii.gz", *candidates, "--weights", "1,x", message="cannot read the weights"
    )
    _expect_error(capsys, tmp_path / "o" / "f.nii.gz", *candidates, "--method", "vote", message="unknown fusion method")


def test_output_folder_that_cannot_be_created(tmp_path, candidates, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    _expect_error(capsys, blocker / "sub" / "f.nii.gz", *candidates, message="cannot create the output folder")


def _report(case, scores):
    return AgreementReport(
        case,
        "brats2021",
        [
            CandidateAgreement(name, {"WT": s, "TC": s, "ET": s}, {"WT": 1.0, "TC": 1.0, "ET": 1.0})
            for name, s in scores.items()
        ],
    )


def test_alarms_flag_the_outlier_case():
    reports = [_report(f"case{i}", {"a": 0.90 + 0.01 * (i % 3), "b": 0.85 + 0.01 * (i % 2)}) for i in range(8)]
    reports.append(_report("bad", {"a": 0.40, "b": 0.86}))
    result = ensemble_alarms(reports, alpha=3.0)
    assert result.counts["bad"] == 3  # algorithm a, all three regions
    assert sum(result.counts.values()) == 3
    assert {(a.case, a.algorithm) for a in result.alarms} == {("bad", "a")}
    median_a = 0.91
    assert result.thresholds["a"]["WT"] == pytest.approx(median_a - 3 * 0.01)


def test_alarms_need_a_cohort():
    with pytest.raises(BtkError, match="at least 3 cases"):
        ensemble_alarms([_report("x", {"a": 0.9}), _report("y", {"a": 0.9})])


@pytest.mark.slow
def test_alarms_cli_over_fused_cases(tmp_path, capsys):
    """Fuse real cases, break one algorithm on a copy of a case, and find it in the cohort."""
    cases = {}
    for case in ("TCGA-FG-6692", "TCGA-DU-7294"):
        cases[case] = candidate_paths(DATA / "fusion" / case)
        for flip in (0, 1):  # mirrored copies agree exactly like the originals
            cases[f"{case}-flip{flip}"] = []
            folder = tmp_path / "inputs" / f"{case}-flip{flip}"
            folder.mkdir(parents=True)
            for path in cases[case]:
                image = nib.load(str(path))
                data = np.flip(np.asanyarray(image.dataobj), axis=flip)
                cases[f"{case}-flip{flip}"].append(save(data, folder / path.name, image.affine))
    broken = tmp_path / "inputs" / "broken"
    broken.mkdir()
    cases["broken"] = []
    for path in cases["TCGA-FG-6692"]:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
        if path.name.startswith("scan"):
            data = np.roll(data, 12, axis=0)  # a failed registration: the tumour is in the wrong place
        cases["broken"].append(save(data, broken / path.name, image.affine))
    for case, paths in cases.items():
        assert _run("fuse", *paths, "-o", tmp_path / "fused" / f"{case}.nii.gz") == 0
    out = tmp_path / "alarms.json"
    assert _run("alarms", tmp_path / "fused", "-o", out, "--alpha", "3") == 0
    report = json.loads(out.read_text())
    assert report["alarms_per_case"]["broken"] >= 2
    assert {a["algorithm"] for a in report["alarms"] if a["case"] == "broken"} == {"scan-20"}
    assert "broken" in capsys.readouterr().err
