"""Time the clinical part of an exam report: the measures, clinical.json/.csv, the page and its PDF.

    python -m bench.clinical [--repeats 3]

On the real fused segmentations of the two TCIA exams in ``tests/data/fusion`` (BraTS Toolkit's majority
vote of five BraTS 2020 algorithms, BraTS space; the example exam TCGA-FG-6692 among them), each in a fresh
process so the shipped atlases are read as in a pipeline worker. Prints, per exam, the seconds of: reading
the atlases (once per process), the measures (:func:`btk.clinical.measure_exam`), writing clinical.json and
clinical.csv, rendering the page, and printing it to PDF with headless Chromium; and the total the clinical
part adds to an exam (the median over ``--repeats``). The issue's target: at most 5 s per exam on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
CASES = {
    case: REPO / "tests" / "data" / "fusion" / case / "brats_toolkit_reference" / "mav.nii.gz"
    for case in ("TCGA-FG-6692", "TCGA-DU-7294")
}

DRIVER = r"""
import json, sys, tempfile, time
from pathlib import Path
started = time.perf_counter()
from btk.clinical import measure_exam, write_clinical_files
from btk.clinical.location import ATLASES, hemispheres, load_atlas
from btk.io import load_label_map
from btk.report.clinical import write_clinical_page
imported = time.perf_counter()
image, data = load_label_map(sys.argv[1])
loaded = time.perf_counter()
hemispheres(); [load_atlas(info.key) for info in ATLASES]
atlases = time.perf_counter()
findings = measure_exam(data, image.affine, "brats2021")
measured = time.perf_counter()
with tempfile.TemporaryDirectory() as folder:
    write_clinical_files(findings, Path(folder))
    written = time.perf_counter()
    write_clinical_page(findings.to_dict(), "bench", Path(folder) / "clinical.html", pdf=False)
    rendered = time.perf_counter()
    write_clinical_page(findings.to_dict(), "bench", Path(folder) / "clinical.html", pdf=True)
    printed = time.perf_counter()
    pdf = (Path(folder) / "clinical.pdf").exists()
page = rendered - written
print(json.dumps({"import": imported - started, "atlases": atlases - loaded, "measures": measured - atlases,
                  "files": written - measured, "page": page, "pdf": printed - rendered - page,
                  "pdf_written": pdf, "regions": {r.region: round(r.volume_ml, 2) for r in findings.regions}}))
"""
STEPS = ("atlases", "measures", "files", "page", "pdf")


def run_once(segmentation: Path) -> dict:
    """One fresh process measuring one exam."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}
    finished = subprocess.run(
        [sys.executable, "-c", DRIVER, str(segmentation)], capture_output=True, text=True, env=environment, check=True
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    print(f"cores: {os.cpu_count()}, repeats: {repeats} (median seconds)")
    print(f"{'exam':<14}" + "".join(f"{step:>10}" for step in STEPS) + f"{'total':>10}  volumes (ml)")
    for case, segmentation in CASES.items():
        runs = [run_once(segmentation) for _ in range(repeats)]
        times = {step: median(run[step] for run in runs) for step in STEPS}
        total = median(sum(run[step] for step in STEPS) for run in runs)
        note = "" if runs[0]["pdf_written"] else "  (no Chromium: PDF skipped)"
        print(
            f"{case:<14}" + "".join(f"{times[step]:>10.2f}" for step in STEPS) + f"{total:>10.2f}  "
            f"{runs[0]['regions']}{note}"
        )


if __name__ == "__main__":
    main()
