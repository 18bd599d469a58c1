"""Registrations in the background (:class:`btk.preprocess.registration.BackgroundRegistrations`): their
errors reach the caller, and leaving the block by an exception kills their worker processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("ants")

from btk.errors import BtkError
from btk.preprocess.registration import BackgroundRegistrations, RegistrationJob, RegistrationSettings

EXAM = Path(__file__).resolve().parents[1] / "examples" / "exams" / "TCGA-FG-6692"


def _workers() -> list[int]:
    """Process IDs of running registration workers."""
    found = []
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"btk.preprocess.registration_worker" in status.read_bytes():
                found.append(int(status.parent.name))
        except OSError:
            continue
    return found


def test_a_failed_registration_is_raised_by_wait(tmp_path: Path):
    missing = tmp_path / "missing.nii.gz"
    job = RegistrationJob(missing, missing, tmp_path / "t.mat", RegistrationSettings())
    with BackgroundRegistrations([job]) as registrations, pytest.raises(BtkError):
        registrations.wait()
    assert not (tmp_path / "t.mat").exists()


def test_an_error_in_the_block_kills_the_running_registrations(tmp_path: Path):
    t1, t2 = next(EXAM.glob("T1_AX_*_t1.nii.gz")), next(EXAM.glob("*_t2.nii.gz"))
    jobs = [RegistrationJob(t1, t2, tmp_path / f"{n}.mat", RegistrationSettings()) for n in range(2)]
    before = set(_workers())
    with pytest.raises(RuntimeError), BackgroundRegistrations(jobs, workers=2):
        deadline = time.monotonic() + 30
        while len(set(_workers()) - before) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(set(_workers()) - before) == 2  # both workers really started
        raise RuntimeError("the brain extraction failed")
    assert not set(_workers()) - before
    assert not list(tmp_path.glob("*.mat"))
