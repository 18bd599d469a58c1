"""A real Docker engine, btk's base image and test images, for tests and benchmarks that run containers.

Functions (usable from tests, bench scripts and other components' test support):

- :func:`ensure_engine` -> ``docker.DockerClient`` of a running engine. When none answers, it installs
  Debian's ``docker.io`` if ``dockerd`` is missing and starts ``dockerd`` itself (root only; its log goes to
  ``/tmp/btk-test-dockerd.log``). The engine is left running for later sessions.
- :func:`ensure_base_image` -> ``"btk-base:bookworm"`` (:data:`BASE_IMAGE`): btk's Debian base image, built
  once per machine by ``containers/base/build.sh`` (debootstrap + ``docker import``, about a minute; no
  registry is reachable here). It holds python3 with numpy, venv and pip, and CA certificates. Dockerfiles
  take it as ``ARG BASE_IMAGE`` / ``FROM ${BASE_IMAGE}``.
- :func:`build_algorithm` ``(name, registry=None)`` -> ``"image:tag"``: a registry entry's image built FROM
  the base image through btk's own build code (``btk algorithms build NAME --base-image btk-base:bookworm``),
  e.g. ``build_algorithm("btk-unet")``.
- :func:`build_test_images` -> ``"btk-test/fakeseg:1"`` (:data:`FAKESEG_IMAGE`): the fake segmenter of
  ``containers/test-images/fakeseg`` (it speaks all three contracts), built the same way.
- :func:`local_registry` (context manager) -> ``"127.0.0.1:PORT"``: Debian's ``docker-registry`` with its
  own config, port and storage, for pull tests.

Session fixtures (registered for the whole suite by ``pytest_plugins`` in ``tests/conftest.py``):
``docker_engine`` (the client; the test is skipped when no engine can be started), ``base_image`` (its tag)
and ``fakeseg_image`` (its tag).

Example (another component's image, built FROM the base and run through the Segmentor)::

    from tests.support.docker_engine import build_algorithm

    def test_unet_image(docker_engine, tmp_path):
        build_algorithm("btk-unet")
        report = Segmentor(cpu=True).run(exam_dir, ["btk-unet"], tmp_path / "seg", weights={"btk-unet": w})
        assert report.ok, report.runs[0].message
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "btk-base:bookworm"
FAKESEG_IMAGE = "btk-test/fakeseg:1"
DOCKERD_LOG = Path("/tmp/btk-test-dockerd.log")


def _client() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception:  # any failure means: no usable engine here
        return None


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def ensure_engine() -> docker.DockerClient:
    """A client of a running engine; starts ``dockerd`` (installing docker.io first if needed) when none answers."""
    client = _client()
    if client is not None:
        return client
    if os.geteuid() != 0:
        raise RuntimeError("no Docker engine is running and starting one needs root")
    if shutil.which("dockerd") is None:
        _apt_install("docker.io")
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        client = _client()
        if client is not None:
            return client
        time.sleep(0.5)
    raise RuntimeError(f"dockerd did not come up within 90 s; see {DOCKERD_LOG}")


def ensure_base_image(client: docker.DockerClient | None = None) -> str:
    """Build btk's debootstrapped base image once per machine; returns its tag."""
    client = client or ensure_engine()
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(BASE_IMAGE)
        return BASE_IMAGE
    if shutil.which("debootstrap") is None:
        _apt_install("debootstrap")
    subprocess.run(["bash", str(ROOT / "containers" / "base" / "build.sh"), BASE_IMAGE], check=True)
    return BASE_IMAGE


def build_algorithm(
    name: str, registry: str | Path | None = None, client: docker.DockerClient | None = None, source: Path | None = None
) -> str:
    """Build a registry entry's image FROM the base image (``btk algorithms build NAME --base-image ...``).

    ``name`` is looked up in the shipped registry plus ``registry``; ``source`` overrides the folder the
    entry's build paths are relative to. Returns ``image:tag``; Docker's build cache makes repeats quick.
    """
    from btk.segment.build import build_image
    from btk.segment.engine import Engine
    from btk.segment.registry import load_registry

    client = client or ensure_engine()
    base = ensure_base_image(client)
    return build_image(Engine(client), load_registry(registry).get(name), base_image=base, source=source)


def build_test_images(client: docker.DockerClient | None = None) -> str:
    """Build the fake segmenter FROM the base image; returns its tag."""
    repository, tag = FAKESEG_IMAGE.rsplit(":", 1)
    entry = {
        "name": "fakeseg",
        "image": repository,
        "tag": tag,
        "authors": "btk tests",
        "citation": "none",
        "year": 2025,
        "contract": {"kind": "brats2025"},
        "labels": "brats2023",
        "build": {"dockerfile": "Dockerfile", "context": "."},
    }
    with tempfile.TemporaryDirectory() as folder:
        registry = Path(folder) / "registry.json"
        registry.write_text(json.dumps({"schema_version": 1, "algorithms": [entry]}), encoding="utf-8")
        return build_algorithm("fakeseg", registry, client, source=ROOT / "containers" / "test-images" / "fakeseg")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_registry(storage: Path) -> Iterator[str]:
    """Debian's ``docker-registry`` on 127.0.0.1 (plain HTTP, which the engine trusts on loopback).

    Its config, storage and port are private to this call; yields ``host:port``; stopped on exit.
    """
    if not Path("/usr/bin/docker-registry").exists():
        _apt_install("docker-registry")
    port = free_port()
    config = storage / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        ["/usr/bin/docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"docker-registry did not start on 127.0.0.1:{port}") from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def docker_engine() -> docker.DockerClient:
    """A running Docker engine (started here if none runs); skips the test when that is impossible."""
    try:
        return ensure_engine()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"no Docker engine: {error}")


@pytest.fixture(scope="session")
def base_image(docker_engine) -> str:
    """btk's Debian base image (built once per machine)."""
    return ensure_base_image(docker_engine)


@pytest.fixture(scope="session")
def fakeseg_image(docker_engine) -> str:
    """The fake segmenter image, built FROM the base image."""
    return build_test_images(docker_engine)
