"""Hostile and careless input to ``btk fuse``: mixed label conventions, candidates given twice, outputs that
exist, a full disk, and a process killed while it publishes."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.fusion import Fusionator
from btk.fusion.outputs import is_complete, sidecar_paths
from btk.labels import convert
from tests.support.hostile import ROOT, assert_no_leftovers, assert_user_error, files_under, run_btk

REAL = ROOT / "tests" / "data" / "fusion" / "TCGA-FG-6692" / "candidates"


def _save(array: np.ndarray, path: Path, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array, np.uint8), np.eye(4) if affine is None else affine), str(path))
    return path


def _tumour(shift: int, et: int = 4) -> np.ndarray:
    """A small 2021-style tumour (ED around NCR around ET), moved by ``shift`` voxels: distinct candidates."""
    seg = np.zeros((14, 14, 14), np.uint8)
    seg[3 + shift : 11, 3:11, 3:11] = 2
    seg[5:9, 5:9, 5 + shift : 9] = 1
    seg[6:8, 6:8, 6:8] = et
    return seg


@pytest.fixture
def small(tmp_path: Path) -> list[Path]:
    """Three distinct small candidates (0/1/2/4) in ``tmp_path/in``."""
    return [_save(_tumour(shift), tmp_path / "in" / f"c{shift}.nii.gz") for shift in range(3)]


def _real_in(folder: Path, to_2023: tuple[str, ...] = ()) -> list[Path]:
    """Copies of the real candidates (BraTS 2021 labels), those named in ``to_2023`` converted to 0/1/2/3."""
    folder.mkdir(parents=True)
    paths = []
    for source in sorted(REAL.glob("*.nii.gz")):
        target = folder / source.name
        if source.name.removesuffix(".nii.gz") in to_2023:
            image = nib.load(str(source))
            data = convert(np.asanyarray(image.dataobj).astype(np.uint8), "brats2021", "brats2023")
            nib.save(nib.Nifti1Image(data, image.affine, image.header), str(target))
        else:
            shutil.copyfile(source, target)
        paths.append(target)
    return paths


# --- label conventions: detected per candidate -----------------------------------------------------------


@pytest.mark.slow
def test_mixed_2021_and_2023_candidates_are_converted_and_said_so(tmp_path: Path):
    """The issue's case: two of five real candidates in 2023 labels. Each is detected on its own and converted;
    the enhancing tumour stays enhancing tumour (no 'resection cavity'), and the log and sidecar say so."""
    candidates = _real_in(tmp_path / "in", to_2023=("isen-20", "scan-20"))
    out = tmp_path / "out" / "fused.nii.gz"
    result = run_btk("fuse", tmp_path / "in", "-o", out)
    assert result.code == 0, result.output
    assert "converted to brats2021" in result.output and "isen-20" in result.output and "scan-20" in result.output
    sidecar = json.loads(sidecar_paths(out)[0].read_text())
    assert sidecar["label_convention"] == "brats2021"
    assert sidecar["label_conversions"] == {"isen-20": "brats2023 -> brats2021", "scan-20": "brats2023 -> brats2021"}
    assert [c["label_convention"] for c in sidecar["candidates"]] == [
        "brats2021",
        "brats2023",
        "brats2021",
        "brats2023",
        "brats2021",
    ]
    fused = np.asanyarray(nib.load(str(out)).dataobj)
    expected = Fusionator().fuse(sorted(REAL.glob("*.nii.gz")), "mav", agreement=False).segmentation
    np.testing.assert_array_equal(fused, expected)  # the same as fusing the originals: nothing mistaken for RC
    assert sorted(np.unique(fused)) == [0, 1, 2, 4]
    assert is_complete(out)
    assert all(c.read_bytes() for c in candidates)


@pytest.mark.slow
def test_2021_next_to_post_treatment_is_refused_naming_each_candidate(tmp_path: Path, small: list[Path]):
    post = _tumour(0, et=3)
    post[1:3, 1:3, 1:3] = 4  # a resection cavity: BraTS 2024 post-treatment
    _save(post, tmp_path / "in" / "post.nii.gz")
    out = tmp_path / "out"
    result = run_btk("fuse", tmp_path / "in", "-o", out / "f.nii.gz")
    assert_user_error(result, "c0: brats2021", "post: brats2024-post", "resection cavity")
    assert_no_leftovers(out)


# --- the same candidate twice ----------------------------------------------------------------------------


def _twice(kind: str, tmp_path: Path, small: list[Path]) -> tuple[list[Path], list[Path]]:
    """Arguments that give ``small[0]`` twice, and the paths the message must name."""
    if kind == "same path":
        return [*small, small[0]], [small[0]]
    if kind == "file and its folder":
        return [small[0], small[0].parent], [small[0]]
    if kind == "link":
        link = tmp_path / "link.nii.gz"
        link.symlink_to(small[0])
        return [*small, link], [small[0], link]
    copy = tmp_path / "copy.nii.gz"
    shutil.copyfile(small[0], copy)
    return [*small, copy], [small[0], copy]


@pytest.mark.parametrize("kind", ["same path", "file and its folder", "link", "identical copy"])
@pytest.mark.slow
def test_a_candidate_given_twice_is_reported(tmp_path: Path, small: list[Path], kind: str):
    arguments, named = _twice(kind, tmp_path, small)
    out = tmp_path / "out"
    result = run_btk("fuse", *arguments, "-o", out / "f.nii.gz")
    assert_user_error(result, *named, "counted twice")
    assert_no_leftovers(out)


# --- outputs: sidecars count, inputs are never written ---------------------------------------------------


@pytest.fixture
def fused(tmp_path: Path, small: list[Path]) -> Path:
    """A completed fusion of ``small`` in ``tmp_path/out``."""
    out = tmp_path / "out" / "a.nii.gz"
    assert run_btk("fuse", *small, "-o", out).code == 0
    return out


@pytest.mark.parametrize("sidecar", ["b.json", "b_agreement.json"])
@pytest.mark.slow
def test_an_existing_sidecar_is_not_replaced_without_force(
    tmp_path: Path, small: list[Path], fused: Path, sidecar: str
):
    source = fused.with_name("a.json" if sidecar == "b.json" else "a_agreement.json")
    shutil.copyfile(source, fused.with_name(sidecar))  # a sidecar btk wrote, for an image that is gone
    before = {path: path.read_bytes() for path in fused.parent.iterdir()}
    result = run_btk("fuse", *small, "-o", fused.with_name("b.nii.gz"))
    assert_user_error(result, fused.with_name(sidecar), "--force")
    assert {path: path.read_bytes() for path in fused.parent.iterdir()} == before
    assert run_btk("fuse", *small, "-o", fused.with_name("b.nii.gz"), "--force").code == 0
    assert is_complete(fused.with_name("b.nii.gz"))


@pytest.mark.parametrize("where", ["a candidate", "inside the candidates' folder", "not a NIfTI name"])
@pytest.mark.slow
def test_outputs_that_would_touch_the_inputs_or_make_no_sense(tmp_path: Path, small: list[Path], where: str):
    output = {
        "a candidate": small[1],
        "inside the candidates' folder": small[0].parent / "fused.nii.gz",
        "not a NIfTI name": tmp_path / "out" / "fused.json",
    }[where]
    before = {path: path.read_bytes() for path in small}
    listing = files_under(tmp_path)
    result = run_btk("fuse", small[0].parent, "-o", output, "--force")
    assert_user_error(result, output)
    assert {path: path.read_bytes() for path in small} == before
    assert_no_leftovers(tmp_path, listing)


@pytest.mark.slow
def test_an_image_without_its_sidecar_counts_as_incomplete(tmp_path: Path, small: list[Path], fused: Path):
    """What a run killed between publishing the image and its sidecars leaves: named as interrupted, and
    --force completes it."""
    sidecar, agreement = sidecar_paths(fused)
    sidecar.unlink()
    agreement.unlink()
    assert not is_complete(fused)
    result = run_btk("fuse", *small, "-o", fused)
    assert_user_error(result, fused, "interrupted", "--force")
    assert run_btk("fuse", *small, "-o", fused, "--force").code == 0
    assert is_complete(fused) and agreement.exists()


@pytest.mark.slow
def test_a_sidecar_that_describes_another_image_is_not_complete(tmp_path: Path, small: list[Path], fused: Path):
    other = tmp_path / "out" / "b.nii.gz"
    assert run_btk("fuse", *small[1:], "-o", other).code == 0
    assert other.read_bytes() != fused.read_bytes()  # btk writes deterministically: equal maps, equal bytes
    shutil.copyfile(other, fused)  # a's sidecar now sits beside b's image
    assert is_complete(other) and not is_complete(fused)


# --- a full disk -----------------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real 1 MiB tmpfs (needs root), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes with one file; returns it."""
    filler = disk / "filler"
    stats = os.statvfs(disk)
    filler.write_bytes(b"\0" * max(stats.f_bavail * stats.f_frsize - leave, 0))
    return filler


@pytest.mark.parametrize("free_kib", [0, 16, 28, 40])
@pytest.mark.slow
def test_a_full_disk_gives_one_message_and_leaves_nothing(tmp_path: Path, tiny_disk: Path, free_kib: int):
    """With too little room for all three files: one message naming the folder, nothing published; and a
    size at which the image fits but not its sidecars is among the cases (the bug: sidecars without image)."""
    real = _real_in(tmp_path / "real")
    out = tiny_disk / "case"
    out.mkdir()
    _fill(tiny_disk, free_kib * 1024)
    before = files_under(tiny_disk)
    result = run_btk("fuse", *real, "-o", out / "fused.nii.gz")
    if result.code == 0:  # it all fitted: then it is complete
        assert is_complete(out / "fused.nii.gz") and sidecar_paths(out / "fused.nii.gz")[1].exists()
        return
    assert_user_error(result, out)
    assert "no space left" in result.output.lower()
    assert_no_leftovers(tiny_disk, before)


# --- killed while publishing -----------------------------------------------------------------------------


def _state(out: Path) -> str:
    image = out / "fused.nii.gz"
    sidecar, agreement = sidecar_paths(image)
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []
    assert set(visible) <= {image.name, sidecar.name, agreement.name}, visible
    if sidecar.exists():
        assert is_complete(image), "a sidecar without the image it describes"
    if agreement.exists():
        assert image.exists(), "an agreement report without its image"
    return "complete" if sidecar.exists() else ("image only" if image.exists() else "nothing")


def _moment(out: Path, before: set[str], image_inode: int | None, kind: str) -> bool:
    """Whether the run writing ``out`` reached the moment ``kind`` (``before``: the folder's names at start)."""
    try:
        names = {p.name for p in out.iterdir()}
    except FileNotFoundError:
        return False
    new = names - before
    if kind == "image being written":
        return any(name.startswith(".fused.nii.gz.") for name in new)
    if kind == "sidecars being written":
        return any(name.startswith((".fused.json.", ".fused_agreement.json.")) for name in new)
    try:  # "image published": the image is another file than before
        return (out / "fused.nii.gz").stat().st_ino != image_inode
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_kill_9_never_leaves_sidecars_without_their_image(tmp_path: Path):
    """Real ``btk fuse --force`` processes on real candidates, over a complete earlier fusion, killed with
    SIGKILL while the image is written, while the sidecars are written, the moment the new image is
    published, and at random moments: every state left is consistent, and a rerun completes cleanly."""
    candidates = _real_in(tmp_path / "in")
    out = tmp_path / "out"
    arguments = ["fuse", *map(str, candidates), "-o", str(out / "fused.nii.gz"), "--force"]
    started = time.monotonic()
    assert run_btk(*arguments).code == 0
    runtime = time.monotonic() - started
    rng = random.Random(20)
    moments = ["image being written", "sidecars being written", "image published"] * 2 + ["random"] * 3
    for kind in moments:
        before = {p.name for p in out.iterdir()} if out.exists() else set()
        image = out / "fused.nii.gz"
        inode = image.stat().st_ino if image.exists() else None
        process = subprocess.Popen(
            [sys.executable, "-m", "btk", *arguments], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + (rng.uniform(0.3, 1.2) * runtime if kind == "random" else 120)
        while time.monotonic() < deadline and process.poll() is None:
            if kind != "random" and _moment(out, before, inode, kind):
                break
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
        process.wait()
        _state(out)
    assert run_btk(*arguments).code == 0
    assert _state(out) == "complete"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporaries of killed runs were not cleaned"


# --- the agreement report on awkward shapes ------------------------------------------------------------


def _oracle_hd95(mask: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...], penalty: float) -> float:
    """HD95 the way btk computed it before its own search: SciPy's 6-connected erosion and k-d tree."""
    from scipy import ndimage
    from scipy.spatial import cKDTree

    if not mask.any() or not reference.any():
        return 0.0 if not mask.any() and not reference.any() else penalty
    cross = ndimage.generate_binary_structure(3, 1)
    surfaces = [m & ~ndimage.binary_erosion(m, structure=cross, border_value=0) for m in (mask, reference)]
    points = [np.argwhere(s) * np.asarray(spacing) for s in surfaces]
    forward = cKDTree(points[1]).query(points[0])[0]
    backward = cKDTree(points[0]).query(points[1])[0]
    return max(float(np.percentile(forward, 95)), float(np.percentile(backward, 95)))


@pytest.mark.slow
def test_the_agreement_report_of_awkward_candidates_equals_a_kd_tree(tmp_path: Path):
    # anisotropic voxels; a candidate touching the volume's border, one with a far-away blob (beyond the offset
    # search), one empty: btk fuse's report (all candidates measured at once) equals each pair measured by SciPy
    from btk.evaluation.metrics import empty_hd95_penalty_mm
    from btk.labels import BRATS_2021

    shape, spacing = (30, 28, 20), (0.9, 1.2, 2.0)
    affine = np.diag([*spacing, 1.0])
    base = np.zeros(shape, np.uint8)
    base[10:20, 9:19, 6:14] = 2
    base[12:18, 11:17, 8:12] = 1
    base[14:16, 13:15, 9:11] = 4
    border = np.roll(base, 1, axis=0)
    border[0:3, 10:14, 8:12] = 2
    far = base.copy()
    far[26:29, 1:4, 16:19] = 4
    candidates = [base, border, far, np.zeros(shape, np.uint8)]
    paths = [_save(c, tmp_path / "in" / f"c{i}.nii.gz", affine) for i, c in enumerate(candidates)]
    out = tmp_path / "out" / "fused.nii.gz"
    result = run_btk("fuse", *paths, "-o", out, "--method", "mav")
    assert result.code == 0, result.stderr
    fused = np.asanyarray(nib.load(str(out)).dataobj)
    report = json.loads((tmp_path / "out" / "fused_agreement.json").read_text())
    penalty = empty_hd95_penalty_mm(shape, spacing)
    for candidate, scores in zip(candidates, report["candidates"]):
        for region in BRATS_2021.region_names:
            mask, reference = (np.isin(a, BRATS_2021.region_labels(region)) for a in (candidate, fused))
            expected = _oracle_hd95(mask, reference, spacing, penalty)
            assert scores["hd95_mm"][region] == pytest.approx(expected, abs=1e-6), (scores["name"], region)
    assert report["candidates"][3]["hd95_mm"]["WT"] == pytest.approx(penalty)
    assert report["candidates"][2]["hd95_mm"]["ET"] > 8 * min(spacing)
