"""The fusion methods behind one lookup, the flavour names and their alias, and SIMPLE's parameters."""

import json
import subprocess
import sys

import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.fusion import FLAVOURS, METHODS, Fusionator, SimpleParameters, fusion_method
from btk.fusion.methods import REGISTRY, BratsToolkitSimple, Simple, Staple
from btk.fusion.names import flavour_name
from btk.pipeline.options import PipelineOptions
from tests.support.data import candidate_paths


def _voxels(*labels):
    return [np.full((1, 1, 1), label, np.uint8) for label in labels]


def test_the_registry_holds_every_method_and_flavour_by_its_name():
    assert {name for _, name in REGISTRY} == set(METHODS)
    assert {flavour for flavour, _ in REGISTRY} == set(FLAVOURS)
    assert all((method.flavour, method.name) == key for key, method in REGISTRY.items())


def test_lookup_by_name_in_any_case_and_flavour_alias():
    assert isinstance(fusion_method("SIMPLE"), Simple)
    assert isinstance(fusion_method("simple", "btk"), BratsToolkitSimple)
    assert isinstance(fusion_method("simple", "BraTS-Toolkit"), BratsToolkitSimple)
    assert isinstance(fusion_method("staple"), Staple)


@pytest.mark.parametrize(
    "name, flavour, message, hint",
    [
        ("vote", "default", "unknown fusion method 'vote'", "mav, simple, staple"),
        ("mav", "fast", "unknown flavour 'fast'", "default, brats-toolkit"),
        ("staple", "brats-toolkit", "the brats-toolkit flavour has no staple", "--method mav or simple"),
    ],
)
def test_lookup_errors_list_the_choices(name, flavour, message, hint):
    with pytest.raises(BtkError, match=message) as caught:
        fusion_method(name, flavour)
    assert hint in caught.value.hint


def test_only_the_default_simple_takes_parameters():
    parameters = SimpleParameters(threshold=0.2)
    assert fusion_method("simple", parameters=parameters).recorded_parameters()["threshold"] == 0.2
    for name, flavour in (("mav", "default"), ("staple", "default"), ("simple", "brats-toolkit")):
        with pytest.raises(BtkError, match="only apply to SIMPLE in the default flavour"):
            fusion_method(name, flavour, parameters)
    assert fusion_method("mav").recorded_parameters() == {}


@pytest.mark.parametrize(
    "given",
    [
        {"threshold": 1.5},
        {"threshold": float("nan")},
        {"increment": -0.1},
        {"increment": float("inf")},
        {"max_iterations": 0},
        {"threshold": "high"},
    ],
)
def test_simple_parameters_are_checked_when_made(given):
    with pytest.raises(BtkError, match="SIMPLE"):
        SimpleParameters(**given)


def test_simple_parameters_from_options_tell_none_given_from_defaults():
    assert SimpleParameters.from_options() is None
    assert SimpleParameters.from_options(max_iterations=3) == SimpleParameters(max_iterations=3)
    assert SimpleParameters().to_dict() == {"threshold": 0.05, "increment": 0.07, "max_iterations": 25}


def test_the_flavour_alias_btk_is_recorded_as_brats_toolkit(tmp_path, fusion_case):
    assert flavour_name("btk") == "brats-toolkit"
    assert Fusionator("btk").fuse(_voxels(1, 1, 0), "mav").flavour == "brats-toolkit"
    out = tmp_path / "mav.nii.gz"
    assert main(["fuse", *map(str, candidate_paths(fusion_case)), "-o", str(out), "--flavour", "btk"]) == 0
    assert json.loads((tmp_path / "mav.json").read_text())["flavour"] == "brats-toolkit"


def test_pipeline_options_check_simple_parameters(tmp_path):
    assert PipelineOptions(tmp_path, method="simple", simple=SimpleParameters(threshold=0.1)).simple.threshold == 0.1
    with pytest.raises(BtkError, match="only apply to SIMPLE"):
        PipelineOptions(tmp_path, method="mav", simple=SimpleParameters())
    with pytest.raises(BtkError, match="unknown fusion method"):
        PipelineOptions(tmp_path, method="vote")


def test_importing_the_fusion_package_and_its_names_loads_no_numpy():
    code = (
        "import sys, btk.fusion; from btk.fusion import METHODS, FLAVOURS, SimpleParameters; "
        "print(','.join(m for m in ('numpy', 'nibabel', 'SimpleITK') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
