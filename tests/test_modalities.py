"""The modality vocabulary (btk.modalities): keys, names, file suffixes and aliases."""

from __future__ import annotations

import subprocess
import sys

import pytest

from btk.errors import BtkError
from btk.modalities import (
    ALIASES,
    DISPLAY_NAMES,
    FILE_SUFFIXES,
    MODALITIES,
    SHORT_NAMES,
    canonical,
    file_stem,
    modality_of_stem,
    short_names,
)


def test_the_four_keys_in_brats_order_each_with_every_name():
    assert MODALITIES == ("t1n", "t1c", "t2w", "t2f")
    for table in (DISPLAY_NAMES, SHORT_NAMES, *FILE_SUFFIXES.values()):
        assert tuple(table) == MODALITIES
    assert SHORT_NAMES == {"t1n": "t1", "t1c": "t1c", "t2w": "t2", "t2f": "flair"}
    assert FILE_SUFFIXES["2020"] == {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}
    assert FILE_SUFFIXES["2023"] == {key: key for key in MODALITIES}


def test_every_name_of_a_modality_is_an_alias_of_its_key():
    for key in MODALITIES:
        names = {key, SHORT_NAMES[key], *(suffixes[key] for suffixes in FILE_SUFFIXES.values())}
        assert {ALIASES[name] for name in names} == {key}
    assert set(ALIASES.values()) == set(MODALITIES)


@pytest.mark.parametrize(
    ("alias", "key"),
    [
        ("t1", "t1n"),
        ("T1N", "t1n"),
        ("t1w", "t1n"),
        ("t1native", "t1n"),
        ("t1c", "t1c"),
        ("t1ce", "t1c"),
        ("T1Gd", "t1c"),
        ("t1post", "t1c"),
        ("t1wce", "t1c"),
        ("t2", "t2w"),
        ("t2w", "t2w"),
        ("flair", "t2f"),
        ("FLAIR", "t2f"),
        ("fla", "t2f"),
        (" t2f ", "t2f"),
    ],
)
def test_canonical_turns_any_alias_into_the_key(alias, key):
    assert canonical(alias) == key


@pytest.mark.parametrize("name", ["dwi", "", "t3", "t1cc"])
def test_an_unknown_modality_is_an_input_error(name):
    with pytest.raises(BtkError, match=f"unknown modality {name!r}") as raised:
        canonical(name)
    assert isinstance(raised.value, ValueError)
    assert raised.value.hint == "use t1, t1c, t2 or flair"


@pytest.mark.parametrize(
    ("stem", "key"),
    [
        ("BraTS-GLI-00000-000-t2f", "t2f"),
        ("BraTS20_Training_001_t1ce", "t1c"),
        ("pat_FLAIR", "t2f"),
        ("t1", "t1n"),
        ("exam.t2", "t2w"),
        ("scan t1c", "t1c"),
        ("brain-mask", None),
        ("t1c_mask", None),
    ],
)
def test_a_file_name_names_the_modality_it_ends_in(stem, key):
    assert modality_of_stem(stem) == key


def test_file_stems_follow_the_brats_namings():
    assert file_stem("BraTS-001", "t1n") == "BraTS-001-t1n"
    assert file_stem("BraTS-001", "t2f", "2020") == "BraTS-001_flair"
    assert [file_stem("c", key, "2020") for key in MODALITIES] == ["c_t1", "c_t1ce", "c_t2", "c_flair"]
    assert short_names(["t1n", "t2f"]) == "t1, flair"


def test_importing_the_vocabulary_imports_nothing_heavy():
    code = "import sys, btk.modalities; print(sorted({'numpy', 'nibabel'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
