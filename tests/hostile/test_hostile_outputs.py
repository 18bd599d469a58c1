"""Hostile and careless outputs: no command writes into, replaces or deletes its inputs; --force replaces only
what btk wrote; wrong grids and broken transforms; full disks; what killed runs leave behind.

The exam used by ``btk native`` is made of BraTS Toolkit's real results for the TCIA exam (its HD-BET masks
and ANTs transforms, test data of the preprocessing tests) laid out as a ``btk preprocess`` folder, so the
cases run in seconds instead of a preprocessing run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.io import save_label_map
from tests.support.hostile import ROOT, assert_no_leftovers, assert_user_error, files_under, run_btk
from tests.support.preprocess import RAW, REFERENCE

#: btk role -> BraTS Toolkit's file for it (in REFERENCE).
EXAM_FILES = {
    "brats/mask": "mask_hdbet_brats-space/OtherEXampleFromTCIA_hdbet_mask_brats.nii.gz",
    "native_mask/t1n": "masks_hdbet_native-space/OtherEXampleFromTCIA_hdbet_mask_native_t1.nii.gz",
    "native_mask/t1c": "masks_hdbet_native-space/OtherEXampleFromTCIA_hdbet_mask_native_t1c.nii.gz",
    "native_mask/t2w": "masks_hdbet_native-space/OtherEXampleFromTCIA_hdbet_mask_native_t2.nii.gz",
    "native_mask/t2f": "masks_hdbet_native-space/OtherEXampleFromTCIA_hdbet_mask_native_fla.nii.gz",
    "transform/t1_to_atlas": "registrations/OtherEXampleFromTCIA_native_t1_to_brats_0GenericAffine.mat",
    "transform/t1c_to_t1": "registrations/OtherEXampleFromTCIA_t1c_to_t1_0GenericAffine.mat",
    "transform/t2w_to_t1": "registrations/OtherEXampleFromTCIA_t2_to_t1_0GenericAffine.mat",
    "transform/t2f_to_t1": "registrations/OtherEXampleFromTCIA_fla_to_t1_0GenericAffine.mat",
}


def checksums(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its SHA-256: the inputs must come out of every case unchanged."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def exam(tmp_path: Path) -> Path:
    """A copy of the raw TCIA exam (NIfTI) in its own folder."""
    copy = tmp_path / "exam"
    shutil.copytree(RAW, copy)
    return copy


@pytest.fixture
def preprocessed(tmp_path: Path) -> Path:
    """A finished exam folder in ``btk preprocess`` layout, made of BraTS Toolkit's real masks and transforms."""
    folder = tmp_path / "case"
    layout = {}
    for role, source in EXAM_FILES.items():
        relative = f"{role.split('/')[0]}/{Path(source).name}"
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REFERENCE / source, folder / relative)
        layout[role] = relative
    (folder / "provenance.json").write_text(json.dumps({"btk_preprocess": 1, "case_id": "case", "outputs": layout}))
    return folder


@pytest.fixture
def segmentation(tmp_path: Path, preprocessed: Path) -> Path:
    """A label map on the exam's BraTS grid: its brain mask as label 2, a block of 1 and 3 inside."""
    mask = nib.load(str(preprocessed / "brats" / Path(EXAM_FILES["brats/mask"]).name))
    labels = (np.asanyarray(mask.dataobj) > 0).astype(np.uint8) * 2
    labels[110:130, 110:130, 60:80] = 1
    labels[115:125, 115:125, 65:75] = 3
    path = tmp_path / "segs" / "fused.nii.gz"
    path.parent.mkdir()
    nib.save(nib.Nifti1Image(labels, mask.affine), str(path))
    return path


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real, tiny file system (tmpfs, 2 MB; needs root): a disk that fills up."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> None:
    """Fill ``disk`` to the last byte."""
    descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 1 << 10, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(descriptor)


# --- no command writes into, replaces or deletes its inputs --------------------------------------------


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
@pytest.mark.slow
def test_preprocess_into_its_own_exam_folder_is_refused(exam, force):
    before, listing = checksums(exam), files_under(exam.parent)
    result = run_btk("preprocess", exam, "-o", exam, "--fast", *force)
    assert_user_error(result, exam)
    assert "--force" not in result.output  # the refusal never suggests the option that would delete the exam
    assert checksums(exam) == before
    assert_no_leftovers(exam.parent, listing)


@pytest.mark.parametrize("where", ["inside", "parent", "symlink"])
@pytest.mark.slow
def test_preprocess_output_inside_holding_or_linking_to_the_exam_is_refused(exam, where):
    output = {"inside": exam / "out", "parent": exam.parent, "symlink": exam.parent / "link"}[where]
    if where == "symlink":
        output.symlink_to(exam, target_is_directory=True)
    before, listing = checksums(exam), files_under(exam.parent)
    result = run_btk("preprocess", exam, "-o", output, "--fast", "--force")
    assert_user_error(result, output)
    assert "inputs" in result.output
    assert checksums(exam) == before
    assert_no_leftovers(exam.parent, listing)


@pytest.mark.slow
def test_preprocess_output_holding_a_modality_given_explicitly_is_refused(exam, tmp_path):
    output = tmp_path / "results"
    output.mkdir()
    t1 = output / "my-t1.nii.gz"
    shutil.copyfile(next(exam.glob("*_t1.nii.gz")), t1)
    listing = files_under(tmp_path)
    result = run_btk("preprocess", exam, "-o", output, "--t1", t1, "--fast", "--force")
    assert_user_error(result, output)
    assert t1.is_file()
    assert_no_leftovers(tmp_path, listing)


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
@pytest.mark.slow
def test_a_users_folder_is_never_replaced(exam, tmp_path, force):
    output = tmp_path / "thesis"
    output.mkdir()
    (output / "chapter1.txt").write_text("three years of work")
    listing = files_under(tmp_path)
    result = run_btk("preprocess", exam, "-o", output, "--fast", *force)
    assert_user_error(result, output)
    assert "not a folder btk wrote" in result.output and "--force" not in result.output
    assert (output / "chapter1.txt").read_text() == "three years of work"
    assert_no_leftovers(tmp_path, listing)


@pytest.mark.slow
def test_a_users_file_is_never_replaced_by_an_exam_folder(exam, tmp_path):
    output = tmp_path / "notes.txt"
    output.write_text("keep")
    listing = files_under(tmp_path)
    result = run_btk("preprocess", exam, "-o", output, "--fast", "--force")
    assert_user_error(result, output)
    assert output.read_text() == "keep"
    assert_no_leftovers(tmp_path, listing)


@pytest.mark.parametrize("where", ["same", "inside"])
def test_convert_into_its_own_dicom_folder_is_refused(tmp_path, where):
    dicom = tmp_path / "dicom"
    (dicom / "S001").mkdir(parents=True)
    (dicom / "S001" / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    output = dicom if where == "same" else dicom / "S001" / "nifti"
    before, listing = checksums(dicom), files_under(tmp_path)
    result = run_btk("convert", dicom, "-o", output, "--force")
    assert_user_error(result, output)
    assert checksums(dicom) == before
    assert_no_leftovers(tmp_path, listing)


def test_convert_never_replaces_a_users_folder(tmp_path):
    dicom, output = tmp_path / "dicom", tmp_path / "nifti"
    dicom.mkdir()
    output.mkdir()
    (output / "mine.nii.gz").write_bytes(b"user data")
    listing = files_under(tmp_path)
    result = run_btk("convert", dicom, "-o", output, "--force")
    assert_user_error(result, output)
    assert (output / "mine.nii.gz").read_bytes() == b"user data"
    assert_no_leftovers(tmp_path, listing)


@pytest.mark.parametrize("where", ["exam", "segmentation"])
def test_native_output_inside_the_exam_or_onto_the_segmentation_is_refused(preprocessed, segmentation, where):
    output = preprocessed / "native" / "seg.nii.gz" if where == "exam" else segmentation
    before = {**checksums(preprocessed), **checksums(segmentation.parent)}
    listing = files_under(preprocessed.parent)
    result = run_btk("native", segmentation, preprocessed, "-o", output, "--force")
    assert_user_error(result, output)
    assert {**checksums(preprocessed), **checksums(segmentation.parent)} == before
    assert_no_leftovers(preprocessed.parent, listing)


@pytest.mark.slow
def test_native_force_replaces_its_own_output_but_never_a_users_file(preprocessed, segmentation, tmp_path):
    ours = tmp_path / "native.nii.gz"
    assert run_btk("native", segmentation, preprocessed, "-o", ours).code == 0
    assert set(np.unique(np.asanyarray(nib.load(str(ours)).dataobj))) == {0, 1, 2, 3}  # on the grid: labels kept
    assert run_btk("native", segmentation, preprocessed, "-o", ours).code == 2  # exists: needs --force
    assert run_btk("native", segmentation, preprocessed, "-o", ours, "--force").code == 0
    theirs = tmp_path / "reference-seg.nii.gz"  # a label map btk did not write
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)), str(theirs))
    before, listing = theirs.read_bytes(), files_under(tmp_path)
    result = run_btk("native", segmentation, preprocessed, "-o", theirs, "--force")
    assert_user_error(result, theirs)
    assert "not a file btk wrote" in result.output and "--force" not in result.output
    assert theirs.read_bytes() == before
    assert_no_leftovers(tmp_path, listing)


# --- btk native: the whole grid, transforms, output names ------------------------------------------------


@pytest.mark.parametrize("damage", ["flipped affine", "shifted affine", "wrong shape"])
@pytest.mark.slow
def test_native_refuses_a_segmentation_off_the_exams_brats_grid(preprocessed, segmentation, tmp_path, damage):
    image = nib.load(str(segmentation))
    data = np.asanyarray(image.dataobj)
    affine = image.affine.copy()
    if damage == "flipped affine":  # right shape, x axis flipped: the result would be all zero or mirrored
        affine[:3, 0] *= -1
    elif damage == "shifted affine":
        affine[:3, 3] += [0.0, 0.0, 5.0]
    else:
        data = data[:, :, :150]
    bad = tmp_path / "segs" / "bad.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(bad))
    output = tmp_path / "native.nii.gz"
    listing = files_under(tmp_path)
    result = run_btk("native", bad, preprocessed, "-o", output)
    assert_user_error(result, bad)
    assert "atlas grid" in result.output and "brats-sri24" in result.output
    assert_no_leftovers(tmp_path, listing)


@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
@pytest.mark.slow
def test_native_with_a_damaged_transform_is_a_clear_error(preprocessed, segmentation, tmp_path, damage):
    transform = preprocessed / "transform" / Path(EXAM_FILES["transform/t1_to_atlas"]).name
    content = transform.read_bytes()
    transform.write_bytes(
        {"truncated": content[: len(content) // 2], "empty": b"", "text": b"#Insight Transform File V1.0\n"}[damage]
    )
    output = tmp_path / "native.nii.gz"
    listing = files_under(tmp_path)
    result = run_btk("native", segmentation, preprocessed, "-o", output)
    assert_user_error(result, transform)
    assert "ITK" not in result.output  # no C++ exception dump
    assert_no_leftovers(tmp_path, listing)


@pytest.mark.parametrize("name", ["native", "native.nii.gzz", "native.mgz", "native.gz"])
def test_native_output_name_needs_a_nifti_suffix(preprocessed, segmentation, tmp_path, name):
    listing = files_under(tmp_path)
    result = run_btk("native", segmentation, preprocessed, "-o", tmp_path / name)
    assert_user_error(result, tmp_path / name)
    assert ".nii.gz" in result.output
    assert_no_leftovers(tmp_path, listing)


# --- full disks ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_preprocess_onto_a_disk_without_room_stops_before_any_work(exam, small_disk):
    output = small_disk / "case"
    result = run_btk("preprocess", exam, "-o", output, "--fast", "--device", "cpu")
    assert_user_error(result, small_disk)
    assert "free space" in result.output
    assert_no_leftovers(small_disk)


@pytest.mark.slow
def test_native_onto_a_full_disk_is_one_clear_error_and_leaves_nothing(preprocessed, segmentation, small_disk):
    fill(small_disk)
    listing = files_under(small_disk)
    output = small_disk / "native.nii.gz"
    result = run_btk("native", segmentation, preprocessed, "-o", output)
    assert_user_error(result, small_disk)
    assert "no space left" in result.output
    assert_no_leftovers(small_disk, listing)


# --- what killed runs leave behind ----------------------------------------------------------------------


@pytest.mark.slow
def test_next_run_removes_abandoned_staging_and_working_copies_but_not_a_live_runs(tmp_path, exam):
    """What ``kill -9`` leaves (folders nobody holds) goes; what a concurrent run holds (locked) stays."""
    out, temporary = tmp_path / "out", tmp_path / "tmp"
    abandoned = [out / ".case.partial-dead01", temporary / "btk-preprocess-dead02", temporary / "btk-ants-dead03"]
    live = out / ".case.partial-live04"
    for folder in (*abandoned, live):
        folder.mkdir(parents=True)
        (folder / "t1n.nii.gz").write_bytes(b"patient image")
    unrelated = out / ".case.notes"
    unrelated.write_text("not btk's")
    held = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        for path in exam.iterdir():
            if "_t1." not in path.name:
                path.unlink()  # the run fails quickly, after the clean-up: a missing modality
        result = run_btk("preprocess", exam, "-o", out / "case", "--fast", env={"TMPDIR": str(temporary)})
        assert_user_error(result, exam)
        assert not any(folder.exists() for folder in abandoned)
        assert (live / "t1n.nii.gz").is_file() and unrelated.is_file()
        assert files_under(out) == {Path(live.name), Path(live.name) / "t1n.nii.gz", Path(unrelated.name)}
    finally:
        os.close(held)


def test_abandoned_temporary_output_file_is_removed_by_the_next_write(tmp_path):
    """``.<name>.<random>.partial...`` files that a killed writer left beside an output go with the next write."""
    output = tmp_path / "seg.nii.gz"
    left = tmp_path / ".seg.nii.gz.k1ll3d.partial.nii.gz"
    left.write_bytes(b"half a label map")
    lookalike = tmp_path / ".seg.nii.gz.backup"  # a user's file with a similar name stays
    lookalike.write_bytes(b"mine")
    save_label_map(np.zeros((4, 4, 4), np.uint8), nib.Nifti1Image(np.zeros((4, 4, 4)), np.eye(4)), output)
    assert files_under(tmp_path) == {Path("seg.nii.gz"), Path(lookalike.name)}


def registration_workers(parent: int) -> list[int]:
    """Live registration worker processes started by ``parent``."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if b"btk.preprocess.registration_worker" in command and f"\nPPid:\t{parent}\n" in status:
            workers.append(int(entry.name))
    return workers


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_registration_worker_dies_with_its_killed_parent(tmp_path):
    """A real worker registering the TCIA T1 to the atlas, its parent killed with -9: it ends, writes nothing."""
    transform = tmp_path / "t1_to_atlas.mat"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import subprocess, sys, time\n"
                "from pathlib import Path\n"
                "from btk.spaces import get_space\n"
                "from btk.preprocess.registration import RegistrationJob, RegistrationSettings\n"
                "atlas = get_space('brats-sri24').template_path()\n"
                f"job = RegistrationJob(atlas, Path({str(next(RAW.glob('*_t1.nii.gz')))!r}),"
                f" Path({str(transform)!r}), RegistrationSettings())\n"
                "print(subprocess.Popen(job.command()).pid, flush=True)\n"
                "time.sleep(600)\n"
            ),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        worker = int(parent.stdout.readline())
        time.sleep(2)
        assert alive(worker)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    survived = alive(worker)
    if survived:
        os.kill(worker, signal.SIGKILL)
    assert not survived, "the registration worker outlived its parent"
    assert not transform.exists()


@pytest.mark.slow
def test_kill_9_during_registration_takes_the_workers_down_and_the_next_run_cleans_up(tmp_path, exam):
    out, temporary = tmp_path / "out", tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary)}
    process = subprocess.Popen(
        [sys.executable, "-m", "btk", "preprocess", str(exam), "-o", str(out / "case"), "--fast", "--device", "cpu"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, workers = time.monotonic() + 1800, []  # HD-BET first: about a minute on an idle machine
        while not workers and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = registration_workers(process.pid)
        assert workers, "the run never reached the registrations"
        process.send_signal(signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [pid for pid in workers if alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        assert not survivors, "registration workers outlived the killed run"
    finally:
        process.kill()
    left = [p.name for p in out.iterdir()]
    assert left and all(name.startswith(".case.partial-") for name in left)  # what the kill left behind
    assert any(p.name.startswith("btk-preprocess-") for p in temporary.iterdir())
    empty = tmp_path / "empty-exam"
    empty.mkdir()
    result = run_btk("preprocess", empty, "-o", out / "case", "--fast", env={"TMPDIR": str(temporary)})
    assert_user_error(result, empty)
    assert_no_leftovers(out)
    assert not any(p.name.startswith(("btk-preprocess-", "btk-ants-")) for p in temporary.iterdir())
