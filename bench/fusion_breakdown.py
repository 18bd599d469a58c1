"""Where ``btk fuse``'s whole-process time goes, for ``bench/fusion.py``.

Measured in fresh processes on the same candidates as the bench: interpreter start (``python -c pass``),
imports (``python -X importtime -m btk fuse ...``, self time summed per top-level package), and a cProfile of
the command after ``import btk.cli`` (reading with its gzip decompression and checksums, the fusion, the
agreement report, writing with its gzip compression, console output, imports done inside the command),
with the functions that take the most time themselves.
"""

from __future__ import annotations

import pstats
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]

_PROFILE = r"""
import cProfile, sys
from btk.cli import main
profile = cProfile.Profile()
profile.enable()
code = main(sys.argv[2:])
profile.disable()
profile.dump_stats(sys.argv[1])
sys.exit(code)
"""

#: Phases of the command: a name and the functions (file suffix, function) whose cumulative time it is,
#: the first one found counting.
PHASES = {
    "read candidates": [("btk/fusion/candidates.py", "load_candidates")],
    "agreement report": [("btk/fusion/__init__.py", "_agreement"), ("btk/fusion/agreement.py", "agreement_report")],
    "write outputs": [("btk/fusion/__init__.py", "save")],
    "console output (rich)": [("rich/console.py", "print")],
    "imports inside the command": [("<frozen importlib._bootstrap>", "_find_and_load")],
}
FUSE = ("btk/fusion/__init__.py", "fuse")
#: Built-in functions summed by their own time, by what their names contain.
BUILTINS = {
    "gzip decompression": ("zlib.Decompress", "decompress"),
    "gzip compression": ("zlib.Compress", "compress"),
    "SHA-256": ("_hashlib.HASH", "update"),
}

Stats = dict[tuple[str, int, str], tuple]


def report(paths: list[str], storage: str, folder: Path, repeats: int, sidecar_timings: dict[str, float]) -> None:
    """Print the breakdown of ``btk fuse --method mav`` on ``paths`` (``storage`` names their voxel type)."""
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "fused.nii.gz"
    command = ["-m", "btk", "fuse", *paths, "-o", str(output), "--method", "mav", "--force"]
    start = median(_wall([sys.executable, "-c", "pass"]) for _ in range(repeats))
    imports = _median_by_key([_import_times(command) for _ in range(repeats)])
    stats = _profile(command[2:], folder / "fuse.prof")
    total_import = sum(imports.values())
    print(f"\nWhere `btk fuse --method mav` spends its time ({len(paths)} {storage} candidates; medians of {repeats}):")
    print(f"  interpreter start (python -c pass)       {start:6.3f} s")
    print(f"  imports (python -X importtime)           {total_import:6.3f} s: "
          + ", ".join(f"{name} {seconds:.3f}" for name, seconds in sorted(imports.items(), key=lambda x: -x[1])[:10]))
    if sidecar_timings:
        print("  the command's own timings (sidecar)      "
              + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in sidecar_timings.items()))
    _print_profile(stats)


def _wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, cwd=REPO, capture_output=True)
    return time.perf_counter() - started


def _import_times(command: list[str]) -> dict[str, float]:
    """Seconds spent importing each top-level package (self times of its modules summed)."""
    completed = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True,
                               cwd=REPO, check=True)
    totals: dict[str, float] = defaultdict(float)
    for line in completed.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        package = fields[2].strip().split(".")[0]
        totals[package] += int(fields[0]) / 1e6
    return totals


def _median_by_key(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = {key for run in runs for key in run}
    return {key: median(run.get(key, 0.0) for run in runs) for key in keys}


def _profile(arguments: list[str], stats_path: Path) -> Stats:
    subprocess.run([sys.executable, "-c", _PROFILE, str(stats_path), *arguments], check=True, cwd=REPO,
                   capture_output=True)
    return pstats.Stats(str(stats_path)).stats  # type: ignore[attr-defined]


def _cumulative(stats: Stats, candidates: list[tuple[str, str]]) -> float | None:
    for suffix, name in candidates:
        found = [values[3] for (file, _, function), values in stats.items()
                 if function == name and file.replace("\\", "/").endswith(suffix)]
        if found:
            return sum(found)
    return None


def _builtin_time(stats: Stats, owner: str, name: str) -> float:
    return sum(values[2] for (_, _, function), values in stats.items() if owner in function and f"'{name}'" in function)


def _print_profile(stats: Stats) -> None:
    total = sum(values[2] for values in stats.values())
    phases = {name: _cumulative(stats, candidates) for name, candidates in PHASES.items()}
    fuse = _cumulative(stats, [FUSE])
    if fuse is not None:
        inside = (phases["read candidates"] or 0.0) + (phases["agreement report"] or 0.0)
        phases = {"read candidates": phases.pop("read candidates"),
                  "fusion (checks, vote)": max(fuse - inside, 0.0), **phases}
    builtins = {name: _builtin_time(stats, *where) for name, where in BUILTINS.items()}
    known = sum(seconds for name, seconds in phases.items() if seconds and name != "imports inside the command")
    print(f"  profile of the command after `import btk.cli` (cProfile, one run; it slows Python code): {total:.3f} s")
    for name, seconds in phases.items():
        print(f"    {name:36} {'n/a' if seconds is None else f'{seconds:6.3f} s'}")
    print(f"    {'other (option parsing, output checks)':36} {max(total - known, 0.0):6.3f} s")
    print("    of all that, in C: " + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in builtins.items()))
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:10]
    print("    most own time: " + "; ".join(f"{_short(key)} {values[2]:.3f} s" for key, values in top))


def _short(key: tuple[str, int, str]) -> str:
    file, line, function = key
    if file == "~":
        return function
    parts = Path(file).parts
    for anchor in ("site-packages", "btk"):
        if anchor in parts:
            index = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[index + (anchor == "site-packages"):]) + f":{function}"
    return f"{Path(file).name}:{function}"
