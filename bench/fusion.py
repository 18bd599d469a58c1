"""Fusion speed and memory: btk against BraTS Toolkit's Fusionator on the same real candidates.

    python bench/fusion.py [--repeats 3] [--sizes 5 10 20]

Installs ``brats-toolkit==1.0.18`` into its own virtual environment (``~/.cache/btk-bench/brats-toolkit``,
made once), builds candidate sets of 5, 10 and 20 from the real candidates in ``tests/data/fusion``
(beyond 5, copies shifted by one or two voxels, so all differ), and runs both fusionators, each in a fresh
process per measurement. Timed: reading the candidates, fusing and writing the result (BraTS Toolkit's
``fuse()``; btk's ``Fusionator(flavour="btk").fuse(...).save(...)`` without the agreement report, and the
default flavour with it for information). Memory: peak traced allocation during the call (tracemalloc)
and peak RSS of the process. CPU time (user + system, all threads) is shown beside wall time: on a busy
machine it is the steadier figure. Checks that the btk flavour's output equals BraTS Toolkit's voxel for voxel.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from statistics import median

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CASE = REPO / "tests" / "data" / "fusion" / "TCGA-FG-6692" / "candidates"
REFERENCE_VENV = Path.home() / ".cache" / "btk-bench" / "brats-toolkit"

_DRIVER = r"""
import json, resource, sys, time, tracemalloc
paths, out, method, tool = json.loads(sys.argv[1])
if tool == "brats-toolkit":
    from brats_toolkit.fusionator import Fusionator
    fusionator = Fusionator(verbose=False)
    run = lambda: fusionator.fuse(paths, out, method=method)
else:
    from btk.fusion import Fusionator
    flavour = "btk" if tool == "btk" else "default"
    run = lambda: Fusionator(flavour=flavour).fuse(paths, method, agreement=(tool == "btk-default")).save(out, force=True)
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
tracemalloc.start()
started, started_cpu = time.perf_counter(), cpu()
run()
seconds, cpu_seconds = time.perf_counter() - started, cpu() - started_cpu
peak = tracemalloc.get_traced_memory()[1]
print("BENCH" + json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "traced_mb": peak / 2**20,
                            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def reference_python() -> Path:
    """The Python of a virtual environment holding brats-toolkit 1.0.18 (created on first use)."""
    python = REFERENCE_VENV / "bin" / "python"
    if not python.exists():
        print(f"Installing brats-toolkit 1.0.18 into {REFERENCE_VENV} (once) ...", flush=True)
        venv.create(REFERENCE_VENV, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "brats-toolkit==1.0.18", "numpy<2", "rich<14"],
            check=True,
        )
    return python


def candidate_set(size: int, folder: Path) -> list[str]:
    """``size`` distinct candidates: the five real ones, then copies shifted by 1, 2, ... voxels."""
    originals = sorted(CASE.glob("*.nii.gz"))
    paths = []
    for index in range(size):
        source = originals[index % len(originals)]
        shift = index // len(originals)
        if shift == 0:
            paths.append(str(source))
            continue
        image = nib.load(str(source))
        data = np.roll(np.asanyarray(image.dataobj), shift, axis=index % 3)
        target = folder / f"{source.name.removesuffix('.nii.gz')}-shift{shift}.nii.gz"
        nib.save(nib.Nifti1Image(data, image.affine, image.header), str(target))
        paths.append(str(target))
    return paths


def measure(python: Path, tool: str, paths: list[str], out: Path, method: str) -> dict:
    completed = subprocess.run(
        [str(python), "-c", _DRIVER, json.dumps([paths, str(out), method, tool])],
        capture_output=True, text=True, cwd=REPO,
    )
    if completed.returncode:
        sys.exit(f"{tool} failed on {len(paths)} candidates ({method}):\n{completed.stderr}")
    line = next(line for line in completed.stdout.splitlines() if line.startswith("BENCH"))
    return json.loads(line.removeprefix("BENCH"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is shown")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20])
    args = parser.parse_args()
    theirs_python, ours_python = reference_python(), Path(sys.executable)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for size in args.sizes:
            paths = candidate_set(size, scratch)
            for method in ("mav", "simple"):
                outputs = {tool: scratch / f"{tool}-{size}-{method}.nii.gz" for tool in ("brats-toolkit", "btk", "btk-default")}
                runs = {
                    tool: [measure(theirs_python if tool == "brats-toolkit" else ours_python, tool, paths, out, method)
                           for _ in range(args.repeats)]
                    for tool, out in outputs.items()
                }
                figures = {tool: {key: median(run[key] for run in measured) for key in measured[0]}
                           for tool, measured in runs.items()}
                theirs = np.asanyarray(nib.load(str(outputs["brats-toolkit"])).dataobj)
                ours = np.asanyarray(nib.load(str(outputs["btk"])).dataobj)
                rows.append((size, method, figures, bool(np.array_equal(theirs, ours))))
                print(f"measured {size} candidates, {method}", flush=True)
    header = (f"{'n':>3} {'method':7} {'BraTS Toolkit s':>16} {'btk s':>7} {'speed-up':>9} "
              f"{'BTK CPU s':>10} {'btk CPU s':>10} {'CPU ratio':>10} {'btk+agreement s':>16} "
              f"{'BTK traced MB':>14} {'btk traced MB':>14} {'BTK RSS MB':>11} {'btk RSS MB':>11} identical")
    print()
    print(header)
    for size, method, f, identical in rows:
        theirs, ours, default = f["brats-toolkit"], f["btk"], f["btk-default"]
        print(f"{size:>3} {method:7} {theirs['seconds']:>16.3f} {ours['seconds']:>7.3f} "
              f"{theirs['seconds'] / ours['seconds']:>8.1f}x {theirs['cpu_seconds']:>10.3f} {ours['cpu_seconds']:>10.3f} "
              f"{theirs['cpu_seconds'] / ours['cpu_seconds']:>9.1f}x {default['seconds']:>16.3f} "
              f"{theirs['traced_mb']:>14.0f} {ours['traced_mb']:>14.0f} {theirs['rss_mb']:>11.0f} {ours['rss_mb']:>11.0f} "
              f"{'yes' if identical else 'NO'}")
    print("\nTargets: btk at least 20x faster for SIMPLE and 10x for majority voting, with identical output.")
    if not all(identical for *_, identical in rows):
        sys.exit("btk flavour output differs from BraTS Toolkit")


if __name__ == "__main__":
    main()
