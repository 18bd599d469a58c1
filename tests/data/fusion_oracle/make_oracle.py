#!/usr/bin/env python3
"""Regenerate the BraTS Toolkit fusion oracle files in this folder.

Runs BraTS Toolkit's ``Fusionator.fuse`` (PyPI ``brats-toolkit==1.0.18``) on the
real candidate segmentations in ``tests/data/fusion/<case>/candidates`` and writes
what it produces, unchanged, next to this script, plus ``manifest.json``.

Must be run with the interpreter of a venv that has brats-toolkit installed, e.g.::

    /opt/venvs/brats-toolkit/bin/python tests/data/fusion_oracle/make_oracle.py

This script is ours; it only calls brats-toolkit's public ``fuse`` entry point.
For SIMPLE it additionally records, by observing (not changing) two of
brats-toolkit's internal calls, the per-label iteration history, so that a
re-implementation can be compared step by step.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata as md
import io
import json
import logging
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

EXPECTED_VERSION = "1.0.18"
HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / "fusion"
CASES = ["TCGA-FG-6692", "TCGA-DU-7294"]
WEIGHTS = [1, 2, 1, 3, 1]
# Parameters of brats-toolkit's SIMPLE as used by fuse() (it forwards none of them).
SIMPLE_DEFAULTS = {"t": 0.05, "stop": 25, "inc": 0.07, "method": "dice", "iterations": 25}


def variants(cands: list[Path]) -> list[dict]:
    """The input set: (variant name, candidate list, weights or None)."""
    return [
        {"variant": "all5", "cands": cands, "weights": None},
        {"variant": "all5_w12131", "cands": cands, "weights": list(WEIGHTS)},
        {"variant": "first2", "cands": cands[:2], "weights": None},
        {"variant": "first3", "cands": cands[:3], "weights": None},
    ]


def sha256_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def label_counts(arr: np.ndarray) -> dict[str, int]:
    vals, counts = np.unique(arr, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(vals, counts)}


class SimpleRecorder:
    """Observes Fusionator._binaryMav / _score calls during one fuse() call.

    Arguments and return values are passed through untouched. A _binaryMav call
    that is not directly preceded by _score calls starts a new label.
    """

    def __init__(self, fusionator):
        self.f = fusionator
        self.events: list[tuple] = []
        self._orig_bm = fusionator._binaryMav
        self._orig_sc = fusionator._score

    def __enter__(self):
        def bm(candidates, weights=None):
            w = [float(x) for x in weights] if isinstance(weights, (list, tuple)) else None
            out = self._orig_bm(candidates, weights)
            self.events.append(("mav", len(candidates), w, int(np.sum(out))))
            return out

        def sc(seg, gt, method="dice"):
            s = self._orig_sc(seg, gt, method)
            self.events.append(("score", float(s)))
            return s

        self.f._binaryMav = bm
        self.f._score = sc
        return self

    def __exit__(self, *exc):
        del self.f._binaryMav
        del self.f._score

    def trace(self, labels: list[int]) -> list[dict]:
        out: list[dict] = []
        scores: list[float] = []
        prev_was_score = False
        for ev in self.events:
            if ev[0] == "score":
                scores.append(ev[1])
                prev_was_score = True
                continue
            _, n, w, fg = ev
            if not prev_was_score:  # initial estimate of a new label
                out.append({"initial_weights": w, "initial_foreground": fg, "iterations": []})
            else:
                out[-1]["iterations"].append({"dice": scores, "weights": w, "n_candidates_kept": n, "foreground": fg})
            scores = []
            prev_was_score = False
        for entry, lab in zip(out, labels):
            entry["label"] = lab
        return out


def auto_labels(arrays: list[np.ndarray]) -> list[int]:
    """Labels brats-toolkit picks when none are given (union, first entry dropped if 0 present)."""
    labs = np.unique(np.concatenate([np.unique(a) for a in arrays])).astype(int)
    if 0 in labs:
        labs = np.delete(labs, 0)
    return [int(x) for x in sorted(labs)]


def parse_arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help="folder holding <case>/candidates/*.nii.gz (default: tests/data/fusion)",
    )
    ap.add_argument("--out-dir", type=Path, default=HERE)
    return ap.parse_args()


def brats_toolkit_fusionator(version: str):
    """BraTS Toolkit's Fusionator, quiet, after checking that the expected release is installed."""
    if version != EXPECTED_VERSION:
        sys.exit(f"brats-toolkit {version} installed, expected {EXPECTED_VERSION}")
    logging.disable(logging.CRITICAL)
    warnings.filterwarnings("ignore")
    from brats_toolkit.fusionator import Fusionator

    with contextlib.redirect_stdout(io.StringIO()):  # citation banner
        return Fusionator(verbose=False)


def case_jobs(data_dir: Path, case: str) -> list[tuple[str, dict]]:
    """(method, variant) of every fusion of one case: mav and simple on each variant, region-wise SIMPLE on all5."""
    cand_dir = data_dir / case / "candidates"
    cands = sorted(cand_dir.glob("*.nii.gz"))  # sorted by file name
    if len(cands) != 5:
        sys.exit(f"expected 5 candidates in {cand_dir}, found {len(cands)}")
    jobs = [(m, v) for v in variants(cands) for m in ("mav", "simple")]
    jobs.append(("brats-simple", variants(cands)[0]))  # extra: region-based variant
    return jobs


def run_job(fus, case: str, method: str, v: dict, out_dir: Path) -> dict:
    """Run one fusion with BraTS Toolkit, write its output to ``out_dir``, and describe it for the manifest."""
    name = f"{case}__{method}__{v['variant']}.nii.gz"
    out = out_dir / name
    if out.exists():
        out.unlink()
    arrays = [sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in v["cands"]]
    rec = SimpleRecorder(fus)
    t0 = time.perf_counter()
    with rec, contextlib.redirect_stdout(io.StringIO()):
        fus.fuse([str(p) for p in v["cands"]], str(out), method=method, weights=v["weights"])
    dt = time.perf_counter() - t0
    if not out.exists():  # fuse() swallows write errors
        sys.exit(f"brats-toolkit wrote no output for {name}")
    img = sitk.ReadImage(str(out))
    arr = sitk.GetArrayFromImage(img)
    entry = {
        "file": name,
        "case": case,
        "method": method,
        "variant": v["variant"],
        "candidates": [p.name for p in v["cands"]],
        "candidate_sha256": [sha256_file(p) for p in v["cands"]],
        "weights": v["weights"],
        "weights_effective": v["weights"] or [1] * len(v["cands"]),
        "parameters": {"labels": None} if method == "mav" else dict(SIMPLE_DEFAULTS),
        "fuse_call": f"Fusionator(verbose=False).fuse(candidates, out, method={method!r}, weights={v['weights']!r})",
        "output_dtype": img.GetPixelIDTypeAsString(),
        "output_geometry_from": v["cands"][-1].name,
        "label_counts": label_counts(arr),
        "voxels_sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest(),
    }
    if method == "simple":
        entry["simple_trace"] = rec.trace(auto_labels(arrays))
    print(f"{name}: {entry['label_counts']} ({dt:.1f}s)")
    return entry


def manifest(version: str, entries: list[dict]) -> dict:
    """The manifest of all outputs: versions of what made them, how to read them, and one entry per output."""
    return {
        "producer": "brats-toolkit (BraTS Toolkit) Fusionator.fuse",
        "brats_toolkit_version": version,
        "simpleitk_version": md.version("SimpleITK"),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "candidate_order": "sorted by file name; 'first2'/'first3' are the first 2/3 of that order",
        "notes": [
            "weights=None means fuse() was called without weights (it then uses 1 per candidate).",
            "SIMPLE parameters are brats-toolkit's defaults; fuse() forwards neither labels nor them.",
            "output_geometry_from: fuse() copies origin/spacing/direction from the last file passed.",
            "Compare voxels and geometry, not file bytes: the NIfTI header written depends on the "
            "SimpleITK version (e.g. xyzt_units).",
            "simple_trace: per label (ascending), the initial weighted majority vote and each "
            "re-weighted iteration (dice of every kept candidate vs the previous estimate, "
            "weights=(dice+1)^2, foreground voxel count of the new estimate).",
        ],
        "outputs": entries,
    }


def main() -> int:
    args = parse_arguments()
    version = md.version("brats-toolkit")
    fus = brats_toolkit_fusionator(version)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    entries = [
        run_job(fus, case, method, v, args.out_dir) for case in CASES for method, v in case_jobs(args.data_dir, case)
    ]
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest(version, entries), indent=2) + "\n")
    print(f"wrote {len(entries)} outputs and manifest.json to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
