"""Region selection: ``btk fuse --take REGION=SOURCE`` and ``btk run --take`` build the label map region by
region from chosen candidates (or the fusion of some), nested by construction, recorded in the sidecar and
the report."""

import json

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.fusion import Fusionator
from btk.labels import BRATS_2021
from btk.pipeline import Pipeline, PipelineOptions
from tests.support.data import DATA, candidate_paths
from tests.support.pipeline import brats_batch

CASE = DATA / "fusion" / "TCGA-FG-6692"


@pytest.fixture(scope="module")
def named():
    """The five real candidates (brats2021 labels), by name."""
    paths = candidate_paths(CASE)
    arrays = Fusionator().fuse(paths, agreement=False).candidates.arrays
    return {path.name.removesuffix(".nii.gz"): array for path, array in zip(paths, arrays)}


def _mask(array, region):
    return BRATS_2021.region_mask(array, region)


def test_oedema_from_one_pipeline_core_and_enhancing_tumour_from_another(named):
    a, b = named["isen-20"], named["scan-20"]
    result = Fusionator().fuse(
        list(named.values()), names=list(named), take={"WT": "isen-20", "TC": "scan-20", "ET": "scan-20"}
    )
    fused = result.segmentation
    assert result.regions and result.sources == {"WT": ["isen-20"], "TC": ["scan-20"], "ET": ["scan-20"]}
    np.testing.assert_array_equal(_mask(fused, "ET"), _mask(b, "ET"))
    np.testing.assert_array_equal(_mask(fused, "TC"), _mask(b, "TC"))  # scan-20's ET lies inside its TC
    np.testing.assert_array_equal(_mask(fused, "WT"), _mask(a, "WT") | _mask(b, "TC"))  # nested by construction
    np.testing.assert_array_equal(fused == 2, _mask(a, "WT") & ~_mask(b, "TC"))  # the oedema is isen-20's
    assert [c.name for c in result.agreement.candidates] == list(named)


@pytest.mark.parametrize("method", ["mav", "simple"])
def test_a_region_fused_from_some_candidates_and_the_rest_from_all(named, method):
    names = list(named)
    some = ["scan-20", "sanet0-20", "isen-20"]
    result = Fusionator().fuse(list(named.values()), method, names=names, take={"TC": some}, agreement=False)
    of_some = Fusionator().fuse([named[n] for n in some], method, regions=True, agreement=False).segmentation
    of_all = Fusionator().fuse(list(named.values()), method, regions=True, agreement=False).segmentation
    fused = result.segmentation
    np.testing.assert_array_equal(_mask(fused, "ET"), _mask(of_all, "ET"))
    np.testing.assert_array_equal(_mask(fused, "TC"), _mask(of_some, "TC") | _mask(of_all, "ET"))
    np.testing.assert_array_equal(_mask(fused, "WT"), _mask(of_all, "WT") | _mask(fused, "TC"))
    assert set(result.details) == {"WT", "TC", "ET"}


def test_take_is_checked_against_the_candidates_and_the_convention(named):
    arrays, names = list(named.values()), list(named)
    fusionator = Fusionator()
    with pytest.raises(BtkError, match="no region 'CC'") as error:
        fusionator.fuse(arrays, names=names, take={"CC": "isen-20"})
    assert "WT, TC, ET" in error.value.hint
    with pytest.raises(BtkError, match="'nobody', which is not a candidate") as error:
        fusionator.fuse(arrays, names=names, take={"WT": ["isen-20", "nobody"]})
    assert "isen-20" in error.value.hint
    with pytest.raises(BtkError, match="named twice"):
        fusionator.fuse(arrays, names=names, take={"WT": ["isen-20", "isen-20"]})
    with pytest.raises(BtkError, match="cannot take regions"):
        Fusionator("brats-toolkit").fuse(arrays, "simple", names=names, take={"WT": "isen-20"})


def test_fuse_command_records_the_sources_in_the_sidecar(tmp_path, named):
    out = tmp_path / "fused.nii.gz"
    code = main(
        ["fuse", str(CASE / "candidates"), "-o", str(out), "--take", "WT=isen-20", "--take", "ET=scan-20+isen-20"]
    )
    assert code == 0
    sidecar = json.loads((tmp_path / "fused.json").read_text())
    assert sidecar["mode"] == "regions"
    assert sidecar["region_sources"] == {"WT": ["isen-20"], "ET": ["scan-20", "isen-20"]}


@pytest.mark.parametrize(
    ("take", "message"),
    [
        (["WT"], "cannot read --take 'WT'"),
        (["WT=a+"], "cannot read --take"),
        (["WT=isen-20", "WT=scan-20"], "names the region WT twice"),
        (["XX=isen-20"], "no region 'XX'"),
        (["WT=isen-21"], "'isen-21', which is not a candidate"),
    ],
)
def test_fuse_command_refuses_a_bad_take_with_exit_2(tmp_path, take, message, capsys):
    arguments = ["fuse", str(CASE / "candidates"), "-o", str(tmp_path / "f.nii.gz")]
    for item in take:
        arguments += ["--take", item]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert message in " ".join(error.split()) and "Traceback" not in error
    assert list(tmp_path.iterdir()) == []


def test_run_checks_the_regions_of_take_before_any_study_starts(tmp_path):
    with pytest.raises(BtkError, match="no region 'GTV'"):
        PipelineOptions(tmp_path / "out", take={"GTV": ("a",)})


@pytest.mark.slow
def test_run_refuses_a_take_naming_another_candidate_than_a_studys_only_one(tmp_path):
    studies, candidates = brats_batch(tmp_path, ["case"], [1])
    batch = Pipeline(tmp_path / "out", candidates=candidates / "case", workers=1, take={"ET": ("nobody",)}).run(
        studies / "case"
    )
    assert not batch.ok and "--take names nobody, but this study's only candidate is" in batch.results[0].reason


@pytest.mark.slow
def test_run_takes_a_region_from_a_chosen_candidate_and_says_so_in_the_report(tmp_path):
    studies, candidates = brats_batch(tmp_path, ["case"], [3])
    names = sorted(p.name.removesuffix(".nii.gz") for p in (candidates / "case").glob("*.nii.gz"))
    out = tmp_path / "out"
    pipeline = Pipeline(out, candidates=candidates / "case", method="mav", workers=1, take={"ET": (names[0],)})
    assert pipeline.run(studies / "case").ok
    fused = Fusionator().fuse(sorted((candidates / "case").glob("*.nii.gz")), "mav", take={"ET": names[0]})
    written = np.asarray(nib.load(out / "case" / "fuse" / "case_fused.nii.gz").dataobj)
    np.testing.assert_array_equal(written > 0, fused.segmentation > 0)
    np.testing.assert_array_equal(written == 3, fused.segmentation == 4)  # written in brats2023 labels
    page = (out / "case" / "report" / "report.html").read_text()
    assert f"ET taken from {names[0]}" in page and "Fusion: <b>mav</b> (regions)" in page
