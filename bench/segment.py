"""Orchestration overhead of the Segmentor compared with a bare `docker run` of the same image.

    python -m bench.segment [--repeats 7] [--shape 240,240,155]

Both run btk's fake segmenter (containers/test-images/fakeseg) on the same synthetic exam of BraTS size;
the bare run gets the inputs pre-staged and only does
`docker run --rm --network none -v in:/input:ro -v out:/output IMAGE`. Printed per algorithm run:

- btk's whole ``Segmentor.run`` (one algorithm) and the bare ``docker run``, medians;
- overhead vs bare = median of the paired differences (btk - bare), the figure the target applies to;
- btk's own work outside the container (staging, result checks and writing, clean-up, reading the exam).

Target: at most 0.5 s overhead per algorithm.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import zoom

from btk.console import logger
from btk.segment import Exam, Segmentor, load_registry
from btk.segment.contracts import contract_for
from tests.support.docker_engine import build_test_images
from tests.support.segment import entry, make_exam, write_registry

TARGET_S = 0.5


def brats_sized_exam(folder: Path, shape: tuple[int, int, int]) -> Exam:
    """The tests' synthetic exam, resampled (nearest neighbour) to ``shape``."""
    make_exam(folder)
    for path in folder.iterdir():
        image = nib.load(str(path))
        data = np.asarray(image.dataobj)
        factors = [s / d for s, d in zip(shape, data.shape)]
        nib.save(nib.Nifti1Image(zoom(data, factors, order=0).astype(np.float32), image.affine), str(path))
    return Exam.from_folder(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--shape", default="240,240,155", help="exam grid, default BraTS 240,240,155")
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.shape.split(","))
    logger.setLevel(logging.WARNING)
    image = build_test_images()
    work = Path(tempfile.mkdtemp(prefix="btk-bench-"))
    try:
        exam = brats_sized_exam(work / "exam", shape)
        registry = load_registry(write_registry(work / "r.json", entry("bench", image, {"kind": "brats2025"})))
        staged = work / "staged"
        staged.mkdir()
        contract_for(registry.get("bench")).stage(exam, staged)
        segmentor = Segmentor(registry, force=True)
        segmentor.run(exam, ["bench"], work / "seg")  # warm-up: engine connection, page cache
        bare, btk, outside = [], [], []
        phases: dict[str, list[float]] = {"stage": [], "collect": [], "cleanup": []}
        for _ in range(args.repeats):
            shutil.rmtree(staged / "output")
            (staged / "output").mkdir()
            start = time.perf_counter()
            subprocess.run(
                [
                    "docker",
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "-v",
                    f"{staged / 'input'}:/input:ro",
                    "-v",
                    f"{staged / 'output'}:/output",
                    image,
                ],
                check=True,
                capture_output=True,
            )
            bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            run = segmentor.run(exam, ["bench"], work / "seg").runs[0]
            btk.append(time.perf_counter() - start)
            assert run.status == "ok", run.message
            outside.append(btk[-1] - run.timings["container"])
            for phase, values in phases.items():
                values.append(run.timings[phase])
        overhead = statistics.median(b - a for a, b in zip(bare, btk))
        print(f"exam {shape[0]}x{shape[1]}x{shape[2]}, {args.repeats} paired runs, image {image}")
        print(f"bare docker run      median {statistics.median(bare):.3f} s (min {min(bare):.3f})")
        print(f"btk Segmentor.run    median {statistics.median(btk):.3f} s (min {min(btk):.3f})")
        print(
            f"btk outside the container (reading the exam, staging, checks, writing, clean-up) "
            f"median {statistics.median(outside):.3f} s"
        )
        for phase, values in phases.items():
            print(f"  {phase:<8} median {statistics.median(values) * 1000:7.1f} ms")
        verdict = "OK" if overhead <= TARGET_S else "OVER TARGET"
        print(
            f"orchestration overhead per algorithm vs bare docker run: {overhead:+.3f} s "
            f"(target <= {TARGET_S} s): {verdict}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
