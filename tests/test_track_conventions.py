"""The label conventions of the other BraTS tracks: paediatric (ET, NET, CC, ED) and meningioma
radiotherapy (GTV), with their own regions, through fusion, agreement, evaluation and the Segmentor's
choice of the written convention.

No real paediatric or radiotherapy candidates are shipped, so the real glioma candidates are renumbered into
those conventions by a lookup table of the test's own (glioma necrosis/non-enhancing core as paediatric NET;
the whole tumour as GTV): each result must be the glioma result renumbered the same way.
"""

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.evaluation import evaluate_arrays
from btk.fusion import Fusionator
from btk.labels import (
    BRATS_2021,
    BRATS_2023,
    BRATS_2024_MEN_RT,
    BRATS_2024_PED,
    BRATS_2024_POST,
    convert,
    get_convention,
    holding_convention,
)
from btk.report.exam import region_volumes_ml
from btk.segment import Segmentor
from btk.segment.registry import load_registry
from tests.support.data import DATA, candidate_paths, save

CASE = DATA / "fusion" / "TCGA-FG-6692"
#: brats2021 value -> paediatric value (NCR/NET -> 2 NET, ED -> 4 ED, ET -> 1 ET) and -> radiotherapy GTV.
AS_PEDIATRIC = np.array([0, 2, 4, 0, 1], np.uint8)
AS_GTV = np.array([0, 1, 1, 0, 1], np.uint8)


@pytest.fixture(scope="module")
def glioma_candidates():
    return Fusionator().fuse(candidate_paths(CASE), agreement=False).candidates.arrays


def test_paediatric_and_radiotherapy_regions_follow_the_official_evaluator():
    """brats-evaluation 0.0.10, configs/config_ped.yaml and config_MenRT.yaml."""
    ped = get_convention("brats2024-ped")
    assert ped.labels == (0, 1, 2, 3, 4)
    assert {r: ped.region_labels(r) for r in ped.region_names} == {
        "WT": (1, 2, 3, 4),
        "TC": (1, 2, 3),
        "CC": (3,),
        "ET": (1,),
    }
    assert get_convention("brats2024-men-rt").region_names == ("GTV",)
    assert BRATS_2024_MEN_RT.region_labels("GTV") == (1,)
    assert BRATS_2024_POST.region_names == ("WT", "TC", "ET", "RC")
    with pytest.raises(BtkError, match="no region 'TC'"):
        BRATS_2024_MEN_RT.region_labels("TC")


def test_paediatric_maps_are_built_from_their_regions_nested():
    wt = np.array([1, 1, 1, 1, 0], bool)
    tc = np.array([0, 1, 1, 1, 0], bool)
    cc = np.array([0, 0, 1, 0, 0], bool)
    et = np.array([0, 0, 0, 1, 1], bool)  # the last ET voxel lies outside WT and TC
    seg = BRATS_2024_PED.from_regions({"WT": wt, "TC": tc, "CC": cc, "ET": et})
    assert seg.tolist() == [4, 2, 3, 1, 1]
    assert BRATS_2024_PED.tie_order() == (0, 4, 2, 3, 1)  # background, ED, NET, CC, ET


def test_conversions_exist_only_between_conventions_naming_the_same_classes():
    with pytest.raises(BtkError, match="NET"):
        convert(np.array([0, 2], np.uint8), BRATS_2024_PED, BRATS_2023)
    with pytest.raises(BtkError, match="GTV"):
        convert(np.array([0, 1], np.uint8), BRATS_2024_MEN_RT, BRATS_2023)
    assert BRATS_2023.classes_missing_for(BRATS_2024_PED) == ("NET", "CC")
    assert not BRATS_2023.classes_missing_for(BRATS_2021)


def test_the_holding_convention_is_the_modern_one_that_loses_nothing():
    assert holding_convention([BRATS_2021, BRATS_2023]) is BRATS_2023
    assert holding_convention([BRATS_2021, BRATS_2024_POST]) is BRATS_2024_POST
    assert holding_convention([BRATS_2024_PED]) is BRATS_2024_PED
    assert holding_convention([BRATS_2023, BRATS_2024_PED, BRATS_2024_PED]) is BRATS_2024_PED  # holds the most


@pytest.mark.parametrize("regions", [False, True])
@pytest.mark.parametrize("method", ["mav", "simple", "staple"])
def test_paediatric_fusion_is_the_glioma_fusion_renumbered(glioma_candidates, method, regions):
    glioma = Fusionator(labels="brats2021").fuse(glioma_candidates, method, regions=regions, agreement=False)
    ped = Fusionator(labels="brats2024-ped").fuse(
        [AS_PEDIATRIC[c] for c in glioma_candidates], method, regions=regions, agreement=False
    )
    assert ped.convention is BRATS_2024_PED
    np.testing.assert_array_equal(ped.segmentation, AS_PEDIATRIC[glioma.segmentation])


@pytest.mark.parametrize("method", ["mav", "simple"])
def test_radiotherapy_fusion_is_the_whole_tumour_fusion(glioma_candidates, method):
    glioma = Fusionator(labels="brats2021").fuse(glioma_candidates, method, regions=True, agreement=False)
    gtv = Fusionator(labels="brats2024-men-rt").fuse([AS_GTV[c] for c in glioma_candidates], method)
    np.testing.assert_array_equal(gtv.segmentation == 1, BRATS_2021.region_mask(glioma.segmentation, "WT"))
    assert [set(c.dice) for c in gtv.agreement.candidates] == [{"GTV"}] * 5


def test_paediatric_agreement_evaluation_and_volumes_use_its_regions(glioma_candidates):
    ped = [AS_PEDIATRIC[c] for c in glioma_candidates]
    fused = Fusionator(labels="brats2024-ped").fuse(ped, "mav")
    glioma = Fusionator(labels="brats2021").fuse(glioma_candidates, "mav")
    for mine, theirs in zip(fused.agreement.candidates, glioma.agreement.candidates):
        assert list(mine.dice) == ["WT", "TC", "CC", "ET"]
        assert mine.dice["CC"] == 1.0  # no candidate has a cyst: empty agrees with empty
        for region in ("WT", "TC", "ET"):
            assert mine.dice[region] == theirs.dice[region]
            assert mine.hd95_mm[region] == theirs.hd95_mm[region]
    rows = evaluate_arrays(
        ped[0], fused.segmentation, prediction_labels="brats2024-ped", reference_labels="brats2024-ped"
    )
    assert [row.region for row in rows] == ["WT", "TC", "CC", "ET"]
    reference = evaluate_arrays(glioma_candidates[0], glioma.segmentation, prediction_labels="brats2021")
    assert [r.metrics.dice for r in rows if r.region != "CC"] == [r.metrics.dice for r in reference]
    volumes = region_volumes_ml(fused.segmentation, (1.0, 1.0, 1.0), "brats2024-ped")
    assert list(volumes) == ["WT", "TC", "CC", "ET"] and volumes["CC"] == 0.0
    assert volumes["WT"] == region_volumes_ml(glioma.segmentation, (1.0, 1.0, 1.0), "brats2021")["WT"]


def test_evaluation_refuses_conventions_without_a_common_region():
    with pytest.raises(BtkError, match="no region in common"):
        ones = np.ones((2, 2, 2), np.uint8)
        evaluate_arrays(ones, ones, prediction_labels="brats2024-men-rt", reference_labels="brats2023")


def test_fuse_command_in_the_paediatric_convention(tmp_path, glioma_candidates, capsys):
    paths = [save(AS_PEDIATRIC[c], tmp_path / f"c{i}.nii.gz") for i, c in enumerate(glioma_candidates)]
    out = tmp_path / "out" / "fused.nii.gz"
    out.parent.mkdir()
    assert main(["fuse", *map(str, paths), "-o", str(out), "--labels", "brats2024-ped", "--regions"]) == 0
    assert json.loads((tmp_path / "out" / "fused.json").read_text())["label_convention"] == "brats2024-ped"
    agreement = json.loads((tmp_path / "out" / "fused_agreement.json").read_text())
    assert all(list(c["dice"]) == ["WT", "TC", "CC", "ET"] for c in agreement["candidates"])
    assert "Agreement with the mav consensus" in capsys.readouterr().err


def _segmentor():
    return Segmentor(load_registry())


def test_segment_writes_each_track_in_a_convention_that_holds_its_labels():
    segmentor = _segmentor()
    ped = segmentor._entries(["brats24-ped-1"])
    assert segmentor._writing_convention(ped, every=False)[0] is BRATS_2024_PED
    adult = segmentor._entries(None)  # glioma and glioma-post: the cavity needs brats2024-post
    target, kept = segmentor._writing_convention(adult, every=True)
    assert target is BRATS_2024_POST and kept == adult
    menrt = segmentor._entries(["brats25-menrt-1"])
    assert segmentor._writing_convention(menrt, every=False)[0] is BRATS_2024_MEN_RT


def test_segment_refuses_algorithms_whose_labels_the_convention_cannot_hold():
    segmentor = Segmentor(load_registry(), labels="brats2023")
    with pytest.raises(BtkError, match=r"brats24-ped-1 writes brats2024-ped labels \(NET, CC\)") as error:
        segmentor._writing_convention(segmentor._entries(["brats24-ped-1"]), every=False)
    assert "--labels brats2024-ped" in error.value.hint
    every = _segmentor()._entries(None, track="pediatric")  # 2023 entries use glioma labels, 2024-25 their own
    target, kept = _segmentor()._writing_convention(every, every=True)
    assert target is BRATS_2024_PED
    assert {a.labels for a in kept} == {"brats2024-ped"} and len(kept) < len(every)


def test_run_writes_in_the_convention_that_holds_its_algorithms_labels(tmp_path):
    from btk.pipeline import PipelineOptions

    assert PipelineOptions(tmp_path / "out").labels == "brats2023"  # candidates only
    assert PipelineOptions(tmp_path / "out", algorithms=("brats24-ped-1",)).labels == "brats2024-ped"
    assert PipelineOptions(tmp_path / "out", algorithms=("brats23-faking-it", "isen-20")).labels == "brats2023"
    assert PipelineOptions(tmp_path / "out", algorithms=("brats24-faking-it",)).labels == "brats2024-post"
    with pytest.raises(BtkError, match="different atlas spaces"):  # 2023 and 2024 glioma: SRI24 and MNI152
        PipelineOptions(tmp_path / "out", algorithms=("brats23-faking-it", "brats24-faking-it"))
    with pytest.raises(BtkError, match="brats24-ped-1 writes NET, CC") as error:
        PipelineOptions(tmp_path / "out", algorithms=("brats24-ped-1",), labels="brats2023")
    assert "--labels brats2024-ped" in error.value.hint
    with pytest.raises(BtkError, match="no region 'CC'"):
        PipelineOptions(tmp_path / "out", algorithms=("brats23-faking-it",), take={"CC": ("x",)})


def test_run_track_picks_the_default_algorithm_or_says_why_not(tmp_path, capsys):
    exam = tmp_path / "exam"
    exam.mkdir()
    assert main(["run", str(exam), "-o", str(tmp_path / "out"), "--track", "pediatric", "--cpu"]) == 2
    assert "no ranked algorithm that btk can run without a GPU" in capsys.readouterr().err
    assert main(["run", str(exam), "-o", str(tmp_path / "out"), "--track", "ssa", "-a", "btk-unet"]) == 2
    assert "--track chooses the algorithm when none is named" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "name", sorted(get_convention(n).name for n in ("2021", "2023", "2024", "brats2024-ped", "brats2024-men-rt"))
)
def test_every_convention_has_colours_and_viewer_tables(tmp_path, name):
    from btk.report import write_itksnap_labels, write_slicer_colour_table
    from btk.report.colours import label_colours

    convention = get_convention(name)
    assert set(label_colours(convention)) == set(convention.tissues)
    assert write_itksnap_labels(convention, tmp_path / "labels.txt").read_text().count('"') == 2 * (
        len(convention.tissues) + 1
    )
    assert len(write_slicer_colour_table(convention, tmp_path / "c.ctbl").read_text().splitlines()) == 3 + len(
        convention.tissues
    )


@pytest.mark.slow
def test_run_in_the_paediatric_convention_imports_fuses_evaluates_and_reports(tmp_path, glioma_candidates):
    from btk.pipeline import Pipeline
    from tests.support.pipeline import brats_batch

    studies, candidates = brats_batch(tmp_path, ["case"], [3])
    image = nib.load(str(next((candidates / "case").glob("*.nii.gz"))))
    for path in (candidates / "case").glob("*.nii.gz"):
        glioma = np.asarray(nib.load(str(path)).dataobj, np.uint8)
        nib.save(nib.Nifti1Image(AS_PEDIATRIC[glioma], image.affine), str(path))  # paediatric candidates
    reference = tmp_path / "reference.nii.gz"
    nib.save(nib.Nifti1Image(AS_PEDIATRIC[glioma_candidates[0]], image.affine), str(reference))
    out = tmp_path / "out"
    pipeline = Pipeline(out, candidates=candidates / "case", method="mav", labels="brats2024-ped", reference=reference)
    batch = pipeline.run(studies / "case")
    assert batch.ok, batch.results[0].reason
    rows = list(csv.DictReader((out / "case" / "evaluate" / "evaluation.csv").open()))
    assert [r["region"] for r in rows] == ["WT", "TC", "CC", "ET"]
    assert float(rows[0]["volume_ref_ml"]) == pytest.approx(np.count_nonzero(glioma_candidates[0]) / 1000, abs=1e-6)
    report = json.loads((out / "case" / "report" / "report.json").read_text())
    assert list(report["volumes_ml"]) == ["WT", "TC", "CC", "ET"] and report["labels"] == "brats2024-ped"
    assert (out / "case" / "report" / "t1c.png").is_file()
    fused = np.asarray(nib.load(str(out / "case" / "fuse" / "case_fused.nii.gz")).dataobj)
    assert set(np.unique(fused)) <= {0, 1, 2, 4}
