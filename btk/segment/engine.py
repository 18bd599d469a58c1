"""The Docker engine: connecting, pulling and building images, and running one locked-down container.

Every container btk starts has no network, drops all capabilities, cannot gain privileges, runs as the
invoking user unless its entry says the image needs root, and is removed when it ends, whatever happens.
It is labelled with its owning btk process (see :mod:`btk.segment.leftovers`), so that the next run removes
it if that process was killed. What it prints is streamed into a bounded log (:mod:`btk.segment.logs`).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from btk.console import console, logger, progress
from btk.errors import ContainerError, EngineError, MissingExtraError
from btk.segment.contracts import Mount
from btk.segment.leftovers import Owner
from btk.segment.logs import BoundedLog

try:
    import docker
    import docker.api.build
    import docker.errors
    import docker.types
    import docker.utils.build
    import requests.exceptions
except ImportError:  # pragma: no cover - exercised only without the 'segment' extra
    docker = None  # type: ignore[assignment]

START_HINT = (
    "start it: `sudo systemctl start docker` (Linux; or `sudo dockerd &` where there is no systemd), "
    "or open Docker Desktop (macOS, Windows); `docker info` must work"
)
#: Label put on every container btk creates, valued with the algorithm's name.
LABEL = "org.btk.algorithm"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one container; :meth:`create_kwargs` holds the security settings."""

    image: str
    command: tuple[str, ...] | None
    mounts: tuple[Mount, ...]
    user: str
    name: str
    gpus: tuple[str, ...] = ()
    shm_size: str | None = None
    memory: str | None = None
    cpus: float | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``docker.containers.create``."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": list(self.command) if self.command else None,
            "mounts": [
                docker.types.Mount(m.target, str(m.source), type="bind", read_only=m.read_only) for m in self.mounts
            ],
            "user": self.user,
            "network_mode": "none",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "labels": {LABEL: self.name, **Owner.current().labels(), **self.labels},
            "detach": True,
        }
        if self.gpus:
            kwargs["device_requests"] = [docker.types.DeviceRequest(device_ids=list(self.gpus), capabilities=[["gpu"]])]
        if self.shm_size:
            kwargs["shm_size"] = self.shm_size
        if self.memory:
            kwargs["mem_limit"] = self.memory
        if self.cpus:
            kwargs["nano_cpus"] = int(self.cpus * 1e9)
        return kwargs


@dataclass(frozen=True)
class RunOutcome:
    """How a container ended.

    ``log`` holds (the bounded part of) everything it printed, stdout and stderr interleaved as the engine
    delivered them (Docker does not keep the two in order); ``stderr_tail`` is the end of its stderr alone,
    in order, which is where a failing program says why.
    """

    exit_code: int | None
    timed_out: bool
    seconds: float
    log: BoundedLog
    stderr_tail: str = ""


class Engine:
    """A connection to a running Docker engine."""

    def __init__(self, client: Any):
        self.client = client
        self._running: set[Any] = set()
        self._lock = threading.Lock()

    @classmethod
    def connect(cls) -> Engine:
        """Connect to the engine named by the environment (``DOCKER_HOST``, else the local socket)."""
        if docker is None:
            raise MissingExtraError("the Docker SDK is not installed", extra="segment")
        try:
            client = docker.from_env(timeout=120)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            if "ermission denied" in str(error):
                raise EngineError(
                    "no permission to use the Docker engine",
                    hint="add yourself to the 'docker' group (`sudo usermod -aG docker $USER`, then log in again)",
                ) from None
            raise EngineError("the Docker engine is not running or cannot be reached", hint=START_HINT) from None
        return cls(client)

    def has_image(self, reference: str) -> bool:
        """Whether the image is present locally."""
        with _engine_errors(f"cannot look up the image {reference}"):
            try:
                self.client.images.get(reference)
            except docker.errors.ImageNotFound:
                return False
        return True

    def ensure_image(self, reference: str, pull: bool) -> None:
        """Make sure the image is present: pull it, or fail clearly when pulling is not allowed."""
        if self.has_image(reference):
            return
        if not pull:
            raise EngineError(
                f"the image {reference} is not present and --no-pull was given",
                hint=f"pull it first: `btk algorithms pull` or `docker pull {reference}`",
            )
        self.pull(reference)

    def pull(self, reference: str) -> None:
        """Pull an image, showing the bytes downloaded."""
        repository, tag = split_reference(reference)
        layers: dict[str, tuple[int, int]] = {}
        with _pull_progress() as bar, _engine_errors(f"cannot pull {reference}", hint=_PULL_HINT):
            task = bar.add_task(f"Pulling {reference}", total=None)
            for line in self.client.api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in line:
                    raise EngineError(f"cannot pull {reference}: {line['error']}", hint=_PULL_HINT)
                detail = line.get("progressDetail") or {}
                if line.get("status") == "Downloading" and detail.get("total"):
                    layers[line["id"]] = (detail.get("current", 0), detail["total"])
                elif line.get("status") in ("Download complete", "Pull complete") and line.get("id") in layers:
                    layers[line["id"]] = (layers[line["id"]][1], layers[line["id"]][1])
                if layers:
                    bar.update(
                        task, completed=sum(c for c, _ in layers.values()), total=sum(t for _, t in layers.values())
                    )
        if not self.has_image(reference):
            raise EngineError(f"pulling {reference} did not produce the image", hint=_PULL_HINT)
        logger.info("Pulled %s", reference)

    def build(self, context: Path, dockerfile: Path, reference: str, args: dict[str, str], exclude: list[str]) -> None:
        """Build an image from a Dockerfile and tag it ``reference``, showing the build's steps.

        ``exclude`` holds .dockerignore patterns: what of ``context`` is not sent to the engine. The build
        may use the network (to install packages); the containers btk runs never can.
        """
        with progress() as bar, _engine_errors(f"cannot build {reference}", path=dockerfile):
            task = bar.add_task(f"Packing the build context of {reference}", total=None)
            # a Dockerfile that is given always gets a name in the context (docker returns None only for none)
            named = cast("tuple[str, str | None]", docker.api.build.process_dockerfile(str(dockerfile), str(context)))
            with contextlib.closing(_context_archive(context, exclude, named)) as archive:
                bar.update(task, description=f"Building {reference}")
                stream = self.client.api.build(
                    fileobj=archive,
                    custom_context=True,
                    dockerfile=named[0],
                    tag=reference,
                    buildargs=args,
                    rm=True,
                    forcerm=True,
                    decode=True,
                    timeout=3600,
                )
                _follow_build(stream, reference, dockerfile, bar, task)
        if not self.has_image(reference):
            raise EngineError(f"building {reference} did not produce the image", path=dockerfile)
        logger.info("Built %s", reference)

    def create(self, spec: ContainerSpec) -> Any:
        """Create (not start) a container."""
        try:
            return self.client.containers.create(**spec.create_kwargs())
        except docker.errors.ImageNotFound:
            raise EngineError(f"the image {spec.image} is not present", hint="pull it: `btk algorithms pull`") from None
        except docker.errors.APIError as error:
            raise EngineError(f"the engine refused to create the container: {error.explanation or error}") from None

    def run(self, spec: ContainerSpec, timeout: float, log: BoundedLog) -> RunOutcome:
        """Run a container to its end or until ``timeout`` seconds have passed; it is always removed.

        Its output is streamed into ``log`` while it runs (closed when this returns).
        """
        container = self.create(spec)
        with self._lock:
            self._running.add(container)
        try:
            with _engine_errors("the engine failed running the container"):
                return self._wait(container, timeout, log)
        finally:
            with self._lock:
                self._running.discard(container)
            self.remove(container)
            log.close()

    def remove_running(self) -> None:
        """Remove every container :meth:`run` is waiting for (after Ctrl-C: its waiting threads end at once)."""
        with self._lock:
            running = list(self._running)
        for container in running:
            self.remove(container)

    def _wait(self, container: Any, timeout: float, log: BoundedLog) -> RunOutcome:
        """Start the container, stream its output into ``log``, wait for its end or kill it at ``timeout``."""
        start = time.perf_counter()
        container.start()
        follower = _LogFollower(container, log)
        try:
            status = container.wait(timeout=timeout)
            exit_code, timed_out = int(status.get("StatusCode", -1)), False
        except requests.exceptions.RequestException:
            if time.perf_counter() - start < timeout * 0.99:
                raise  # not our time limit: the engine went away
            with contextlib.suppress(docker.errors.APIError):  # it may have ended just now
                container.kill()
            exit_code, timed_out = None, True
        seconds = time.perf_counter() - start
        follower.finish()
        return RunOutcome(exit_code, timed_out, seconds, log, _stderr_tail(container))

    def remove(self, container: Any) -> None:
        """Remove a container, killing it first if it still runs."""
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, requests.exceptions.RequestException) as error:
            logger.warning(
                "Could not remove container %s: %s; remove it with `docker rm -f %s`",
                container.short_id,
                error,
                container.short_id,
            )

    def hand_back(self, image: str, folder: Path, uid: int, gid: int) -> None:
        """Give the files a root container wrote in ``folder`` to ``uid:gid`` (a second, minimal container)."""
        spec = ContainerSpec(
            image=image, command=None, mounts=(Mount(folder, "/handback", False),), user="0:0", name="handback"
        )
        kwargs = spec.create_kwargs()
        # -h and -R without -L: links are changed themselves, never followed
        kwargs.update(entrypoint=["chown", "-R", "-h", f"{uid}:{gid}", "/handback"], cap_add=["CHOWN"])
        failure = f"could not hand the outputs of {image} back to uid {uid}"
        with _engine_errors(failure, path=folder):
            container = self.client.containers.create(**kwargs)
            try:
                container.start()
                if container.wait(timeout=300).get("StatusCode") != 0:
                    logs = container.logs(tail=5).decode("utf-8", errors="replace").strip()[-2000:]
                    raise ContainerError(f"{failure}: {logs}", path=folder)
            finally:
                self.remove(container)

    def containers(self, name: str | None = None) -> list[Any]:
        """btk's containers that still exist (all of them, or those of one algorithm)."""
        label = f"{LABEL}={name}" if name else LABEL
        with _engine_errors("cannot list btk's containers"):
            return self.client.containers.list(all=True, filters={"label": label})


def _stderr_tail(container: Any, lines: int = 50, size: int = 64 * 1024) -> str:
    """The last ``lines`` lines (at most ``size`` bytes) of an ended container's stderr; empty if unavailable."""
    try:
        tail = container.logs(stdout=False, stderr=True, tail=lines)
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return ""
    return bytes(tail[-size:]).decode("utf-8", errors="replace")


class _LogFollower:
    """Streams a started container's output into a :class:`BoundedLog` in a thread, until the container ends."""

    def __init__(self, container: Any, log: BoundedLog):
        self._stream = container.logs(stdout=True, stderr=True, stream=True, follow=True)
        self._thread = threading.Thread(target=self._copy, args=(log,), name="btk-container-log", daemon=True)
        self._thread.start()

    def _copy(self, log: BoundedLog) -> None:
        try:
            for chunk in self._stream:
                log.write(chunk)
        except (docker.errors.APIError, requests.exceptions.RequestException, OSError) as error:
            logger.debug("the container's output stream ended early: %s", error)

    def finish(self, grace: float = 30.0) -> None:
        """Wait for the end of the stream (the container has ended), or cut it after ``grace`` seconds."""
        self._thread.join(grace)
        if self._thread.is_alive():
            with contextlib.suppress(Exception):  # whatever state the connection is in, it is dropped
                self._stream.close()
            self._thread.join(5)


def _context_archive(context: Path, exclude: list[str], dockerfile: tuple[str, str | None]) -> IO[bytes]:
    """The build context as a tar file, without the excluded files and without any ``.dockerignore``.

    The engine's classic builder applies a ``.dockerignore`` it finds in the context; the patterns are
    applied here instead, so that a Dockerfile's own ignore file (BuildKit's convention) is honoured.
    ``dockerfile`` is the pair docker's ``process_dockerfile`` gives: its name in the context, and its text
    when it lies outside the context.
    """
    files = [
        f
        for f in docker.utils.build.exclude_paths(str(context), exclude, dockerfile=dockerfile[0])
        if f != ".dockerignore"
    ]
    extra = [(dockerfile[0], dockerfile[1])] if dockerfile[1] is not None else []
    # without a fileobj to write into, docker writes the archive into a temporary file and returns it
    return cast(IO[bytes], docker.utils.build.create_archive(root=str(context), files=sorted(files), extra_files=extra))


_BUILD_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")


def _follow_build(stream: Iterator[dict], reference: str, dockerfile: Path, bar: Progress, task: TaskID) -> None:
    """Show a build's steps on ``bar``, log its output (``--verbose``), and fail with its last lines."""
    recent: deque[str] = deque(maxlen=15)
    for line in stream:
        if "error" in line:
            detail = "\n    ".join(recent)
            raise EngineError(
                f"building {reference} failed: {line['error'].strip()}"
                + (f"\n  last build output:\n    {detail}" if detail else ""),
                path=dockerfile,
                hint="run again with --verbose for the whole build output",
            )
        text = (line.get("stream") or "").rstrip()
        if not text:
            continue
        recent.append(text)
        logger.debug("build: %s", text)
        step = _BUILD_STEP.match(text)
        if step:
            bar.update(
                task,
                completed=int(step[1]) - 1,
                total=int(step[2]),
                description=f"Building {reference}: {step[3][:60]}",
            )


@contextlib.contextmanager
def _engine_errors(failure: str, path: Path | None = None, hint: str | None = None) -> Iterator[None]:
    """Turn the Docker SDK's errors inside the block into one :class:`EngineError` starting with ``failure``."""
    try:
        yield
    except docker.errors.APIError as error:
        explanation = str(error.explanation or error)
        if "device driver" in explanation:
            hint = "install the NVIDIA Container Toolkit so Docker can give containers a GPU, or pass --cpu"
        raise EngineError(f"{failure}: {explanation}", path=path, hint=hint) from None
    except requests.exceptions.RequestException as error:
        raise EngineError(
            f"{failure}: the Docker engine stopped answering ({error})", path=path, hint=START_HINT
        ) from None


_PULL_HINT = "check the image name, your network and `docker login`; or load the image with `docker load`"


def split_reference(reference: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); ``repo@sha256:...`` -> (repo, digest)."""
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        return repository, digest
    repository, _, tag = reference.rpartition(":")
    if not repository or "/" in tag:
        return reference, "latest"
    return repository, tag


def _pull_progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
