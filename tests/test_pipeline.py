"""The pipeline on real data: discovery, failures recorded, resumability, kill -9, a real Dask cluster.

Batches are built from a real exam already in BraTS space and real candidate segmentations, so that no
study spends minutes in brain extraction; the full chain from DICOM is in test_pipeline_chain.py.
"""

from __future__ import annotations

import csv
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

from btk.errors import BtkError
from btk.fusion import Fusionator
from btk.labels import convert
from btk.pipeline import Pipeline, discover
from btk.pipeline.markers import read_marker
from tests.support.pipeline import BRATS_EXAM, CANDIDATES, RAW_EXAM, ROOT, brats_batch, btk, markers
from tests.support.preprocess import SERIES, raw_image, write_dicom_series
from tests.support.segment import entry, write_registry

STUDY_UID_A = "1.2.826.0.1.3680043.8.498.1001"
STUDY_UID_B = "1.2.826.0.1.3680043.8.498.2002"


@pytest.fixture(scope="module")
def dicom_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real DICOM studies of one patient in one tree (A: four series spread over two folders; B: no
    FLAIR), a text file and a corrupt DICOM file."""
    root = tmp_path_factory.mktemp("dicom")
    for index, (modality, (_, number, description, te, tr, ti, contrast)) in enumerate(SERIES.items()):
        folder = root / "disk1" if index % 2 else root / "disk2" / "deeper"
        write_dicom_series(
            raw_image(modality), folder / str(number), number, description, te, tr, ti, contrast, STUDY_UID_A
        )
        if modality != "t2f":
            write_dicom_series(
                raw_image(modality),
                root / "other" / str(number),
                number,
                description,
                te,
                tr,
                ti,
                contrast,
                STUDY_UID_B,
            )
    (root / "other" / "notes.txt").write_text("not an image")
    (root / "broken").mkdir()
    (root / "broken" / "bad.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage" * 3)
    return root


def test_discovery_groups_dicom_by_study_then_series(dicom_tree: Path):
    studies = {s.kind + ":" + ("ok" if not s.problem else s.problem.split(":")[0]): s for s in discover(dicom_tree)}
    assert set(studies) == {"dicom:ok", "dicom:missing modality", "dicom:bad DICOM"}
    complete = studies["dicom:ok"]
    assert list(complete.modalities) == ["t1n", "t1c", "t2w", "t2f"]
    assert len(complete.files) == 4 * 26  # every slice of the four series, from both folders
    assert {f.parent.parent.name for f in complete.files} == {"disk1", "deeper"}
    lacking = studies["dicom:missing modality"]
    assert "no flair series" in lacking.problem and "'MRHR T2 AX'" in lacking.problem
    assert "bad.dcm" in studies["dicom:bad DICOM"].problem


def test_discovery_of_exam_folders(tmp_path: Path):
    (tmp_path / "native").symlink_to(RAW_EXAM)
    (tmp_path / "brats").symlink_to(BRATS_EXAM)
    half = tmp_path / "nested" / "half"
    half.mkdir(parents=True)
    (half / "x_t1.nii.gz").symlink_to(raw_image("t1n"))
    kinds = {s.name: (s.kind, s.problem) for s in discover(tmp_path)}
    assert kinds["native"] == ("nifti", "")
    assert kinds["brats"] == ("brats", "")
    assert kinds["half"][1].startswith("missing modality: no t1c, t2, flair image")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BtkError, match="no exam or DICOM study found"):
        discover(tmp_path / "empty")


@pytest.mark.slow
def test_without_algorithms_or_candidates_a_clear_error(tmp_path: Path):
    result = btk("run", BRATS_EXAM, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "no algorithm chosen and no candidate segmentations given" in result.stderr
    assert "--candidates DIR" in result.stderr and "Traceback" not in result.stderr
    result = btk("run", tmp_path / "missing", "-o", tmp_path / "out", "--candidates", tmp_path)
    assert result.returncode == 2 and "input not found" in result.stderr


@pytest.mark.slow
def test_batch_records_failures_goes_on_and_resumes(tmp_path: Path, dicom_tree: Path):
    studies, candidates = brats_batch(tmp_path, ["good-1", "good-2", "off-grid"], [5, 3, 2])
    (studies / "dicom").symlink_to(dicom_tree / "other")  # the study without FLAIR
    (studies / "broken").symlink_to(dicom_tree / "broken")
    off_grid = sorted((candidates / "off-grid").iterdir())[0]  # a candidate cut to the wrong grid
    image = nib.load(off_grid)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[:200], image.affine), off_grid)
    out = tmp_path / "out"

    first = btk("run", studies, "-o", out, "--candidates", candidates, "--workers", "2", "--method", "mav")
    assert first.returncode == 1, first.stderr
    rows = {row["study"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert len(rows) == 5
    assert rows["good-1"]["status"] == rows["good-2"]["status"] == "ok"
    assert float(rows["good-1"]["WT_ml"]) > 10 and rows["good-1"]["candidates"] == "5"
    assert (
        rows["off-grid"]["failed_stage"] == "segment"
        and "not on the grid of the study's atlas space, brats-sri24" in rows["off-grid"]["reason"]
    )
    dicom = next(r for name, r in rows.items() if name.startswith("study-"))
    assert dicom["status"] == "failed" and "no flair series" in dicom["reason"]
    broken = next(r for name, r in rows.items() if name.startswith("unreadable"))
    assert "bad DICOM" in broken["reason"] and "bad.dcm" in broken["reason"]
    manifest = {row["study"]: row for row in csv.DictReader((out / "manifest.csv").open())}
    assert manifest["good-1"]["modalities"] == "t1;t1c;t2;flair" and manifest["good-2"]["status"] == "ok"
    assert manifest["off-grid"]["status"] == "failed"
    assert "2 done, 3 failed" in first.stderr
    assert (out / "good-1" / "report" / "report.html").is_file()
    finished = {name: m["finished"] for name, m in markers(out / "good-1").items()}

    again = btk("run", studies, "-o", out, "--candidates", candidates, "--method", "mav")
    assert again.returncode == 1
    assert "none (all done before)" in again.stderr
    assert {name: m["finished"] for name, m in markers(out / "good-1").items()} == finished

    time.sleep(1.1)  # marker times have one-second resolution
    forced = btk(
        "run", studies / "good-1", "-o", out, "--candidates", candidates / "good-1", "--force", "--method", "mav"
    )
    assert forced.returncode == 0, forced.stderr
    redone = {name: m["finished"] for name, m in markers(out / "good-1").items()}
    assert set(redone) == set(finished) and all(redone[n] != finished[n] for n in finished)


@pytest.mark.slow
def test_evaluation_and_a_changed_output_makes_its_stage_run_again(tmp_path: Path):
    studies, candidates = brats_batch(tmp_path, ["case"], [2])
    out = tmp_path / "out"
    reference = sorted(CANDIDATES["TCGA-FG-6692"].glob("*.nii.gz"))[-1]  # a third algorithm's result
    pipeline = Pipeline(out, candidates=candidates / "case", method="mav", workers=1, reference=reference)
    assert pipeline.run(studies / "case").ok
    rows = list(csv.DictReader((out / "case" / "evaluate" / "evaluation.csv").open()))
    assert [r["region"] for r in rows] == ["WT", "TC", "ET"] and all(0.7 < float(r["dice"]) < 1 for r in rows)
    assert "Evaluation against the reference" in (out / "case" / "report" / "report.html").read_text()
    fused = out / "case" / "fuse" / "case_fused.nii.gz"
    fused.write_bytes(fused.read_bytes()[:100])  # truncated behind btk's back
    assert read_marker(out / "case", "fuse") is None
    batch = pipeline.run(studies / "case")
    stages = batch.results[0].stages
    assert batch.ok and stages["fuse"] == "ran" and stages["segment"] == "done before"
    # every stage after the one that ran again reads its new output: none keeps its earlier result
    after = list(stages)[list(stages).index("fuse") + 1 :]
    assert after and all(stages[name] == "ran" for name in after), stages
    nib.load(fused).get_fdata()


def _fused(out: Path, name: str) -> np.ndarray:
    return np.asarray(nib.load(out / name / "fuse" / f"{name}_fused.nii.gz").dataobj)


def _expected_fusion(candidates: Path) -> np.ndarray:
    """Majority voting of the candidates, computed directly (0/1/2/4 labels, renumbered to BraTS 2023)."""
    result = Fusionator().fuse(sorted(candidates.glob("*.nii.gz")), method="mav", agreement=False)
    return convert(result.segmentation, "brats2021", "brats2023")


def _stages_since(out: Path, names: list[str], started: float) -> set[str]:
    """The stages studies entered after ``started`` (from their status files)."""
    found = set()
    for name in names:
        try:
            status = json.loads((out / name / ".btk" / "status.json").read_text())
        except (OSError, ValueError):
            continue
        if status["since"] >= started:
            found.add(status["stage"])
    return found


@pytest.mark.slow
def test_kill_9_at_any_moment_then_resume_gives_complete_outputs(tmp_path: Path):
    import psutil

    names = ["k1", "k2", "k3"]
    studies, candidates = brats_batch(tmp_path, names, [3, 3, 3])
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "btk",
        "run",
        str(studies),
        "-o",
        str(out),
        "--candidates",
        str(candidates),
        "--workers",
        "2",
        "--method",
        "mav",
    ]
    kills = 0
    for moment in ("segment", "fuse", "report", "done"):
        started = time.time()
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while (
            process.poll() is None and time.time() < started + 120 and moment not in _stages_since(out, names, started)
        ):
            time.sleep(0.02)
        if process.poll() is None:
            workers = psutil.Process(process.pid).children(recursive=True)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            _, alive = psutil.wait_procs(workers, timeout=10)
            assert not alive, "worker processes outlived the killed btk run"
    assert kills >= 3
    final = btk("run", studies, "-o", out, "--candidates", candidates, "--method", "mav")
    assert final.returncode == 0, final.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["ok"] * len(names)
    for name in names:
        np.testing.assert_array_equal(_fused(out, name), _expected_fusion(candidates / name))
        for stage in markers(out / name):
            assert read_marker(out / name, stage) is not None, f"{name}/{stage} marker names a bad output"
        for image in (out / name).rglob("*.nii.gz"):
            np.asarray(nib.load(image).dataobj)  # every image decodes completely
        assert (out / name / "report" / "report.html").stat().st_size > 1000
    leftovers = [p for p in out.rglob("*") if ".partial" in p.name and ".btk" not in p.parts]
    assert not leftovers


@pytest.mark.slow
def test_a_real_dask_cluster_of_two_worker_processes(tmp_path: Path):
    """A scheduler and two worker processes, one advertising a GPU: CPU-only studies spread over both,
    GPU-bound ones (default device) all go to the GPU worker, one at a time."""
    from distributed import Client, Nanny, Scheduler, SpecCluster

    names = ["d1", "d2", "d3"]
    studies, candidates = brats_batch(tmp_path, names, [2, 2, 2])
    workers = {
        "gpu-worker": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
        "cpu-worker": {"cls": Nanny, "options": {"nthreads": 1}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None, "host": "127.0.0.1"}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        pids = client.run(os.getpid)  # worker address -> process id
        gpu_pid = next(
            pid for address, pid in pids.items() if client.scheduler_info()["workers"][address]["resources"].get("GPU")
        )
        out = tmp_path / "out"
        cpu_run = btk(
            "run",
            studies,
            "-o",
            out,
            "--candidates",
            candidates,
            "--device",
            "cpu",
            "-m",
            "mav",
            "--scheduler",
            cluster.scheduler_address,
        )
        assert cpu_run.returncode == 0, cpu_run.stderr
        assert "Dask cluster" in cpu_run.stderr
        used = {markers_pid(out / n) for n in names}
        assert used == set(pids.values()), "both worker processes should have processed studies"

        gpu_run = btk(
            "run",
            studies,
            "-o",
            out,
            "--candidates",
            candidates,
            "--force",
            "-m",
            "mav",
            "--scheduler",
            cluster.scheduler_address,
        )
        assert gpu_run.returncode == 0, gpu_run.stderr
        assert {markers_pid(out / n) for n in names} == {gpu_pid}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["ok"] * 3 and (out / "alarms.json").is_file()

    malformed = btk("run", studies, "-o", tmp_path / "x", "--candidates", candidates, "--scheduler", "localhost")
    assert malformed.returncode == 2 and "not a Dask scheduler address" in malformed.stderr


def markers_pid(study: Path) -> int:
    return json.loads((study / ".btk" / "status.json").read_text())["pid"]


@pytest.mark.slow
def test_algorithms_in_real_containers_and_a_container_failure(tmp_path: Path, fakeseg_image: str):
    """A real Docker container segments beside imported candidates; a crashing one is recorded, and a
    study left with no segmentation at all fails with the container's reason while the batch goes on."""
    registry = write_registry(
        tmp_path / "algorithms.json",
        entry("fake-good", fakeseg_image, {"kind": "brats2025"}),
        entry("fake-crash", fakeseg_image, {"kind": "brats2025"}, command=["brats2025", "--fault", "exit"]),
    )
    studies, candidates = brats_batch(tmp_path, ["with-candidates", "alone"], [2, 2])
    shutil.rmtree(candidates / "alone")
    out = tmp_path / "out"
    result = btk(
        "run",
        studies,
        "-o",
        out,
        "--candidates",
        candidates,
        "--registry",
        registry,
        "-a",
        "fake-crash",
        "--cpu",
        "-m",
        "mav",
    )
    assert result.returncode == 1, result.stderr
    rows = {row["study"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert rows["with-candidates"]["status"] == "ok" and rows["with-candidates"]["candidates"] == "2"
    assert rows["alone"]["failed_stage"] == "segment"
    assert "every algorithm failed (fake-crash: failed" in rows["alone"]["reason"]
    html = (out / "with-candidates" / "report" / "report.html").read_text()
    assert "fake-crash" in html and 'class="alarm"' in html

    good = btk(
        "run",
        studies / "alone",
        "-o",
        out,
        "--registry",
        registry,
        "-a",
        "fake-good",
        "-a",
        "fake-crash",
        "--cpu",
        "-m",
        "mav",
    )
    assert good.returncode == 0, good.stderr
    data = json.loads((out / "alone" / "report" / "report.json").read_text())
    assert [(c["name"], c["origin"]) for c in data["candidates"]] == [("fake-good", "algorithm")]
    assert data["fusion"]["method"] == "none (a single candidate)"
    assert (out / "alone" / "segment" / "algorithms" / "logs" / "fake-crash.log").is_file()


def test_a_worker_whose_parent_died_while_it_started_ends_at_once():
    # The parent given is not this process's parent any more (here: never was): the worker is an orphan.
    worker = "from btk.pipeline.study import end_with_parent; import time; end_with_parent(1); time.sleep(60)"
    started = time.time()
    process = subprocess.run([sys.executable, "-c", worker], timeout=60)
    assert process.returncode == -signal.SIGKILL and time.time() - started < 30


@pytest.mark.slow
def test_a_local_worker_and_the_tools_it_started_end_when_btk_is_killed():
    import psutil

    worker = (
        "from btk.pipeline.study import end_with_parent; import subprocess, time; end_with_parent(); "
        "tool = subprocess.Popen(['sleep', '120']); print(tool.pid, flush=True); time.sleep(120)"
    )
    parent = "import subprocess, sys, time; w = subprocess.Popen([sys.executable, '-c', sys.argv[1]]); time.sleep(120)"
    btk_run = subprocess.Popen([sys.executable, "-c", parent, worker], stdout=subprocess.PIPE, text=True)
    tool_pid = int(btk_run.stdout.readline())
    descendants = psutil.Process(btk_run.pid).children(recursive=True)
    assert tool_pid in {p.pid for p in descendants} and len(descendants) == 2
    os.kill(btk_run.pid, signal.SIGKILL)
    btk_run.wait()
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert not alive, f"still running after btk was killed: {alive}"
