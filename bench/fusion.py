"""Fusion speed and memory: btk against BraTS Toolkit's Fusionator and LabelFusion on the same real candidates.

    python -m bench.fusion [--repeats 3] [--sizes 5 10 20] [--storage uint8 float32]
        [--methods mav simple staple]

The reference tools live in their own virtual environments under ``~/.cache/btk-bench/`` (made on first use):
``brats-toolkit`` 1.0.18 (with numpy<2, rich<14) and ``labelfusion`` 1.0.15 (with setuptools<81, which its
``pkg_resources`` import needs). Candidate sets of 5, 10 and 20 are built from the five real candidates in
``tests/data/fusion`` (beyond 5, copies shifted by one, two, three voxels, so all differ), stored as ``uint8``
(as shipped) and as ``float32`` files (the same labels), and fused by:

- ``btk``: the default flavour, mav, simple and staple;
- ``btk-lean``: the same with ``--no-agreement`` (no agreement report: what the reference tools do);
- ``btk-compat``: ``--flavour brats-toolkit --no-agreement`` (BraTS Toolkit's results, and like BraTS Toolkit
  no agreement report), mav and simple;
- ``brats-toolkit``: its Fusionator, mav and simple;
- ``labelfusion``: its ``fuse_images``: mav is its ITK voting (SimpleITK's LabelVotingImageFilter), staple
  SimpleITK's MultiLabelSTAPLE, simple its own SIMPLE.

Two timings, each in a fresh process, median of the repeats (btk's modules byte-compiled first, as installing
it does: :func:`bench.compile_btk`):

- whole process: interpreter start, imports, reading (gzip), fusing, writing, exit. For btk the real
  command, ``python -m btk fuse ... --force`` (which also writes the sidecar and the agreement report and prints
  the table); for the reference tools ``bench/fusion_driver.py`` (imports plus one fusion; LabelFusion's own
  ``fusion_run`` also reads every candidate twice more for its checks, so this favours it).
- in-process: ``bench/fusion_driver.py`` times one call that reads, fuses and writes (btk without the
  agreement report), after the imports.

Wall time, CPU time (user + system, all threads: on a busy machine the steadier figure) and peak memory
(whole process: peak RSS of the process; in-process: how far the call raised it). A measurement stops
repeating once its runs have taken ``--budget`` seconds (LabelFusion's SIMPLE takes minutes); the table says
how many runs each median has. Outputs: the brats-toolkit flavour must equal BraTS Toolkit voxel for voxel (and, for
the five real candidates, the fusions published with them); btk against LabelFusion is shown as the number
of voxels that differ; every tool must give the same result for the uint8 and the float32 files. Then
``bench/fusion_breakdown.py`` shows where ``btk fuse``'s whole-process time goes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import nibabel as nib
import numpy as np

from bench import compile_btk, fusion_breakdown

REPO = Path(__file__).resolve().parents[1]
CASE = REPO / "tests" / "data" / "fusion" / "TCGA-FG-6692"
DRIVER = REPO / "bench" / "fusion_driver.py"
CACHE = Path.home() / ".cache" / "btk-bench"
#: Each reference tool's virtual environment (a folder under CACHE) and what it is made with.
REFERENCE_PACKAGES = {
    "brats-toolkit": ["brats-toolkit==1.0.18", "numpy<2", "rich<14"],
    "labelfusion": ["labelfusion==1.0.15", "setuptools>=75,<81"],
}
TOOL_METHODS = {
    "btk": ("mav", "simple", "staple"),
    "btk-lean": ("mav", "simple", "staple"),
    "btk-compat": ("mav", "simple"),
    "brats-toolkit": ("mav", "simple"),
    "labelfusion": ("mav", "simple", "staple"),
}
STORAGES = ("uint8", "float32")
#: Whole-process speed-ups the issue asks for: (reference, btk tool, method) -> factor.
TARGETS = {
    ("labelfusion", "btk", "mav"): 1.0,
    ("labelfusion", "btk-lean", "mav"): 1.0,
    ("labelfusion", "btk", "staple"): 5.0,
    ("labelfusion", "btk", "simple"): 5.0,
    ("brats-toolkit", "btk-compat", "mav"): 4.0,
    ("brats-toolkit", "btk-compat", "simple"): 10.0,
}


def reference_python(tool: str) -> Path:
    """The Python of ``tool``'s virtual environment, made (or completed) on first use."""
    folder = CACHE / tool
    python, marker = folder / "bin" / "python", folder / ".btk-bench-packages"
    packages = REFERENCE_PACKAGES[tool]
    if not marker.exists() or marker.read_text().split() != packages:
        print(f"Installing {' '.join(packages)} into {folder} (once) ...", flush=True)
        if not python.exists():
            venv.create(folder, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", *packages], check=True)
        marker.write_text("\n".join(packages))
    return python


def candidate_set(size: int, storage: str, folder: Path) -> list[str]:
    """``size`` distinct candidates stored as ``storage``: the five real ones, then copies shifted by 1, 2, ...
    voxels."""
    originals = sorted((CASE / "candidates").glob("*.nii.gz"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(size):
        source = originals[index % len(originals)]
        shift = index // len(originals)
        if shift == 0 and storage == "uint8":
            paths.append(str(source))
            continue
        image = nib.load(str(source))
        data = np.roll(np.asanyarray(image.dataobj), shift, axis=index % 3).astype(storage)
        header = image.header.copy()
        header.set_data_dtype(storage)
        target = folder / f"{source.name.removesuffix('.nii.gz')}-shift{shift}.nii.gz"
        nib.save(nib.Nifti1Image(data, image.affine, header), str(target))
        paths.append(str(target))
    return paths


class ProcessFailed(Exception):
    """A measured process exited with an error (e.g. ran out of the memory it may use)."""


@dataclass
class Process:
    """A finished child process: its output and what it cost."""

    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    rss_mb: float


def run_process(argv: list[str], memory_limit_gb: float) -> Process:
    """Run ``argv`` from the repository root with at most ``memory_limit_gb`` of address space (the machine
    may be shared); wall time, CPU time and peak RSS of that process alone."""
    limit = int(memory_limit_gb * 2**30)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=err,
            cwd=REPO,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        raise ProcessFailed(f"exit {process.returncode}: {last[:120]}")
    return Process(stdout, stderr, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def btk_command(tool: str, method: str, paths: list[str], output: Path) -> list[str]:
    """``python -m btk fuse`` as a user runs it."""
    options = {"btk-compat": ["--flavour", "brats-toolkit", "--no-agreement"], "btk-lean": ["--no-agreement"]}.get(
        tool, []
    )
    return [sys.executable, "-m", "btk", "fuse", *paths, "-o", str(output), "--method", method, *options, "--force"]


def driver_command(python: Path, tool: str, method: str, paths: list[str], output: Path) -> list[str]:
    driven = "btk" if tool == "btk-lean" else tool  # in-process, btk is timed without the report anyway
    return [str(python), str(DRIVER), json.dumps([driven, method, paths, str(output)])]


def in_process(process: Process) -> dict[str, float]:
    line = next(line for line in process.stdout.splitlines() if line.startswith("BENCH"))
    return json.loads(line.removeprefix("BENCH"))


@dataclass
class Measurement:
    """Medians over the runs of one tool, method and candidate set."""

    runs: int
    whole: dict[str, float]
    inner: dict[str, float]
    output: np.ndarray | None
    failure: str | None = None


def measure(
    python: Path, tool: str, method: str, paths: list[str], folder: Path, args: argparse.Namespace
) -> Measurement:
    """Run ``tool`` up to ``args.repeats`` times (fewer once the runs took ``args.budget`` seconds); a tool
    that fails is recorded as failed (btk failing ends the bench)."""
    whole, inner = [], []
    whole_out, inner_out = folder / f"{tool}-{method}.nii.gz", folder / f"{tool}-{method}-driver.nii.gz"
    spent = 0.0
    while len(whole) < args.repeats and (not whole or spent < args.budget):
        try:
            if tool.startswith("btk"):
                command = run_process(btk_command(tool, method, paths, whole_out), args.memory_limit_gb)
                driven = run_process(driver_command(python, tool, method, paths, inner_out), args.memory_limit_gb)
            else:
                command = driven = run_process(
                    driver_command(python, tool, method, paths, whole_out), args.memory_limit_gb
                )
        except ProcessFailed as failure:
            if tool.startswith("btk"):
                sys.exit(f"{tool} failed on {len(paths)} candidates ({method}): {failure}")
            return Measurement(0, {}, {}, None, str(failure))
        whole.append({"seconds": command.seconds, "cpu_seconds": command.cpu_seconds, "rss_mb": command.rss_mb})
        inner.append(in_process(driven))
        spent += command.seconds + (driven.seconds if driven is not command else 0.0)
    output = voxels(whole_out)
    if tool.startswith("btk") and not np.array_equal(output, voxels(inner_out)):
        sys.exit(f"btk fuse and the Python API disagree ({tool}, {method}, {len(paths)} candidates)")
    return Measurement(len(whole), medians(whole), medians(inner), output)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: median(run[key] for run in runs) for key in runs[0]} if runs else {}


def voxels(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(str(path)).dataobj).astype(np.uint8)


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@dataclass
class Row:
    """Every tool's figures for one candidate set and method, and how their outputs compare."""

    size: int
    storage: str
    method: str
    figures: dict[str, Measurement]
    digests: dict[str, str]
    compat_identical: bool | None
    published_identical: bool | None
    labelfusion_differing: int | None
    labelled: int | None


def compare(size: int, storage: str, method: str, figures: dict[str, Measurement]) -> Row:
    outputs = {tool: m.output for tool, m in figures.items() if m.output is not None}
    compat = None
    if "btk-compat" in outputs and "brats-toolkit" in outputs:
        compat = bool(np.array_equal(outputs["btk-compat"], outputs["brats-toolkit"]))
    published = None
    if size == 5 and "btk-compat" in outputs:
        reference = voxels(CASE / "brats_toolkit_reference" / f"{method}.nii.gz")
        published = bool(np.array_equal(outputs["btk-compat"], reference))
    differing = labelled = None
    if "btk" in outputs and "labelfusion" in outputs:
        differing = int(np.count_nonzero(outputs["btk"] != outputs["labelfusion"]))
        labelled = int(np.count_nonzero((outputs["btk"] > 0) | (outputs["labelfusion"] > 0)))
    digests = {tool: digest(output) for tool, output in outputs.items()}
    for measurement in figures.values():
        measurement.output = None  # twenty-candidate runs would otherwise hold gigabytes
    return Row(size, storage, method, figures, digests, compat, published, differing, labelled)


def progress(figures: dict[str, Measurement]) -> str:
    """Each tool's whole-process wall and CPU seconds, or its failure."""
    return ", ".join(
        f"{tool} {m.failure}"
        if m.failure
        else f"{tool} {m.whole['seconds']:.2f} s ({m.whole['cpu_seconds']:.2f} s CPU)"
        for tool, m in figures.items()
    )


def print_figures(rows: list[Row]) -> None:
    print(
        "\nWhole process (fresh interpreter; btk: `python -m btk fuse`, with sidecar and agreement report) and "
        "in-process (read + fuse + write, after the imports); medians."
    )
    print(
        f"{'n':>3} {'storage':8} {'method':7} {'tool':14} {'runs':>4} | {'whole s':>8} {'CPU s':>7} {'RSS MB':>7} | "
        f"{'in-proc s':>9} {'CPU s':>7} {'+RSS MB':>8}"
    )
    for row in rows:
        for tool, m in row.figures.items():
            if m.failure:
                print(f"{row.size:>3} {row.storage:8} {row.method:7} {tool:14} failed ({m.failure})")
                continue
            print(
                f"{row.size:>3} {row.storage:8} {row.method:7} {tool:14} {m.runs:>4} | {m.whole['seconds']:>8.3f} "
                f"{m.whole['cpu_seconds']:>7.3f} {m.whole['rss_mb']:>7.0f} | {m.inner['seconds']:>9.3f} "
                f"{m.inner['cpu_seconds']:>7.3f} {m.inner['rss_growth_mb']:>8.0f}"
            )


def print_ratios(rows: list[Row]) -> list[str]:
    """Speed-ups of btk over each reference (whole-process wall and CPU, in-process wall and CPU) against the
    targets, with the output comparisons; returns the targets missed."""
    print(
        "\nSpeed-ups (reference / btk; btk-compat against BraTS Toolkit, btk against LabelFusion); "
        "the targets are on the whole process, judged on wall and on CPU time."
    )
    print(
        f"{'n':>3} {'storage':8} {'method':7} {'reference':14} | {'whole':>7} {'CPU':>7} {'in-proc':>8} {'CPU':>7} | "
        f"{'target':>6} {'met wall/CPU':12} | outputs"
    )
    missed = []
    for row in rows:
        for (reference, ours, method), factor in TARGETS.items():
            if method != row.method or reference not in row.figures or ours not in row.figures:
                continue
            theirs, mine = row.figures[reference], row.figures[ours]
            if theirs.failure:
                print(f"{row.size:>3} {row.storage:8} {method:7} {reference:14} | failed ({theirs.failure})")
                missed.append(f"{row.size} {row.storage} {method}: {reference} failed, not compared")
                continue
            whole = theirs.whole["seconds"] / mine.whole["seconds"]
            cpu = theirs.whole["cpu_seconds"] / mine.whole["cpu_seconds"]
            met = f"{'yes' if whole >= factor else 'NO'}/{'yes' if cpu >= factor else 'NO'}"
            if "NO" in met:
                missed.append(
                    f"{row.size} {row.storage} {method}: {ours} {whole:.2f}x wall, {cpu:.2f}x CPU vs "
                    f"{reference} (target {factor:g}x)"
                )
            if reference == "brats-toolkit":
                outputs = "identical" if row.compat_identical else "DIFFERENT"
                if row.published_identical is not None:
                    outputs += ", = published fusion" if row.published_identical else ", NOT the published fusion"
            else:
                outputs = f"{row.labelfusion_differing} voxels differ (of {row.labelled} labelled by either)"
            print(
                f"{row.size:>3} {row.storage:8} {method:7} {reference:14} | {whole:>6.1f}x {cpu:>6.1f}x "
                f"{theirs.inner['seconds'] / mine.inner['seconds']:>7.1f}x "
                f"{theirs.inner['cpu_seconds'] / mine.inner['cpu_seconds']:>6.1f}x | "
                f"{factor:>5g}x {met:12} | {outputs}"
            )
    return missed


def storage_mismatches(rows: list[Row]) -> list[str]:
    """Tools whose output for the float32 files differs from that for the uint8 files."""
    by_key = {(row.size, row.method, row.storage): row.digests for row in rows}
    mismatches = []
    for (size, method, storage), digests in by_key.items():
        other = by_key.get((size, method, "uint8"))
        if storage != "uint8" and other:
            mismatches += [
                f"{tool} {method} {size}" for tool in digests if tool in other and digests[tool] != other[tool]
            ]
    return mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is shown")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds after which a measurement stops repeating (at least one run)",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=16.0,
        help="address space each measured process may use (a tool that needs more is shown as failed)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--storage", nargs="+", choices=STORAGES, default=list(STORAGES))
    parser.add_argument("--methods", nargs="+", choices=TOOL_METHODS["btk"], default=list(TOOL_METHODS["btk"]))
    parser.add_argument("--tools", nargs="+", choices=list(TOOL_METHODS), default=list(TOOL_METHODS))
    parser.add_argument(
        "--breakdown",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="profile where `btk fuse --method mav` spends its time (on the first size)",
    )
    args = parser.parse_args()
    pythons = {
        tool: reference_python(tool) if tool in REFERENCE_PACKAGES else Path(sys.executable) for tool in args.tools
    }
    rows, sets = [], {}
    compile_btk()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for size in args.sizes:
            for storage in args.storage:
                paths = sets[size, storage] = candidate_set(size, storage, scratch / f"{storage}-{size}")
                for method in args.methods:
                    folder = scratch / f"{storage}-{size}-{method}"
                    folder.mkdir()
                    figures = {
                        tool: measure(pythons[tool], tool, method, paths, folder, args)
                        for tool in args.tools
                        if method in TOOL_METHODS[tool]
                    }
                    rows.append(compare(size, storage, method, figures))
                    print(f"measured {size} {storage} candidates, {method}: {progress(figures)}", flush=True)
        print_figures(rows)
        missed = print_ratios(rows)
        mismatches = storage_mismatches(rows)
        same = "yes" if not mismatches else "NO: " + ", ".join(mismatches)
        print(f"\nuint8 and float32 files give the same output: {same}")
        if args.breakdown:
            size = args.sizes[0]
            for storage in args.storage:
                whole = next(
                    (
                        row.figures["btk"].whole
                        for row in rows
                        if row.size == size and row.storage == storage and row.method == "mav" and "btk" in row.figures
                    ),
                    {},
                )
                fusion_breakdown.report(
                    sets[size, storage], storage, scratch / f"breakdown-{storage}", args.repeats, whole
                )
    print(
        "\nTargets (whole process): btk mav at least as fast as LabelFusion's ITK voting, btk STAPLE and SIMPLE "
        "at least 5x faster than LabelFusion's, btk SIMPLE 10x and mav 4x faster than BraTS Toolkit."
    )
    print("Targets missed: " + ("; ".join(missed) if missed else "none"))
    failures = [row for row in rows if row.compat_identical is False or row.published_identical is False]
    if failures or mismatches:
        sys.exit(
            "outputs changed: the brats-toolkit flavour differs from BraTS Toolkit, or float32 files give other results"
        )


if __name__ == "__main__":
    main()
