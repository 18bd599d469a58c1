"""Helpers for the hostile-input suite (``tests/hostile/``): run btk as a user would and check the answer.

Every hostile case asserts the same things: the exit code, exactly one error message that names the right
file, no traceback, no leftovers in the output location and no patient identifier anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    """What one btk command did: exit code and everything it printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_btk(
    *args: str | Path, timeout: float = 600, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run ``btk ARGS`` in a fresh process (so import-time and printing failures show too)."""
    process = subprocess.run(
        [sys.executable, "-m", "btk", *map(str, args)],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        cwd=cwd or ROOT,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    return Result(process.returncode, process.stdout, process.stderr)


def assert_user_error(result: Result, *names: str | Path, code: int = 2) -> None:
    """A user mistake: exit ``code``, one ``Error:`` message naming each of ``names``, no traceback."""
    text = result.output
    assert result.code == code, f"exit {result.code}, expected {code}:\n{text}"
    assert "Traceback" not in text, text
    assert "Internal error" not in text, text
    assert text.count("Error:") == 1, f"expected one error message:\n{text}"
    flat = " ".join(text.split())  # rich may wrap long paths
    for name in names:
        assert str(name) in flat or str(name) in text.replace("\n", ""), f"{name} not named in:\n{text}"


def files_under(folder: Path) -> set[Path]:
    """Every file and folder under ``folder`` (hidden ones included), relative to it."""
    if not folder.exists():
        return set()
    return {path.relative_to(folder) for path in folder.rglob("*")}


def assert_no_leftovers(folder: Path, before: Iterable[Path] = ()) -> None:
    """Nothing new under ``folder`` (or the folder does not exist) compared with ``before``."""
    new = files_under(folder) - set(before)
    assert not new, f"left behind in {folder}: {sorted(map(str, new))}"


def assert_no_identifiers(identifiers: Iterable[str], *places: Path | str) -> None:
    """None of ``identifiers`` (case-insensitive) in the given texts, or in any file name or file under them."""
    needles = [i.lower() for i in identifiers if i]
    for place in places:
        if isinstance(place, Path) and place.exists():
            paths = [place, *place.rglob("*")] if place.is_dir() else [place]
            for path in paths:
                for needle in needles:
                    assert needle not in path.name.lower(), f"identifier {needle!r} in the file name {path}"
                if path.is_file():
                    content = path.read_bytes().lower()
                    for needle in needles:
                        assert needle.encode() not in content, f"identifier {needle!r} in {path}"
        else:
            text = str(place).lower()
            for needle in needles:
                assert needle not in text, f"identifier {needle!r} in the output:\n{place}"
