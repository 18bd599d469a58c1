"""Dump the algorithm metadata of the BrainLesion orchestrator (PyPI ``brats``) as plain JSON.

btk's shipped registry (``algorithms.json``) describes every algorithm of the orchestrator except the
inpainting ones; ``tests/test_registry_orchestrator.py`` compares the two field by field. This script makes
the reference side of that comparison:

1. it creates (or reuses) a private virtual environment, by default ``~/.cache/btk-reference/brats-0.1.14``;
2. installs ``brats==0.1.14`` there with ``pip install --no-deps`` (only the package's data is read: nothing
   of it is imported or run) and PyYAML;
3. runs itself with that environment's Python to read ``brats/data/meta/*.yml`` (anchors resolved), the
   parameter files that entries ask for, and the defaults of the metadata dataclasses (read from the source
   with :mod:`ast`, not imported), and writes one JSON file, by default
   ``tests/data/orchestrator/brats-0.1.14.json``.

Each algorithm's ``run_args`` and ``additional_files`` hold the values the orchestrator uses: what its YAML
says, with the dataclass defaults filled in where it says nothing (e.g. ``shm_size`` ``"4gb"``). ``parameters``
is the parameter file the orchestrator would mount (``<image name>.yml``, else ``dummy.yml``) with its parsed
content. ``sources`` holds the sha256 of every file read.

Usage: ``python tools/orchestrator_metadata.py [--output FILE] [--venv DIR] [--version 0.1.14]``.
Exit status 3: the package could not be installed (no index reachable, or no such version).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

VERSION = "0.1.14"
ROOT = Path(__file__).resolve().parents[1]
#: The orchestrator's tracks that btk's registry covers (every one but inpainting), by metadata file.
TRACKS = {
    "adult_glioma_pre_treatment": "glioma",
    "adult_glioma_pre_and_post_treatment": "glioma-post",
    "africa": "ssa",
    "pediatric": "pediatric",
    "meningioma": "meningioma",
    "meningioma_rt": "meningioma-rt",
    "metastases": "metastases",
    "goat": "goat",
    "missing_mri": "missing-mri",
}
EXCLUDED = ("inpainting",)
INSTALL_FAILED = 3


def default_venv(version: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "btk-reference" / f"brats-{version}"


def default_output(version: str) -> Path:
    return ROOT / "tests" / "data" / "orchestrator" / f"brats-{version}.json"


def venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def installed_version(python: Path) -> str | None:
    if not python.is_file():
        return None
    probe = "import importlib.metadata as m, yaml; print(m.version('brats'))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def prepare(folder: Path, version: str) -> Path:
    """The reference environment's Python, with ``brats==version`` (no dependencies) and PyYAML installed."""
    python = venv_python(folder)
    if installed_version(python) == version:
        return python
    if not python.is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=True, clear=folder.exists()).create(folder)
    command = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", f"brats=={version}", "PyYAML"]
    done = subprocess.run(command, check=False)
    if done.returncode != 0 or installed_version(python) != version:
        raise SystemExit(INSTALL_FAILED)
    return python


# --- run inside the reference environment -----------------------------------------------------------------


def _package_folder() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("brats")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the brats package is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


def _literal(node: ast.expr | None) -> Any:
    """A dataclass field's default: a literal, or ``field(default_factory=lambda: LITERAL)``."""
    if node is None:
        return None
    if isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg == "default" and keyword.value is not None:
                return ast.literal_eval(keyword.value)
            if keyword.arg == "default_factory" and isinstance(keyword.value, ast.Lambda):
                return ast.literal_eval(keyword.value.body)
        raise ValueError(f"cannot read the default {ast.unparse(node)}")
    return ast.literal_eval(node)


def _dataclass_defaults(source: Path, name: str) -> dict[str, Any]:
    """The fields with defaults of dataclass ``name`` in ``source``, read without importing it."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {
                item.target.id: _literal(item.value)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None
            }
    raise SystemExit(f"{source}: no class {name}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dump(version: str) -> dict[str, Any]:
    import importlib.metadata

    import yaml  # type: ignore[import-untyped]

    package = _package_folder()
    data = package / "data"
    config = package / "utils" / "algorithm_config.py"
    defaults = {
        "run_args": _dataclass_defaults(config, "RunArgs"),
        "additional_files": _dataclass_defaults(config, "AdditionalFilesData"),
    }
    sources = {"brats/utils/algorithm_config.py": _sha256(config)}
    found = sorted(path.stem for path in (data / "meta").glob("*.yml"))
    unknown = sorted(set(found) - set(TRACKS) - set(EXCLUDED))
    if unknown:
        raise SystemExit(f"brats {version} has tracks btk does not know: {', '.join(unknown)}")
    algorithms = []
    for stem, track in TRACKS.items():
        meta_file = data / "meta" / f"{stem}.yml"
        sources[f"brats/data/meta/{stem}.yml"] = _sha256(meta_file)
        loaded = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
        for key, entry in loaded["algorithms"].items():
            run_args = {**defaults["run_args"], **entry["run_args"]}
            extra = entry.get("additional_files")
            parameters = None
            if run_args["parameters_file"]:
                identifier = run_args["docker_image"].split(":")[0].split("/")[-1]
                file = data / "parameters" / f"{identifier}.yml"
                if not file.exists():
                    file = data / "parameters" / "dummy.yml"
                sources[f"brats/data/parameters/{file.name}"] = _sha256(file)
                parameters = {"file": file.name, "values": yaml.safe_load(file.read_text(encoding="utf-8"))}
            algorithms.append(
                {
                    "track": track,
                    "file": stem,
                    "key": key,
                    "meta": entry["meta"],
                    "run_args": run_args,
                    "additional_files": None if extra is None else {**defaults["additional_files"], **extra},
                    "parameters": parameters,
                }
            )
    return {
        "package": "brats",
        "version": importlib.metadata.version("brats"),
        "excluded_tracks": list(EXCLUDED),
        "defaults": defaults,
        "sources": dict(sorted(sources.items())),
        "algorithms": algorithms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=VERSION, help="brats version to read (default %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON file to write (default tests/data/orchestrator/...)")
    parser.add_argument("--venv", type=Path, help="virtual environment to use (default ~/.cache/btk-reference/...)")
    parser.add_argument("--dump", action="store_true", help=argparse.SUPPRESS)  # inside the environment
    args = parser.parse_args(argv)
    output = args.output or default_output(args.version)
    if args.dump:
        text = json.dumps(dump(args.version), indent=1, ensure_ascii=False, sort_keys=False) + "\n"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        return 0
    python = prepare(args.venv or default_venv(args.version), args.version)
    command = [str(python), str(Path(__file__).resolve()), "--dump", "--version", args.version, "--output", str(output)]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
