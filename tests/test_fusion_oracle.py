"""The brats-toolkit flavour reproduces BraTS Toolkit (brats-toolkit 1.0.18) voxel for voxel on real candidates.

The oracle outputs in tests/data/fusion_oracle were produced by running brats-toolkit itself
(tests/data/fusion_oracle/make_oracle.py); brats_toolkit_reference/ holds the fusions published with the candidates.
"""

import json

import nibabel as nib
import numpy as np
import pytest

from btk.fusion import Fusionator
from btk.fusion.candidates import load_candidates
from btk.labels import BRATS_2021
from tests.support.data import DATA, candidate_paths

ORACLE = DATA / "fusion_oracle"
MANIFEST = json.loads((ORACLE / "manifest.json").read_text())


def _voxels(path):
    return np.asanyarray(nib.load(str(path)).dataobj)


@pytest.mark.parametrize("entry", MANIFEST["outputs"], ids=[o["file"] for o in MANIFEST["outputs"]])
def test_brats_toolkit_flavour_matches_brats_toolkit_output(entry):
    candidates = [DATA / "fusion" / entry["case"] / "candidates" / name for name in entry["candidates"]]
    regions = entry["method"] == "brats-simple"
    result = Fusionator(flavour="brats-toolkit").fuse(
        candidates, method="simple" if regions else entry["method"], weights=entry["weights"], regions=regions
    )
    expected_image = nib.load(str(ORACLE / entry["file"]))
    expected = np.asanyarray(expected_image.dataobj)
    assert expected.any()
    assert np.array_equal(result.segmentation, expected)
    assert np.allclose(result.to_nifti().affine, expected_image.affine, atol=1e-4)


@pytest.mark.parametrize("method", ["mav", "simple"])
def test_brats_toolkit_flavour_matches_the_published_reference_fusions(fusion_case, method):
    result = Fusionator(flavour="brats-toolkit").fuse(candidate_paths(fusion_case), method=method)
    assert np.array_equal(result.segmentation, _voxels(fusion_case / "brats_toolkit_reference" / f"{method}.nii.gz"))


def _strict_majority_voxels(stack):
    majority = np.zeros(stack.shape[1:], bool)
    for label in (0, *BRATS_2021.tissues):
        majority |= (stack == label).sum(axis=0) > stack.shape[0] / 2
    return majority


@pytest.mark.parametrize("method", ["mav", "simple"])
@pytest.mark.slow
def test_default_flavour_agrees_with_brats_toolkit_flavour_where_the_defects_do_not_bite(fusion_case, method):
    """Where one label (background included) has a strict majority, neither the ignored background votes
    nor the tie and overlap rules matter, and no candidate is dropped: both flavours must agree exactly."""
    paths = candidate_paths(fusion_case)
    stack = load_candidates(paths).stack
    majority = _strict_majority_voxels(stack)
    default = Fusionator().fuse(paths, method=method)
    brats_toolkit = Fusionator(flavour="brats-toolkit").fuse(paths, method=method)
    if method == "simple":
        assert default.details["kept"] == list(range(len(paths)))
    differ = default.segmentation != brats_toolkit.segmentation
    assert not differ[majority].any()
    assert differ[~majority].any()  # the voxels without majority are where the flavours part ways


def test_region_wise_simple_agrees_between_flavours_on_real_data(fusion_case):
    paths = candidate_paths(fusion_case)
    default = Fusionator().fuse(paths, method="simple", regions=True)
    brats_toolkit = Fusionator(flavour="brats-toolkit").fuse(paths, method="simple", regions=True)
    assert np.array_equal(default.segmentation, brats_toolkit.segmentation)
