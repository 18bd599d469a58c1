"""btk's shipped registry against the BrainLesion orchestrator's own metadata (PyPI ``brats`` 0.1.14).

``tests/data/orchestrator/brats-0.1.14.json`` is what ``tools/orchestrator_metadata.py`` read from the
package: every algorithm but the inpainting ones, with the orchestrator's defaults filled in. The fast test
checks each of them has one entry in btk's registry, field by field; the slow one installs the package from
PyPI again and checks the committed file still says what the package says.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from btk.segment.registry import AdditionalFiles, Algorithm, Registry, builtin_registry_text, parse_registry

ROOT = Path(__file__).resolve().parents[1]
VERSION = "0.1.14"
REFERENCE = ROOT / "tests" / "data" / "orchestrator" / f"brats-{VERSION}.json"
TOOL = ROOT / "tools" / "orchestrator_metadata.py"
FOUR = ["t1", "t1c", "t2", "flair"]
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def _shipped() -> Registry:
    return parse_registry(builtin_registry_text(), "btk/data/algorithms.json")  # without the user's files


def _bytes(size: str | None) -> int | None:
    """``"2gb"``, ``"2g"``, ``"512m"`` -> bytes, as Docker reads them."""
    if size is None:
        return None
    number, unit = re.fullmatch(r"([0-9]+)([bkmg]?)b?", size.strip().lower()).groups()  # type: ignore[union-attr]
    return int(number) * _UNITS[unit]


def _image(docker_image: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); Docker's tag ``latest`` when none is given."""
    repository, _, tag = docker_image.strip().partition(":")
    return repository, tag or "latest"


def _plain(value: str | None) -> str | None:
    return None if value in (None, "N/A") else value


def _expected(algorithm: dict[str, Any]) -> dict[str, Any]:
    """What btk's entry must say about one orchestrator algorithm, field by field."""
    meta, run, extra = algorithm["meta"], algorithm["run_args"], algorithm["additional_files"]
    image, tag = _image(run["docker_image"])
    mlcube = meta["year"] <= 2024  # the orchestrator runs 2023-2024 images as MLCubes, later ones on /input, /output
    expected: dict[str, Any] = {
        "track": algorithm["track"],
        "image": image,
        "tag": tag,
        "needs_root": run["requires_root"],
        "cpu_compatible": bool(run["cpu_compatible"]),
        "shm_size": _bytes(run["shm_size"]),
        "contract.kind": "mlcube" if mlcube else "brats2025",
        "contract.case_schema": run["input_name_schema"],
        "contract.timepoint_suffixes": run["suffix_by_timepoint"],
        "contract.separator": run["subject_modality_separator"],
        "contract.parameters_file": bool(run["parameters_file"]) if mlcube else None,
        "contract.parameters_name": algorithm["parameters"]["file"] if algorithm["parameters"] else None,
        "contract.parameters": algorithm["parameters"]["values"] if algorithm["parameters"] else None,
        "additional_files.zenodo_record": None if extra is None else str(extra["record_id"]),
        "additional_files.arguments": None,
        # the orchestrator's code, not its metadata: its MeningiomaRTSegmenter stages T1c alone, MissingMRI 3 of 4
        "modalities": ["t1c"] if algorithm["track"] == "meningioma-rt" else FOUR,
        "output": "image" if algorithm["track"] == "missing-mri" else "segmentation",
        "authors": meta["authors"],
        "paper": _plain(meta["paper"]),
        "year": meta["year"],
        "rank": int(re.match(r"[0-9]+", str(meta["rank"])).group()),  # type: ignore[union-attr]
        "challenge": meta["challenge"],
        "challenge_paper": _plain(meta["challenge_manuscript"]),
        "dataset_paper": _plain(meta.get("dataset_manuscript")),
    }
    if extra is not None:
        names = extra["param_name"] or []
        expected["additional_files.arguments"] = dict(zip(names, extra["param_path"] or [""] * len(names)))
    return expected


def _actual(entry: Algorithm) -> dict[str, Any]:
    """The same fields of btk's entry."""
    spec = entry.contract
    extra = entry.additional_files
    return {
        "track": entry.track,
        "image": entry.image,
        "tag": entry.tag,
        "needs_root": entry.needs_root,
        "cpu_compatible": entry.cpu_compatible,
        "shm_size": _bytes(entry.shm_size),
        "contract.kind": spec.kind,
        "contract.case_schema": getattr(spec, "case_schema", None),
        "contract.timepoint_suffixes": getattr(spec, "timepoint_suffixes", None),
        "contract.separator": getattr(spec, "separator", None),
        "contract.parameters_file": getattr(spec, "parameters_file", None),
        "contract.parameters_name": spec.parameters_name if getattr(spec, "parameters_file", False) else None,
        "contract.parameters": getattr(spec, "parameters", None),
        "additional_files.zenodo_record": None if extra is None else extra.zenodo_record,
        "additional_files.arguments": None if extra is None else extra.arguments,
        "modalities": entry.modalities,
        "output": entry.output,
        "authors": entry.authors,
        "paper": entry.paper,
        "year": entry.year,
        "rank": entry.rank,
        "challenge": entry.challenge,
        "challenge_paper": entry.challenge_paper,
        "dataset_paper": entry.dataset_paper,
    }


def _label(algorithm: dict[str, Any]) -> str:
    return f"{algorithm['file']}/{algorithm['key']} ({algorithm['run_args']['docker_image'].strip()})"


def test_the_reference_is_the_pinned_package_without_inpainting():
    reference = _reference()
    assert (reference["package"], reference["version"], reference["excluded_tracks"]) == (
        "brats",
        VERSION,
        ["inpainting"],
    )
    assert not [a for a in reference["algorithms"] if "inpainting" in a["file"]]
    keys = [(a["file"], a["key"]) for a in reference["algorithms"]]
    assert len(keys) == len(set(keys)) == 57


def test_every_orchestrator_algorithm_is_in_the_registry_field_by_field():
    reference = _reference()
    registry = _shipped()
    by_image: dict[str, list[Algorithm]] = {}
    for entry in registry.algorithms:
        by_image.setdefault(entry.image, []).append(entry)
    problems: list[str] = []
    matched: set[str] = set()
    for algorithm in reference["algorithms"]:
        image, _ = _image(algorithm["run_args"]["docker_image"])
        entries = by_image.get(image, [])
        if len(entries) != 1:
            problems.append(f"{_label(algorithm)}: {len(entries)} registry entries have image {image}, not 1")
            continue
        entry = entries[0]
        matched.add(entry.name)
        expected, actual = _expected(algorithm), _actual(entry)
        for field, wanted in expected.items():
            if actual[field] != wanted:
                problems.append(
                    f"{entry.name} = {_label(algorithm)}: {field}: btk has {actual[field]!r}, "
                    f"the orchestrator {wanted!r}"
                )
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)
    assert len(matched) == len(reference["algorithms"])
    stale = [a.name for a in registry.algorithms if a.image.startswith("brainles/") and a.name not in matched]
    assert not stale, f"registry entries with a BrainLesion image the orchestrator does not have: {stale}"


def test_the_shared_memory_default_is_the_orchestrators():
    reference = _reference()
    assert _bytes(Algorithm.model_fields["shm_size"].default) == _bytes(reference["defaults"]["run_args"]["shm_size"])
    names = reference["defaults"]["additional_files"]["param_name"]
    assert AdditionalFiles(zenodo_record="1").arguments == dict.fromkeys(names, "")


def _differences(committed: Any, fresh: Any, where: str) -> list[str]:
    """Where two dumps differ, each difference naming the algorithm and the field."""
    if isinstance(committed, dict) and isinstance(fresh, dict):
        found = []
        for key in sorted(set(committed) | set(fresh), key=str):
            if key not in committed or key not in fresh:
                found.append(f"{where}.{key}: only in the {'committed file' if key in committed else 'package'}")
            else:
                found += _differences(committed[key], fresh[key], f"{where}.{key}")
        return found
    if isinstance(committed, list) and isinstance(fresh, list) and where == "algorithms":
        old = {(a["file"], a["key"]): a for a in committed}
        new = {(a["file"], a["key"]): a for a in fresh}
        found = [
            f"{file}/{key}: only in the {'committed file' if (file, key) in old else 'package'}"
            for file, key in sorted(set(old) ^ set(new))
        ]
        for file, key in sorted(set(old) & set(new)):
            found += _differences(old[(file, key)], new[(file, key)], f"{file}/{key}")
        if not found and [(a["file"], a["key"]) for a in committed] != [(a["file"], a["key"]) for a in fresh]:
            found.append("algorithms: same algorithms, another order")
        return found
    return [] if committed == fresh else [f"{where}: committed {committed!r}, package {fresh!r}"]


@pytest.mark.slow
def test_the_committed_metadata_is_what_the_package_on_pypi_says(tmp_path):
    """Installs brats==0.1.14 from the package index into a fresh environment and dumps it again."""
    output = tmp_path / "dump.json"
    command = [sys.executable, str(TOOL), "--venv", str(tmp_path / "venv"), "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode == 3:
        pytest.skip(f"brats=={VERSION} could not be installed (no package index?): {done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    committed, fresh = _reference(), json.loads(output.read_text(encoding="utf-8"))
    found = []
    for key in sorted(set(committed) | set(fresh)):
        found += _differences(committed.get(key), fresh.get(key), key)
    assert not found, "the orchestrator's metadata changed; rerun tools/orchestrator_metadata.py:\n" + "\n".join(found)
    assert output.read_bytes() == REFERENCE.read_bytes()
