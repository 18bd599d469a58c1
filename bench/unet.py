"""Speed and memory of btk's U-Net on the CPU.

Prints, for one real BraTS-space case (240 x 240 x 155, tests/data/unet/brats/BraTS-GLI-00001-000):
inference time and peak resident memory at width 16 and 48, with and without flip TTA (8 flips), sliding
window 128^3 with overlap 0.5; and training throughput (patches/s) at width 16, patch 128^3, batch 2.
The weights are untrained (timing does not depend on them). Each measurement runs in its own process so
its peak memory is its own.

    python -m bench.unet [--threads N] [--train-steps N] [--widths 16,48] [--tta-widths 16,48]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "tests" / "data" / "unet" / "brats" / "BraTS-GLI-00001-000"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_inference(width: int, tta: bool, threads: int) -> dict:
    """Seconds and peak memory to segment the case once (after loading the images)."""
    import torch

    from btk.unet.cases import load_images, read_case
    from btk.unet.checkpoints import save_checkpoint
    from btk.unet.inference import Predictor
    from btk.unet.model import ModelConfig, UNet3D

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "untrained.pt"
        save_checkpoint(weights, UNet3D(ModelConfig(width=width)))
        predictor = Predictor([weights], tta=tta, threads=threads, device="cpu")
    images, _ = load_images(read_case(CASE, need_segmentation=False))
    before = _peak_mb()
    started = time.perf_counter()
    predictor.segment(images)
    return {
        "width": width,
        "tta": tta,
        "threads": threads,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": _peak_mb(),
        "peak_rss_before_mb": before,
    }


def measure_training(width: int, threads: int, steps: int) -> dict:
    """Training patches per second: patch 128^3, batch 2, augmentation, Dice + focal, AdamW."""
    import numpy as np
    import torch

    from btk.unet.augment import Augmentation, augment
    from btk.unet.losses import deep_supervision_loss
    from btk.unet.model import ModelConfig, UNet3D

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = UNet3D(ModelConfig(width=width)).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    images = torch.from_numpy(rng.normal(size=(2, 4, 128, 128, 128)).astype(np.float32))
    regions = torch.from_numpy((rng.random((2, 3, 128, 128, 128)) > 0.9).astype(np.float32))

    def step() -> None:
        batch, target = augment(images, regions, Augmentation(), generator)
        loss = deep_supervision_loss(model(batch), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    step()  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - started
    return {
        "width": width,
        "threads": threads,
        "patches_per_s": 2 * steps / seconds,
        "seconds_per_step": seconds / steps,
        "peak_rss_mb": _peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--widths", default="16,48")
    parser.add_argument(
        "--tta-widths", default="16,48", help="widths also timed with TTA (8 flips: about 8x the time without)"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, width, flag = args.one.split(":")
        result = (
            measure_inference(int(width), flag == "tta", args.threads)
            if kind == "infer"
            else measure_training(int(width), args.threads, args.train_steps)
        )
        print(json.dumps(result))
        return
    print(f"CPU, {args.threads} threads, case {CASE.name} (240x240x155), sliding window 128^3, overlap 0.5")
    tta_widths = args.tta_widths.split(",")
    jobs = [
        f"infer:{w}:{t}" for w in args.widths.split(",") for t in ("plain", "tta") if t == "plain" or w in tta_widths
    ]
    jobs.append("train:16:-")
    for job in jobs:
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                job,
                "--threads",
                str(args.threads),
                "--train-steps",
                str(args.train_steps),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        if job.startswith("infer"):
            print(
                f"inference  width {result['width']:>2}  TTA {'on ' if result['tta'] else 'off'}  "
                f"{result['seconds']:8.1f} s  peak RSS {result['peak_rss_mb']:7.0f} MB",
                flush=True,
            )
        else:
            print(
                f"training   width {result['width']:>2}  patch 128^3 batch 2  {result['patches_per_s']:.3f} patches/s "
                f"({result['seconds_per_step']:.1f} s/step)  peak RSS {result['peak_rss_mb']:.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
