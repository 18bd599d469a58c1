"""Where ``btk fuse``'s whole-process time goes, for ``bench/fusion.py``.

Measured in fresh processes on the same candidates as the bench (medians of the repeats):

- a timed run of ``btk fuse --method mav``: interpreter start (``python -c pass``), the imports (what the fuse
  command needs, ``btk.fusion``, ``typer`` and ``rich``, then the rest of ``btk.cli``), the command itself
  with its own timings (its sidecar's ``timings_s``), and gzip alone with the codec btk uses (reading the
  files, decompressing them one after another, compressing one fused map);
- the imports by top-level package (``python -X importtime``, self times summed);
- a cProfile of the command after the imports: its phases, and the functions with the most own time
  (btk reads the candidates in threads, which cProfile does not follow: they show as lock waits).
"""

from __future__ import annotations

import json
import pstats
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]

#: What ``btk fuse`` itself needs to import: the fusion, its agreement report, the command line and its table.
NEEDED = ("btk.fusion", "btk.fusion.agreement", "typer", "rich.table")

_STEPS = r"""
import importlib, json, sys, time
from pathlib import Path
paths, arguments = json.loads(sys.argv[1])
times = {}
def timed(name, work):
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    times[name] = [time.perf_counter() - wall, time.process_time() - cpu]
    return result
timed("imports needed", lambda: [importlib.import_module(name) for name in NEEDED])
main = timed("imports rest", lambda: importlib.import_module("btk.cli").main)
try:
    from isal.igzip import compress, decompress
    codec = "isal"
except ImportError:
    from gzip import compress, decompress
    codec = "zlib"
raw = timed("read files", lambda: [Path(path).read_bytes() for path in paths])
data = timed("decompress", lambda: [decompress(item) for item in raw])
timed("compress one", lambda: compress(data[0]))
code = timed("command", lambda: main(arguments))
print("STEPS" + json.dumps({"codec": codec, "times": times}))
sys.exit(code)
""".replace("NEEDED", repr(NEEDED))

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

#: Phases of the command: a name and the functions (a fragment of their file's path, function name) whose
#: cumulative time it is, the first one found counting (the largest, where several functions match).
PHASES = {
    "read candidates": [("btk/fusion/", "load_candidates")],
    "agreement report": [("btk/fusion/", "_agreement"), ("btk/fusion/", "agreement_report")],
    "write outputs": [("btk/fusion/", "save")],
    "console output (rich)": [("rich/console.py", "print")],
    "imports inside the command": [("<frozen importlib._bootstrap>", "_find_and_load")],
}
FUSE = ("btk/fusion/", "fuse")

Stats = dict[tuple[str, int, str], tuple]


def report(paths: list[str], storage: str, folder: Path, repeats: int, whole: dict[str, float]) -> None:
    """Print the breakdown of ``btk fuse --method mav`` on ``paths`` (``storage`` names their voxel type;
    ``whole``: the bench's whole-process medians for it). Wall and CPU seconds for each part."""
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "fused.nii.gz"
    arguments = ["fuse", *paths, "-o", str(output), "--method", "mav", "--force"]
    start = _median_pairs([_run([sys.executable, "-c", "pass"])[0] for _ in range(repeats)])
    steps, timings, codec = [], [], ""
    for _ in range(repeats):
        process, stdout = _run([sys.executable, "-c", _STEPS, json.dumps([paths, arguments])])
        line = next(line for line in stdout.splitlines() if line.startswith("STEPS"))
        measured = json.loads(line.removeprefix("STEPS"))
        codec = measured["codec"]
        steps.append({**measured["times"], "whole": process})
        timings.append(json.loads(output.with_suffix("").with_suffix(".json").read_text())["timings_s"])
    step = {name: _median_pairs([run[name] for run in steps]) for name in steps[0]}
    own = _median_by_key(timings)
    imports = _median_by_key([_import_times(["-m", "btk", *arguments]) for _ in range(repeats)])
    needed = _median_by_key([_import_times(["-c", f"import {', '.join(NEEDED)}"]) for _ in range(repeats)])
    others = {name: seconds for name, seconds in imports.items() if name not in needed}
    stats = _profile(arguments, folder / "fuse.prof")
    gzip_parts = ("read files", "decompress", "compress one")
    gzip_alone = [sum(step[name][i] for name in gzip_parts) for i in (0, 1)]
    parts = [
        start[i] + gzip_alone[i] + sum(step[name][i] for name in ("imports needed", "imports rest", "command"))
        for i in (0, 1)
    ]
    rest = [step["whole"][i] - parts[i] for i in (0, 1)]

    def line(label: str, pair: list[float], note: str = "") -> None:
        print(f"    {label:40} {pair[0]:6.3f} s {pair[1]:6.3f} s  {note}")

    print(f"\nWhere `btk fuse --method mav` spends its time ({len(paths)} {storage} candidates; medians of {repeats})")
    print(
        f"  whole process in the bench table           {whole.get('seconds', float('nan')):6.3f} s wall, "
        f"{whole.get('cpu_seconds', float('nan')):.3f} s CPU"
    )
    print(f"  a timed run, {'':30}   wall      CPU")
    line("whole process", step["whole"])
    line("interpreter start (python -c pass)", start)
    line("imports the fuse command needs", step["imports needed"], ", ".join(NEEDED))
    line("imports of the rest of btk.cli", step["imports rest"], "the other commands' modules")
    line(
        "the command, main(['fuse', ...])",
        step["command"],
        "its sidecar (wall): "
        + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in own.items())
        + f"; the rest {step['command'][0] - sum(own.values()):.3f} s: output checks, writing, table",
    )
    line(
        f"gzip alone ({codec}), added by this run",
        gzip_alone,
        f"reading the files {step['read files'][0]:.3f} s, decompressing all {step['decompress'][0]:.3f} s, "
        f"compressing one map {step['compress one'][0]:.3f} s",
    )
    line("exit and the rest", rest)
    print("  imports by package (-X importtime, self wall, with importtime's own overhead):")
    print(f"    all of `btk fuse` ({sum(imports.values()):.3f} s): {_largest(imports)}")
    print(f"    packages the fuse command does not import ({sum(others.values()):.3f} s): {_largest(others)}")
    _print_profile(stats)


def _largest(seconds_by_name: dict[str, float], count: int = 12) -> str:
    ranked = sorted(seconds_by_name.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {seconds:.3f}" for name, seconds in ranked)


def _run(argv: list[str]) -> tuple[list[float], str]:
    """Run ``argv``; its wall and CPU seconds (the child alone) and its standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(argv, check=True, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return [wall, cpu], completed.stdout


def _median_pairs(pairs: list[list[float]]) -> list[float]:
    return [median(pair[0] for pair in pairs), median(pair[1] for pair in pairs)]


def _import_times(command: list[str]) -> dict[str, float]:
    """Seconds spent importing each top-level package (self times of its modules summed)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True, cwd=REPO, check=True
    )
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
    subprocess.run(
        [sys.executable, "-c", _PROFILE, str(stats_path), *arguments], check=True, cwd=REPO, capture_output=True
    )
    return pstats.Stats(str(stats_path)).stats  # type: ignore[attr-defined]


def _cumulative(stats: Stats, candidates: list[tuple[str, str]]) -> float | None:
    for fragment, name in candidates:
        found = [
            values[3]
            for (file, _, function), values in stats.items()
            if function == name and fragment in file.replace("\\", "/")
        ]
        if found:
            return max(found)
    return None


def _print_profile(stats: Stats) -> None:
    total = sum(values[2] for values in stats.values())
    phases = {name: _cumulative(stats, candidates) for name, candidates in PHASES.items()}
    fuse = _cumulative(stats, [FUSE])
    if fuse is not None:
        inside = (phases["read candidates"] or 0.0) + (phases["agreement report"] or 0.0)
        phases = {
            "read candidates": phases.pop("read candidates"),
            "fusion (checks, vote)": max(fuse - inside, 0.0),
            **phases,
        }
    known = sum(seconds for seconds in phases.values() if seconds)
    print(f"  profile of the command after `import btk.cli` (cProfile, one run; it slows Python code): {total:.3f} s")
    for name, seconds in phases.items():
        print(f"    {name:36} {'n/a' if seconds is None else f'{seconds:6.3f} s'}")
    print(f"    {'other (option parsing, output checks)':36} {max(total - known, 0.0):6.3f} s")
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:10]
    print("    most own time: " + "; ".join(f"{_short(key)} {values[2]:.3f} s" for key, values in top))


def _short(key: tuple[str, int, str]) -> str:
    file, _, function = key
    if file == "~":
        return function
    parts = Path(file).parts
    for anchor in ("site-packages", "btk"):
        if anchor in parts:
            index = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[index + (anchor == "site-packages") :]) + f":{function}"
    return f"{Path(file).name}:{function}"
