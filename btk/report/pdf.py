"""The PDF of a report page, printed by headless Chromium, for the patient file.

Chromium runs with a throw-away profile and without network (every host name resolves to nothing), on the
self-contained page btk wrote, which holds no scripts (every text from an input is escaped). Without a
Chromium the PDF is skipped with a note, never an error: the HTML page is the report, the PDF a copy of it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from btk.console import logger
from btk.io import atomic_path

#: The browsers tried, in order (Debian's ``chromium`` first).
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: How long one print may take.
TIMEOUT_S = 120


def find_browser() -> str | None:
    """The path of the first Chromium found on ``PATH``, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(page: Path, pdf: Path) -> str | None:
    """Print the HTML file ``page`` to ``pdf`` (atomically).

    Returns:
        None when the PDF was written; otherwise why not, in one sentence (also logged as a warning).
    """
    browser = find_browser()
    if browser is None:
        return _skipped(pdf, "no Chromium was found on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="btk-chromium-") as scratch:
        printed = Path(scratch) / "page.pdf"
        command = [
            browser,
            "--headless",
            "--no-sandbox",  # btk may run as root in containers, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={Path(scratch) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={printed}",
            Path(page).resolve().as_uri(),
        ]
        try:
            finished = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return _skipped(pdf, f"Chromium did not finish ({error.__class__.__name__})")
        if finished.returncode != 0 or not printed.is_file() or printed.stat().st_size == 0:
            return _skipped(pdf, f"Chromium failed (exit status {finished.returncode})")
        with atomic_path(pdf) as temporary:
            shutil.move(printed, temporary)
    return None


def _skipped(pdf: Path, reason: str) -> str:
    note = f"{pdf.name} was not written: {reason}"
    logger.warning(note)
    return note
