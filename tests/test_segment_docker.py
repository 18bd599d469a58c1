"""The Segmentor against a real Docker engine and real test images (started and built by the suite itself)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker.errors
import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.segment import Exam, Segmentor, load_registry
from btk.segment.contracts import contract_for
from btk.segment.engine import Engine
from btk.segment.gpus import Gpu
from tests.support.docker_engine import BASE_IMAGE, ROOT, local_registry
from tests.support.segment import AFFINE, SHAPE, entry, make_exam, write_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def image(fakeseg_image) -> str:
    """The fake segmenter, built on a running engine (started here if none runs)."""
    return fakeseg_image


@pytest.fixture
def exam(tmp_path) -> Path:
    return make_exam(tmp_path / "exam")


def _registry(tmp_path: Path, image: str, *entries: dict):
    return load_registry(write_registry(tmp_path / "registry.json", *entries))


def _no_containers_left(*names: str) -> bool:
    """Whether none of these algorithms' containers exists any more (other users' containers are ignored)."""
    engine = Engine.connect()
    return not any(engine.containers(name) for name in names)


CONTRACTS = {
    "legacy-gz-b18": (
        {"kind": "brats-legacy", "mount": "/app/data/", "naming": "gz-b18"},
        {"command": ["legacy", "/app/data"]},
    ),
    "legacy-b17-t1": (
        {"kind": "brats-legacy", "mount": "/data", "naming": "b17-t1"},
        {"command": ["legacy", "/data", "--labels", "2021"], "labels": "brats2021"},
    ),
    "legacy-gz-b17-f": (
        {"kind": "brats-legacy", "mount": "/workspace/data/", "naming": "gz-b17-f"},
        {"command": ["legacy", "/workspace/data"]},
    ),
    "mlcube": ({"kind": "mlcube", "parameters_file": True}, {}),
    "brats2025": ({"kind": "brats2025", "case": "BraTS-GLI-00042-000"}, {}),
}


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_each_contract_end_to_end(tmp_path, image, exam, name):
    contract, fields = CONTRACTS[name]
    registry = _registry(tmp_path, image, entry(name, image, contract, **fields))
    report = Segmentor(registry, labels="brats2021").run(exam, [name], tmp_path / "seg")
    run = report.runs[0]
    assert run.status == "ok", run.message
    result = nib.load(str(tmp_path / "seg" / f"{name}.nii.gz"))
    assert result.shape == SHAPE
    assert np.allclose(result.affine, AFFINE)  # re-stamped: the image wrote an identity affine
    labels = set(np.unique(np.asarray(result.dataobj)).tolist())
    assert labels == {0, 1, 2, 4}  # computed from the inputs, converted to brats2021
    assert (tmp_path / "seg" / "logs" / f"{name}.log").read_text().count("fakeseg: wrote") == 1
    assert _no_containers_left(name)


def test_cli_several_algorithms_one_failure_does_not_stop_the_others(tmp_path, image, exam, capsys):
    registry = write_registry(
        tmp_path / "r.json",
        entry("good", image, {"kind": "brats2025"}),
        entry("crash", image, {"kind": "brats2025"}, command=["brats2025", "--fault", "exit"]),
        entry("gpu-only", image, {"kind": "brats2025"}, gpu="required"),
        entry("also-good", image, {"kind": "mlcube"}),
    )
    seg = tmp_path / "seg"
    code = main(
        [
            "segment",
            str(exam),
            "-o",
            str(seg),
            "--registry",
            str(registry),
            "-a",
            "good",
            "-a",
            "crash",
            "-a",
            "gpu-only",
            "-a",
            "also-good",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert (seg / "good.nii.gz").is_file() and (seg / "also-good.nii.gz").is_file()
    assert not (seg / "crash.nii.gz").exists()
    assert "simulated crash" in (seg / "logs" / "crash.log").read_text()
    # the reason comes from the container's stderr, not from the stdout line it printed after it
    assert "exited with code 1 (fakeseg: simulated crash)" in " ".join(err.split())
    assert "gpu-only: skipped: needs a GPU and no NVIDIA GPU was found" in " ".join(err.split())
    table = err[err.index("Segmentations of") :]
    for name, status in [("good", "ok"), ("crash", "failed"), ("gpu-only", "skipped"), ("also-good", "ok")]:
        assert re.search(rf"{name}\s+│\s+{status}\s+│", table), table
    assert sorted(p.name for p in (seg / "logs").iterdir()) == [
        "also-good.log",
        "crash.log",
        "good.log",
        "gpu-only.log",
    ]
    assert "no NVIDIA GPU" in (seg / "logs" / "gpu-only.log").read_text()
    summary = json.loads((seg / "segment.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["ok", "failed", "skipped", "ok"]
    # existing outputs are not overwritten without --force
    assert main(["segment", str(exam), "-o", str(seg), "--registry", str(registry), "-a", "good"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["segment", str(exam), "-o", str(seg), "--registry", str(registry), "-a", "good", "--force"]) == 0
    # a forced re-run that fails leaves no segmentation from the earlier run posing as this run's
    now_crashing = write_registry(
        tmp_path / "r2.json", entry("good", image, {"kind": "brats2025"}, command=["brats2025", "--fault", "exit"])
    )
    assert main(["segment", str(exam), "-o", str(seg), "--registry", str(now_crashing), "-a", "good", "--force"]) == 1
    assert not (seg / "good.nii.gz").exists()
    assert "# btk: failed: the container exited with code 1" in (seg / "logs" / "good.log").read_text()


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        ("exit", "failed", "exited with code 1"),
        ("none", "failed", "wrote no segmentation"),
        ("shape", "failed", "not on the input's grid"),
        ("labels", "failed", "labels 7"),
        ("empty", "failed", "all background"),
        ("hang", "timeout", "timed out after 2 s; the container was killed and removed"),
    ],
)
def test_faults(tmp_path, image, exam, fault, status, message):
    registry = _registry(
        tmp_path,
        image,
        entry("faulty", image, {"kind": "brats2025"}, command=["brats2025", "--fault", fault], timeout_s=2),
    )
    report = Segmentor(registry).run(exam, ["faulty"], tmp_path / "seg")
    run = report.runs[0]
    assert (run.status, not report.ok) == (status, True)
    assert message in run.message
    assert not (tmp_path / "seg" / "faulty.nii.gz").exists()
    log = (tmp_path / "seg" / "logs" / "faulty.log").read_text()
    assert f"# btk: {status}: " in log and message in log and "fakeseg: mode brats2025" in log
    assert _no_containers_left("faulty")
    if fault == "hang":
        assert run.seconds < 10 and "# killed (timeout) after 2." in log


def test_interrupted_run_removes_its_container(tmp_path, image, exam):
    """Ctrl-C while an algorithm runs: btk exits 130 and the container is gone."""
    registry = write_registry(
        tmp_path / "r.json",
        entry("interrupted", image, {"kind": "brats2025"}, command=["brats2025", "--fault", "hang"]),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "btk",
            "segment",
            str(exam),
            "-o",
            str(tmp_path / "seg"),
            "--registry",
            str(registry),
            "-a",
            "interrupted",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = Engine.connect()
    deadline = time.monotonic() + 60
    while not any(c.status == "running" and b"hanging" in c.logs() for c in engine.containers("interrupted")):
        assert time.monotonic() < deadline and process.poll() is None, "the container never started"
        time.sleep(0.1)
    time.sleep(0.5)  # btk streams the output into its log as it comes
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert _no_containers_left("interrupted")
    assert not (tmp_path / "seg" / "interrupted.nii.gz").exists()
    log = (tmp_path / "seg" / "logs" / "interrupted.log").read_text()
    assert "fakeseg: hanging" in log  # what it printed until then is kept
    assert log.endswith("# btk: failed: interrupted (Ctrl-C); the container was removed\n")


def test_missing_image_with_no_pull_and_an_unpullable_image(tmp_path, docker_engine, exam, capsys):
    registry = write_registry(tmp_path / "r.json", entry("ghost", "btk-test/does-not-exist:0", {"kind": "brats2025"}))
    code = main(
        ["segment", str(exam), "-o", str(tmp_path / "a"), "--registry", str(registry), "-a", "ghost", "--no-pull"]
    )
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "the image btk-test/does-not-exist:0 is not present and --no-pull was given" in err
    assert "btk algorithms pull" in err and "failed" in err  # the message and the summary table
    assert "--no-pull" in (tmp_path / "a" / "logs" / "ghost.log").read_text()
    run = Segmentor(load_registry(registry)).run(exam, ["ghost"], tmp_path / "b").runs[0]
    assert run.status == "failed" and "cannot pull btk-test/does-not-exist:0" in run.message
    assert not (tmp_path / "b" / "ghost.nii.gz").exists()


def test_pull_from_a_local_registry(tmp_path, docker_engine, image, exam, capsys):
    client = docker_engine
    storage = tmp_path / "registry"
    storage.mkdir()
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {image}\nRUN echo 'from the local registry' > /opt/btk-test/origin\n")
    with local_registry(storage) as host:
        remote = f"{host}/btk/fakeseg:pulled"
        client.images.build(path=str(context), tag=remote, rm=True)
        for line in client.images.push(remote, stream=True, decode=True):
            assert "error" not in line, line
        client.images.remove(remote)  # its own layer goes with it, so the pull below downloads for real
        assert not Engine(client).has_image(remote)
        registry = write_registry(tmp_path / "r.json", entry("remote", remote, {"kind": "brats2025"}))
        assert main(["algorithms", "pull", "remote", "--registry", str(registry)]) == 0
        assert f"remote: pulled {remote}" in capsys.readouterr().err
        assert client.images.get(remote)
        assert main(["algorithms", "pull", "remote", "--registry", str(registry)]) == 0
        assert "is present" in capsys.readouterr().err
        client.images.remove(remote)
        report = Segmentor(load_registry(registry)).run(exam, ["remote"], tmp_path / "seg")  # pulls it itself
        assert report.runs[0].status == "ok", report.runs[0].message
        client.images.remove(remote)
    assert main(["algorithms", "pull", "remote", "--registry", str(registry)]) == 2  # the registry is gone
    assert f"cannot pull {remote}" in capsys.readouterr().err


def test_container_is_locked_down(tmp_path, image, exam):
    """No network (only loopback, the host unreachable), read-only inputs, no capabilities, no new privileges."""
    with socket.socket() as listener:  # a service on the host that a networked container could reach
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the host's outward address
            host = probe.getsockname()[0]
        target = f"{host}:{listener.getsockname()[1]}"
        registry = _registry(
            tmp_path, image, entry("probe", image, {"kind": "brats2025"}, command=["brats2025", "--probe", target])
        )
        run = Segmentor(registry).run(exam, ["probe"], tmp_path / "seg").runs[0]
    assert run.status == "ok", run.message
    log = (tmp_path / "seg" / "logs" / "probe.log").read_text()
    assert "interfaces: lo\n" in log
    assert "network: unreachable" in log
    assert "inputs: read-only (Read-only file system)" in log
    assert "CapEff:\t0000000000000000" in log
    assert "NoNewPrivs:\t1" in log
    assert f"uid={os.getuid()} gid={os.getgid()}" in log


def _as_user(tmp_path: Path, uid: int, args: list[str]) -> subprocess.CompletedProcess:
    """Run btk's command line as another, unprivileged user who may use the engine (group docker)."""
    import grp

    docker_gid = grp.getgrnam("docker").gr_gid
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path)}
    (tmp_path / "tmp").mkdir()
    for path in [tmp_path, *tmp_path.rglob("*")]:
        os.chown(path, uid, uid)
    command = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        f"--groups={docker_gid}",
        "--inh-caps=-all",
        sys.executable,
        "-m",
        "btk",
        *args,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _reachable_by_other_users(path: Path) -> bool:
    """Whether every folder down to ``path`` lets other users through (a private checkout does not)."""
    return all(folder.stat().st_mode & 0o001 for folder in [path, *path.parents])


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
@pytest.mark.skipif(
    not _reachable_by_other_users(Path(sys.prefix)) or not _reachable_by_other_users(ROOT),
    reason="this checkout or its environment is private to its owner: another user cannot run btk",
)
def test_outputs_belong_to_the_invoking_user_even_when_the_image_needs_root(image):
    uid = 4242
    tmp_path = Path(tempfile.mkdtemp(prefix="btk-other-user-"))  # pytest's own folders are private to root
    try:
        tmp_path.chmod(0o755)
        exam = make_exam(tmp_path / "exam")
        registry = write_registry(
            tmp_path / "r.json",
            entry("as-user", image, {"kind": "brats2025"}, command=["brats2025", "--probe", "127.0.0.1:9"]),
            entry(
                "as-root", image, {"kind": "mlcube"}, command=["infer", "--require-root", "--scratch"], needs_root=True
            ),
        )
        result = _as_user(
            tmp_path,
            uid,
            [
                "segment",
                str(exam),
                "-o",
                str(tmp_path / "seg"),
                "--registry",
                str(registry),
                "-a",
                "as-user",
                "-a",
                "as-root",
            ],
        )
        assert result.returncode == 0, result.stderr
        written = list((tmp_path / "seg").rglob("*"))
        assert len(written) >= 6
        assert {p.stat().st_uid for p in written} == {uid}
        assert f"uid={uid} gid={uid}" in (tmp_path / "seg" / "logs" / "as-user.log").read_text()
        assert "# user: 0:0" in (tmp_path / "seg" / "logs" / "as-root.log").read_text()
        # the root image left a folder of its own; only because it was handed back could btk clean up after it
        assert not list((tmp_path / "tmp").iterdir())
    finally:
        shutil.rmtree(tmp_path)


def test_gpu_device_requests(tmp_path, image, exam):
    """No GPU here: check the created container asks the engine for exactly the chosen GPU."""
    registry = _registry(tmp_path, image, entry("gpu", image, {"kind": "brats2025"}, gpu="required", shm_size="256m"))
    algorithm = registry.get("gpu")
    segmentor = Segmentor(registry, memory="512m", cpus=1.5)
    staging = contract_for(algorithm).stage(Exam.from_folder(exam), tmp_path)
    spec = segmentor.container_spec(algorithm, staging, Gpu("1", 24))
    engine = Engine.connect()
    container = engine.create(spec)
    try:
        host = container.attrs["HostConfig"]
        assert host["DeviceRequests"] == [
            {"Driver": "", "Count": 0, "DeviceIDs": ["1"], "Capabilities": [["gpu"]], "Options": {}}
        ]
        assert host["NetworkMode"] == "none"
        assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
        assert host["ShmSize"] == 256 * 2**20 and host["Memory"] == 512 * 2**20 and host["NanoCpus"] == 1_500_000_000
        assert container.attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
        assert {m["Target"]: m.get("ReadOnly", False) for m in host["Mounts"]} == {"/input": True, "/output": False}
    finally:
        engine.remove(container)
    ghost = _registry(tmp_path, image, entry("ghost", "btk-test/does-not-exist:0", {"kind": "brats2025"}))
    with pytest.raises(BtkError, match="not present"):
        engine.create(segmentor.container_spec(ghost.get("ghost"), staging, None))
    assert _no_containers_left("gpu")


def test_weights_folder_is_bound_read_only(tmp_path, image, exam, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "model.txt").write_text("-1.0\n")
    registry = write_registry(
        tmp_path / "r.json",
        entry(
            "weighted",
            image,
            {"kind": "brats2025"},
            command=["brats2025", "--weights", "/weights"],
            weights_mount="/weights",
        ),
        entry("plain", image, {"kind": "brats2025"}),
    )
    code = main(
        [
            "segment",
            str(exam),
            "-o",
            str(tmp_path / "seg"),
            "--registry",
            str(registry),
            "-a",
            "weighted",
            "--weights",
            f"weighted={weights}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    log = (tmp_path / "seg" / "logs" / "weighted.log").read_text()
    assert "# mount: /weights (ro)" in log and "weights: threshold -1.0" in log and "weights: read-only" in log
    assert sorted(p.name for p in weights.iterdir()) == ["model.txt"]
    # the threshold read from the weights changes the result: a lower one finds a bigger tumour
    plain = Segmentor(load_registry(registry)).run(exam, ["plain"], tmp_path / "plain")
    weighted = nib.load(str(tmp_path / "seg" / "weighted.nii.gz")).get_fdata()
    assert (weighted > 0).sum() > (nib.load(str(plain.outputs["plain"])).get_fdata() > 0).sum()
    # without its weights the image fails, and says why
    run = Segmentor(load_registry(registry)).run(exam, ["weighted"], tmp_path / "none").runs[0]
    assert run.status == "failed" and "no weights" in run.message
    # weights for an algorithm that reads none, or a missing folder: refused before anything runs
    assert (
        main(
            [
                "segment",
                str(exam),
                "-o",
                str(tmp_path / "x"),
                "--registry",
                str(registry),
                "-a",
                "plain",
                "--weights",
                f"plain={weights}",
            ]
        )
        == 2
    )
    assert "plain takes no weights folder" in capsys.readouterr().err
    assert (
        main(
            [
                "segment",
                str(exam),
                "-o",
                str(tmp_path / "x"),
                "--registry",
                str(registry),
                "-a",
                "weighted",
                "--weights",
                f"weighted={tmp_path / 'nope'}",
            ]
        )
        == 2
    )
    assert "weights folder of weighted does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_algorithms_build(tmp_path, docker_engine, image, capsys):
    """`btk algorithms build`: a user entry's Dockerfile (relative to its registry file), base image, args."""
    source = tmp_path / "source"
    shutil.copytree(Path(__file__).resolve().parents[1] / "containers" / "test-images" / "fakeseg", source / "img")
    (source / "ctx").mkdir()  # a context whose Dockerfile-specific ignore file (BuildKit's convention) counts
    (source / "ctx" / "kept.txt").write_text("sent\n")
    (source / "ctx" / "excluded.txt").write_text("never sent\n")
    (source / "ctx" / "ignored" / "Dockerfile").parent.mkdir()
    (source / "ctx" / "ignored" / "Dockerfile").write_text(
        "ARG BASE_IMAGE=none\nFROM ${BASE_IMAGE}\nCOPY . /ctx/\n"
        "RUN test -e /ctx/kept.txt && test ! -e /ctx/excluded.txt && test ! -e /ctx/.dockerignore\n"
    )
    (source / "ctx" / "ignored" / "Dockerfile.dockerignore").write_text("# not sent\nexcluded.txt\n")
    (source / "ctx" / ".dockerignore").write_text("kept.txt\n")  # overruled by the Dockerfile's own
    (source / "broken").mkdir()
    (source / "broken" / "Dockerfile").write_text(
        "ARG BASE_IMAGE=none\nFROM ${BASE_IMAGE}\nLABEL org.btk.test=broken\nARG WHY\n"
        'RUN echo "failing because $WHY" && false\n'
    )
    registry = write_registry(
        source / "r.json",
        entry(
            "built", "btk-test/built:1", {"kind": "brats2025"}, build={"dockerfile": "img/Dockerfile", "context": "img"}
        ),
        entry(
            "broken",
            "btk-test/broken:1",
            {"kind": "brats2025"},
            build={"dockerfile": "broken/Dockerfile", "context": "broken"},
        ),
        entry("pulled-only", "btk-test/pulled:1", {"kind": "brats2025"}),
        entry(
            "ignoring",
            "btk-test/ignoring:1",
            {"kind": "brats2025"},
            build={"dockerfile": "ctx/ignored/Dockerfile", "context": "ctx"},
        ),
    )
    try:
        assert main(["algorithms", "build", "built", "--registry", str(registry), "--base-image", BASE_IMAGE]) == 0
        assert "built: built btk-test/built:1" in capsys.readouterr().err
        built = docker_engine.images.get("btk-test/built:1")
        assert built.id == docker_engine.images.get(image).id  # same Dockerfile, same base: the build cache
        code = main(
            [
                "algorithms",
                "build",
                "broken",
                "--registry",
                str(registry),
                "--base-image",
                BASE_IMAGE,
                "--build-arg",
                "WHY=testing",
            ]
        )
        err = " ".join(capsys.readouterr().err.split())
        assert code == 2 and "building btk-test/broken:1 failed" in err and "failing because testing" in err
        assert main(["algorithms", "build", "ignoring", "--registry", str(registry), "--base-image", BASE_IMAGE]) == 0
        assert main(["algorithms", "build", "pulled-only", "--registry", str(registry)]) == 2
        assert "has no build section" in capsys.readouterr().err
        assert main(["algorithms", "build", "built", "--registry", str(registry), "--build-arg", "oops"]) == 2
        assert "write --build-arg K=V" in capsys.readouterr().err
    finally:
        for tag in ("btk-test/built:1", "btk-test/ignoring:1"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_engine.images.remove(tag)
        # the failed build leaves its last good step as an untagged image: remove ours only
        docker_engine.images.prune(filters={"dangling": True, "label": "org.btk.test=broken"})
