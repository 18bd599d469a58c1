"""Batch throughput: studies per hour with 1 and 2 local workers on the same batch, and the scaling.

    python -m bench.batch [--studies 6] [--candidates 5] [--method simple] [--full]

The batch: copies of a real exam already in BraTS space (``tests/data/pipeline``) with the real candidate
segmentations of ``tests/data/fusion`` (segment -> fuse -> report, the stages every study goes through).
``--full`` uses copies of the shipped raw example exam instead, so every study is also preprocessed
(registration and HD-BET brain extraction on the CPU: minutes per study). Each configuration runs in a
fresh output folder through ``btk run`` in its own process (start-up included, as a user would see it).
Prints wall time, studies per hour, CPU time, and the scaling efficiency (rate with 2 workers / (2 x rate
with 1)). On a machine shared with other work the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BRATS_EXAM = REPO / "tests" / "data" / "pipeline" / "BraTS-GLI-00001-000"
RAW_EXAM = REPO / "examples" / "exams" / "TCGA-FG-6692"
CANDIDATES = [REPO / "tests" / "data" / "fusion" / case / "candidates" for case in ("TCGA-FG-6692", "TCGA-DU-7294")]


def build_batch(root: Path, studies: int, candidates: int, full: bool) -> tuple[Path, Path]:
    """``studies`` exam folders (symbolic links to the real images) and their candidates."""
    exams, segmentations = root / "studies", root / "candidates"
    for index in range(studies):
        name = f"study-{index + 1:02d}"
        (exams / name).mkdir(parents=True)
        source = RAW_EXAM if full else BRATS_EXAM
        for image in source.glob("*.nii.gz"):
            link = image.name if full else f"{name}-{image.name.rsplit('-', 1)[-1]}"
            os.symlink(image, exams / name / link)
        (segmentations / name).mkdir(parents=True)
        for path in sorted(CANDIDATES[index % 2].glob("*.nii.gz"))[:candidates]:
            shutil.copyfile(path, segmentations / name / path.name)
    return exams, segmentations


def run_batch(exams: Path, segmentations: Path, output: Path, workers: int, method: str) -> tuple[float, float]:
    """Wall and CPU seconds (this process's children) of one ``btk run``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "btk",
        "run",
        str(exams),
        "-o",
        str(output),
        "--candidates",
        str(segmentations),
        "--workers",
        str(workers),
        "--method",
        method,
        "--fast",
        "--device",
        "cpu",
    ]
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=6)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--method", default="simple")
    parser.add_argument("--full", action="store_true", help="raw exams: preprocessing included")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="btk-bench-batch-") as folder:
        root = Path(folder)
        exams, segmentations = build_batch(root, args.studies, args.candidates, args.full)
        print(
            f"batch: {args.studies} studies ({'raw, preprocessed' if args.full else 'BraTS space'}), "
            f"{args.candidates} candidates each, fusion {args.method}; {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'workers':>7} {'wall s':>8} {'studies/h':>10} {'CPU s':>8}")
        rates = {}
        for workers in (1, 2):
            wall, cpu = run_batch(exams, segmentations, root / f"out-{workers}", workers, args.method)
            rates[workers] = args.studies / wall * 3600
            print(f"{workers:>7} {wall:>8.1f} {rates[workers]:>10.0f} {cpu:>8.1f}")
        print(
            f"speed-up with 2 workers: {rates[2] / rates[1]:.2f}x; scaling efficiency {rates[2] / (2 * rates[1]):.0%}"
        )


if __name__ == "__main__":
    main()
