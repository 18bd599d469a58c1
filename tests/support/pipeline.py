"""Helpers for the pipeline and report tests: batches of real exams, the CLI, Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
ROOT = Path(__file__).resolve().parents[2]
#: A real BraTS 2023 case already in BraTS space (intensities stored as uint8 to keep the repository small).
BRATS_EXAM = DATA / "pipeline" / "BraTS-GLI-00001-000"
#: Real candidate segmentations (BraTS space) of two TCIA exams by five BraTS 2020 algorithms.
CANDIDATES = {case: DATA / "fusion" / case / "candidates" for case in ("TCGA-FG-6692", "TCGA-DU-7294")}
#: The real TCIA exam shipped as the example (native space NIfTI).
RAW_EXAM = ROOT / "examples" / "exams" / "TCGA-FG-6692"
EXAMPLE_CANDIDATES = ROOT / "examples" / "candidates" / "TCGA-FG-6692"


def brats_batch(root: Path, names: list[str], candidate_counts: list[int] | None = None) -> tuple[Path, Path]:
    """Exam folders already in BraTS space (``root/studies/<name>``) and their candidates (``root/candidates``).

    Study ``i`` gets the candidates of one of the two real cases (alternating), ``candidate_counts[i]`` of
    them (default: all five).
    """
    studies, candidates = root / "studies", root / "candidates"
    for index, name in enumerate(names):
        exam = studies / name
        exam.mkdir(parents=True)
        for image in BRATS_EXAM.glob("*.nii.gz"):
            os.symlink(image, exam / f"{name}-{image.name.rsplit('-', 1)[-1]}")
        source = sorted(CANDIDATES[list(CANDIDATES)[index % 2]].glob("*.nii.gz"))
        count = candidate_counts[index] if candidate_counts else len(source)
        (candidates / name).mkdir(parents=True)
        for path in source[:count]:
            shutil.copyfile(path, candidates / name / path.name)
    return studies, candidates


def btk(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the btk command line in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "btk", *map(str, args)],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )


def markers(study: Path) -> dict[str, dict]:
    """The completion markers of a study's output folder."""
    return {p.stem: json.loads(p.read_text()) for p in (study / ".btk").glob("*.json") if p.stem != "status"}


def chromium() -> str:
    """The Chromium binary; installed with apt when missing (Debian package ``chromium``)."""
    found = shutil.which("chromium")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
        check=True,
        env=env,
        capture_output=True,
    )
    return shutil.which("chromium") or "/usr/bin/chromium"


def chromium_command(user_data: Path, *args: str) -> list[str]:
    """Headless Chromium as root, sandbox-free, with a fresh profile and no background traffic."""
    return [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_data}",
        *args,
    ]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def non_background_fraction(path: Path) -> float:
    """Share of pixels of a PNG that differ from its top-left pixel (a blank page gives 0)."""
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"))
    return float(np.mean(np.any(pixels != pixels[0, 0], axis=-1)))


IMAGE_PROBE = """<script>window.addEventListener("load", () => { document.body.setAttribute("data-images",
JSON.stringify(Array.from(document.images, i => [i.getAttribute("src"), i.complete, i.naturalWidth]))); });</script>"""


def render_in_chromium(page: Path, tmp_path: Path) -> tuple[list, float]:
    """Load a page in headless Chromium: the images it shows (src, complete, width) and a screenshot's ink."""
    probe = page.with_name(f"probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    try:
        dom = subprocess.run(
            chromium_command(tmp_path / "profile-dom", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()),
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=120,
            check=True,
        ).stdout
        screenshot = tmp_path / f"{page.stem}.png"
        subprocess.run(
            chromium_command(
                tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1280,1600", page.as_uri()
            ),
            capture_output=True,
            timeout=120,
            check=True,
        )
    finally:
        probe.unlink()
    images = json.loads(re.search(r'data-images="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    return images, non_background_fraction(screenshot)
