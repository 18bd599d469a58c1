"""Hostile containers and careless runs against ``btk segment``, on a real Docker engine with the fake segmenter.

A result that is a link or a special file is never followed nor opened (the host file is never read); a
chatty container's log stays small, and so does btk's memory; a killed run's container and exam copies are
removed by the next run; a full disk fails the algorithm concerned with one clear message, the others go on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.segment.engine import LABEL, Engine
from btk.segment.leftovers import PID_LABEL, Owner
from tests.support.hostile import ROOT, Result, assert_user_error, files_under, run_btk
from tests.support.segment import AFFINE, SHAPE, entry, make_exam, write_registry

pytestmark = pytest.mark.slow

PASSWD = Path("/etc/passwd").read_bytes().splitlines()[0]  # e.g. b"root:x:0:0:root:/root:/bin/bash"
CASE = "BraTS-GLI-00042-000"


@pytest.fixture(scope="session")
def image(fakeseg_image) -> str:
    """The fake segmenter (built on a running engine, started if none runs); its hostile modes: --fault."""
    return fakeseg_image


@pytest.fixture(scope="module")
def exam(tmp_path_factory) -> Path:
    return make_exam(tmp_path_factory.mktemp("exam") / "exam")


def _segment(
    tmp_path: Path, exam: Path, *entries: dict, env: dict[str, str] | None = None, output: Path | None = None
) -> tuple[Result, Path]:
    """``btk segment`` of ``exam`` with these registry entries, a private TMPDIR; the result and the output."""
    registry = write_registry(tmp_path / "registry.json", *entries)
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    output = output or tmp_path / "seg"
    names = [a for e in entries for a in ("-a", e["name"])]
    result = run_btk(
        "segment", exam, "-o", output, "--registry", registry, *names, env={"TMPDIR": str(temporary), **(env or {})}
    )
    return result, output


def _hostile(image: str, fault: str, **fields) -> dict:
    command = ["brats2025", "--fault", fault, *fields.pop("extra", [])]
    return entry("hostile", image, {"kind": "brats2025", "case": CASE}, command=command, **fields)


def _assert_refused(result: Result, seg: Path, tmp_path: Path, words: str) -> None:
    """Exit 1, the run failed saying ``words``, no result, no host file content, no container, no temp copy."""
    assert result.code == 1, result.output
    assert "Traceback" not in result.output and "Internal error" not in result.output, result.output
    run = json.loads((seg / "segment.json").read_text())["runs"][0]
    assert run["status"] == "failed" and words in run["message"], run
    log = (seg / "logs" / "hostile.log").read_text()
    assert f"# btk: failed: {run['message']}" in log
    assert sorted(map(str, files_under(seg))) == ["logs", "logs/hostile.log", "segment.json"]
    for path in [p for p in seg.rglob("*") if p.is_file()]:
        assert PASSWD not in path.read_bytes(), path
    assert PASSWD.decode() not in result.output
    assert not Engine.connect().containers("hostile")
    assert not list((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("link-passwd", f"the result {CASE}.nii.gz is a symbolic link, not a regular file"),
        ("link-sibling", f"the result {CASE}.nii.gz is a symbolic link, not a regular file"),
        ("fifo", f"the result {CASE}.nii.gz is a FIFO (named pipe), not a regular file"),
        ("socket", f"the result {CASE}.nii.gz is a socket, not a regular file"),
        ("hardlink", f"the result {CASE}.nii.gz is a hard link (a file with several names), not a regular file"),
    ],
)
def test_a_result_that_is_a_link_or_special_file_is_never_opened(tmp_path, image, exam, fault, words):
    result, seg = _segment(tmp_path, exam, _hostile(image, fault))
    _assert_refused(result, seg, tmp_path, words)


def test_a_link_to_another_patients_segmentation_is_not_delivered(tmp_path, image, exam):
    """The link points to a valid segmentation on the host, on this exam's grid: it would pass every check."""
    other = tmp_path / "other-patient" / "seg.nii.gz"
    other.parent.mkdir()
    labels = np.zeros(SHAPE, np.uint8)
    labels[10:20, 10:20, 10:20] = 2
    nib.save(nib.Nifti1Image(labels, AFFINE), str(other))
    result, seg = _segment(tmp_path, exam, _hostile(image, "link-host", extra=["--target", str(other)]))
    _assert_refused(result, seg, tmp_path, f"the result {CASE}.nii.gz is a symbolic link, not a regular file")
    assert other.read_bytes() and other.stat().st_nlink == 1  # untouched


def test_a_result_folder_that_is_a_link_is_not_entered(tmp_path, image, exam):
    outside = tmp_path / "host-folder"
    outside.mkdir()
    (outside / "patient-zeta.nii.gz").write_bytes(b"not yours")
    result, seg = _segment(tmp_path, exam, _hostile(image, "folder-link", extra=["--target", str(outside)]))
    _assert_refused(result, seg, tmp_path, "wrote no segmentation (it wrote: results (a symbolic link))")
    assert "patient-zeta" not in result.output and "patient-zeta" not in (seg / "logs" / "hostile.log").read_text()


def _peak_memory_mib(*args: str | Path) -> float:
    """Run ``btk ARGS`` in a process of its own and return its peak resident memory."""
    measure = (  # ru_maxrss of the waited-for children of this small process: only that btk (KiB on Linux)
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=False, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    process = subprocess.run(
        [sys.executable, "-c", measure, sys.executable, "-m", "btk", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=True,
    )
    return int(process.stdout.strip()) / 1024


def test_a_chatty_container_gets_a_bounded_log_and_little_memory(tmp_path, image, exam):
    """100 MB of output: the log keeps its first and last MiB, says what it dropped; btk's memory stays small."""
    registry = write_registry(
        tmp_path / "registry.json", _hostile(image, "chatty"), entry("quiet", image, {"kind": "brats2025"})
    )
    seg = tmp_path / "seg"
    chatty = _peak_memory_mib("segment", exam, "-o", seg, "--registry", registry, "-a", "hostile")
    quiet = _peak_memory_mib("segment", exam, "-o", tmp_path / "quiet", "--registry", registry, "-a", "quiet")
    run = json.loads((seg / "segment.json").read_text())["runs"][0]
    assert run["status"] == "ok", run
    log = seg / "logs" / "hostile.log"
    assert log.stat().st_size < 2.2 * 2**20
    text = log.read_text()
    assert "fakeseg: chatty first line" in text and "fakeseg: chatty last line" in text
    assert "bytes of the container's output dropped here" in text
    assert text.rstrip().endswith(f"# btk: ok: {run['message']}")
    assert chatty - quiet < 50, f"btk used {chatty:.0f} MiB with a 100 MB log, {quiet:.0f} MiB without"


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_killed_runs_container_and_exam_copy_are_removed_by_the_next_run(tmp_path, image, exam):
    """kill -9 while a container runs: it and the staged copy stay; the next run removes both, a live run's not."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary), "COLUMNS": "200"}
    registry = write_registry(
        tmp_path / "r.json", entry("orphan", image, {"kind": "brats2025"}, command=["brats2025", "--fault", "hang"])
    )
    killed = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "btk",
            "segment",
            str(exam),
            "-o",
            str(tmp_path / "killed"),
            "--registry",
            str(registry),
            "-a",
            "orphan",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = Engine.connect()

    def left_behind() -> list:
        return [c for c in engine.containers("orphan") if c.labels.get(PID_LABEL) == str(killed.pid)]

    _wait_for(lambda: any(c.status == "running" for c in left_behind()), "the container to start")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert left_behind() and list(temporary.iterdir())  # left behind: nobody could clean up
    # a container of a run that is alive (this test's process) must survive the next run
    live = engine.client.containers.create(
        image,
        command=["brats2025", "--fault", "hang"],
        labels={LABEL: "live", **Owner.current().labels()},
        network_mode="none",
    )
    try:
        result, seg = _segment(tmp_path, exam, entry("next", image, {"kind": "brats2025"}))
        assert result.code == 0 and (seg / "next.nii.gz").is_file(), result.output
        flat = " ".join(result.output.split())
        assert "left behind by a btk run that ended" in flat and f"(pid {killed.pid})" in flat
        assert not left_behind()
        assert not list(temporary.iterdir())
        assert [c.id for c in engine.containers("live")] == [live.id]
    finally:
        engine.remove(live)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted at tmp_path/disk (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until only ``leave`` bytes are free."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_a_full_output_disk_fails_that_algorithm_only(tmp_path, image, small_disk):
    """Room for small files, not for one big result: that algorithm fails clearly, the next one is written."""
    exam = make_exam(tmp_path / "big-exam", scale=2)
    _fill(small_disk, 64 * 1024)
    result, seg = _segment(
        tmp_path,
        exam,
        entry("noisy", image, {"kind": "brats2025"}, command=["brats2025", "--fault", "noise"]),
        entry("good", image, {"kind": "brats2025"}),
        output=small_disk / "seg",
    )
    assert result.code == 1, result.output
    assert "Traceback" not in result.output and "Internal error" not in result.output
    runs = {r["algorithm"]: r for r in json.loads((seg / "segment.json").read_text())["runs"]}
    assert runs["good"]["status"] == "ok", runs
    assert runs["noisy"]["status"] == "failed"
    assert runs["noisy"]["message"].startswith(f"{seg / 'noisy.nii.gz'}: cannot write the segmentation")
    assert "no space left on" in runs["noisy"]["message"].lower()
    assert sorted(map(str, files_under(seg))) == [
        "good.nii.gz",
        "logs",
        "logs/good.log",
        "logs/noisy.log",
        "segment.json",
    ]  # nothing half-written


def test_a_full_temporary_disk_fails_each_algorithm_clearly(tmp_path, image, exam, small_disk):
    _fill(small_disk, 8192)  # room for Python's own probe of TMPDIR (else it silently takes /tmp), not for copies
    result, seg = _segment(
        tmp_path,
        exam,
        entry("one", image, {"kind": "brats2025"}),
        entry("two", image, {"kind": "mlcube"}),
        env={"TMPDIR": str(small_disk)},
    )
    assert result.code == 1, result.output
    assert "Traceback" not in result.output and "Internal error" not in result.output
    runs = json.loads((seg / "segment.json").read_text())["runs"]
    for run in runs:  # the second still ran
        assert run["status"] == "failed"
        assert run["message"].startswith(
            f"{small_disk}: cannot copy the exam into a temporary folder "
            "(No space left on device); free space in the temporary folder"
        ), run
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no half-made copies
    assert not (seg / "one.nii.gz").exists() and not (seg / "two.nii.gz").exists()


def test_a_completely_full_output_disk_is_one_error(tmp_path, image, exam, small_disk):
    _fill(small_disk, 0)
    result, seg = _segment(tmp_path, exam, entry("one", image, {"kind": "brats2025"}), output=small_disk / "seg")
    assert_user_error(result, seg / "segment.json")
    flat = " ".join(result.output.split())
    assert "segment.json: cannot write the summary of this run" in flat and "no space left on" in flat.lower()
    assert "one: could not write its log" in flat
    assert sorted(map(str, files_under(seg))) == ["logs"]  # no result, no half-written file
