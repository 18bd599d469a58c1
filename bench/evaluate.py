"""Evaluation speed: btk's ``--scheme brats2023`` and ``brats2025`` against the official tools, same cases.

    python -m bench.evaluate [--metrics ../shared/oracles/brats2023-metrics] [--repeats 1]

The 2025 comparison runs PyPI ``brats-evaluation`` 0.0.10 (panoptica) in its own virtual environment under
``~/.cache/btk-bench/brats-evaluation`` (its evaluator on the bundled glioma configuration, each case's files)
against btk's ``--scheme brats2025 --challenge gli``.

The official code (``metrics.py`` of rachitsaluja/BraTS-2023-Metrics, kept outside the repository; see
``tests/data/evaluation_oracle/make_brats2023.py``) runs in its own virtual environment under
``~/.cache/btk-bench/brats2023-metrics`` (made on first use, with ``numpy<2`` and ``pandas<2``). Both tools
evaluate the twelve pairs of ``tests.support.evaluation_cases`` (real candidates; several lesions, empty
regions and maps) with the glioma settings, each in a fresh process after its imports; the table gives the
median seconds per case, the total and the peak RSS of the process, and the ratio. The numbers of both are
compared too (they must be equal: HD95 to 1e-4 mm, the rest to 1e-6).
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

from tests.support.evaluation_cases import FUSION, pairs

REPO = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "btk-bench"
#: Each official tool's virtual environment (a folder under CACHE) and what it is made with.
PACKAGES = {
    "brats2023-metrics": ["numpy<2", "pandas<2", "connected-components-3d", "surface-distance", "nibabel", "scipy"],
    "brats-evaluation": ["brats-evaluation==0.0.10"],
}
FIELDS = {
    "LesionWise_Score_Dice": "lesionwise_dice",
    "LesionWise_Score_HD95": "lesionwise_hd95_mm",
    "Legacy_Dice": "legacy_dice",
    "Legacy_HD95": "legacy_hd95_mm",
    "Num_TP": "num_tp",
    "Num_FP": "num_fp",
    "Num_FN": "num_fn",
}

OFFICIAL_DRIVER = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
import metrics
cases, fields = json.loads(sys.argv[2]), json.loads(sys.argv[3])
seconds, results = [], {}
for name, (prediction, reference) in cases.items():
    started = time.perf_counter()
    table = metrics.get_LesionWiseResults(prediction, reference, "BraTS-GLI")
    seconds.append(time.perf_counter() - started)
    results[name] = {
        r["Labels"]: {ours: float(r[theirs]) for theirs, ours in fields.items()} for r in table.to_dict("records")
    }
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss, "results": results}))
"""

OFFICIAL_2025_DRIVER = r"""
import json, resource, sys, time, warnings
from importlib.resources import files
warnings.simplefilter("ignore")
from panoptica import Panoptica_Evaluator
evaluator = Panoptica_Evaluator.load_from_config(str(files("brats_evaluation").joinpath("configs", "config_gli.yaml")))
cases = json.loads(sys.argv[1])
seconds = []
for name, (prediction, reference) in cases.items():
    started = time.perf_counter()
    evaluator.evaluate(prediction, reference, verbose=False)
    seconds.append(time.perf_counter() - started)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss, "results": {}}))
"""

BTK_DRIVER = r"""
import json, resource, sys, time
from btk.evaluation import EvaluationSettings, evaluate_case
cases = json.loads(sys.argv[1])
settings = EvaluationSettings(sys.argv[2], "gli")
labels = "brats2023" if sys.argv[2] == "brats2023" else None
seconds, results = [], {}
for name, (prediction, reference) in cases.items():
    started = time.perf_counter()
    rows = evaluate_case(prediction, reference, name, labels, labels, settings)
    seconds.append(time.perf_counter() - started)
    results[name] = {
        r.region: {k: float(v) for k, v in r.as_csv_row().items() if k not in ("case", "region")} for r in rows
    }
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss, "results": results}))
"""


TOOLS = ("official 2023 code", "btk --scheme brats2023", "brats-evaluation 0.0.10", "btk --scheme brats2025")


def official_python(tool: str) -> Path:
    """The Python of an official tool's virtual environment, made on first use."""
    folder = CACHE / tool
    python = folder / "bin" / "python"
    if not python.exists():
        print(f"Installing {' '.join(PACKAGES[tool])} into {folder} (once) ...", flush=True)
        venv.create(folder, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PACKAGES[tool]], check=True)
    return python


def write_cases(folder: Path) -> dict[str, list[str]]:
    """The pairs as NIfTI files on the real candidates' grid: name -> [prediction, reference]."""
    affine = nib.load(str(FUSION / "TCGA-FG-6692" / "candidates" / "isen-20.nii.gz")).affine
    cases = {}
    for name, arrays in pairs().items():
        paths = []
        for role, array in zip(("pred", "ref"), arrays):
            path = folder / f"{name}-{role}.nii.gz"
            nib.save(nib.Nifti1Image(array.astype(np.uint8), affine), str(path))
            paths.append(str(path))
        cases[name] = paths
    return cases


def measure(argv: list[str]) -> dict:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def differences(ours: dict, theirs: dict) -> list[str]:
    found = []
    for case, regions in theirs.items():
        for region, values in regions.items():
            for field, value in values.items():
                tolerance = 1e-4 if "hd95" in field else 1e-6
                if abs(ours[case][region][field] - value) > tolerance:
                    found.append(f"{case}/{region}/{field}: btk {ours[case][region][field]}, official {value}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, default=REPO.parent / "shared" / "oracles" / "brats2023-metrics")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if not (args.metrics / "metrics.py").is_file():
        raise SystemExit(f"the official BraTS 2023 metrics.py is not in {args.metrics}; pass --metrics FOLDER")
    python_2023, python_2025 = official_python("brats2023-metrics"), official_python("brats-evaluation")
    with tempfile.TemporaryDirectory() as folder:
        cases = json.dumps(write_cases(Path(folder)))
        runs: dict[str, list[dict]] = {tool: [] for tool in TOOLS}
        for _ in range(args.repeats):
            runs["official 2023 code"].append(
                measure(
                    [str(python_2023), "-c", OFFICIAL_DRIVER, str(args.metrics.resolve()), cases, json.dumps(FIELDS)]
                )
            )
            runs["btk --scheme brats2023"].append(measure([sys.executable, "-c", BTK_DRIVER, cases, "brats2023"]))
            runs["brats-evaluation 0.0.10"].append(measure([str(python_2025), "-c", OFFICIAL_2025_DRIVER, cases]))
            runs["btk --scheme brats2025"].append(measure([sys.executable, "-c", BTK_DRIVER, cases, "brats2025"]))
    print(f"{'tool':<26} {'median s/case':>14} {'total s':>9} {'peak RSS MB':>12}")
    medians = {}
    for tool, measured in runs.items():
        seconds = [s for run in measured for s in run["seconds"]]
        medians[tool] = median(seconds)
        total = median(sum(run["seconds"]) for run in measured)
        rss = max(run["rss_mb"] for run in measured)
        print(f"{tool:<26} {medians[tool]:>14.3f} {total:>9.2f} {rss:>12.0f}")
    ratio = medians["official 2023 code"] / medians["btk --scheme brats2023"]
    print(f"btk is {ratio:.1f}x faster per case than the official 2023 code (target: 5x)")
    ratio = medians["brats-evaluation 0.0.10"] / medians["btk --scheme brats2025"]
    print(f"btk is {ratio:.1f}x faster per case than brats-evaluation (target: 2x); the numbers are compared in")
    print("  tests/test_evaluation_brats2025.py against the official tool's output")
    found = differences(runs["btk --scheme brats2023"][0]["results"], runs["official 2023 code"][0]["results"])
    print("numbers: identical" if not found else "numbers DIFFER:\n  " + "\n  ".join(found[:20]))


if __name__ == "__main__":
    main()
