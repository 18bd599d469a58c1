"""Which NVIDIA GPUs this machine has, and which lane each algorithm runs in."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from btk.errors import InputError
from btk.segment.registry import Algorithm


@dataclass(frozen=True)
class Gpu:
    """One GPU: its index as the engine names it, and its memory."""

    index: str
    memory_gb: float


def detect_gpus() -> list[Gpu]:
    """The NVIDIA GPUs ``nvidia-smi`` reports; none when it is missing or fails."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return []
    try:
        listing = subprocess.run(
            [executable, "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in listing.splitlines():
        index, _, memory = line.partition(",")
        if index.strip():
            gpus.append(Gpu(index.strip(), float(memory or 0) / 1024))
    return gpus


def select_gpus(available: Sequence[Gpu], wanted: Sequence[str] | None, cpu: bool) -> list[Gpu]:
    """The GPUs to use: none with ``cpu``, the ``wanted`` indices if given (they must exist), else all."""
    if cpu:
        return []
    if wanted is None:
        return list(available)
    by_index = {gpu.index: gpu for gpu in available}
    if available:
        unknown = [index for index in wanted if index not in by_index]
        if unknown:
            raise InputError(
                f"no GPU {', '.join(unknown)} on this machine",
                hint=f"available: {', '.join(by_index)}; or pass --cpu",
            )
    return [by_index[index] for index in wanted if index in by_index]


@dataclass(frozen=True)
class Lane:
    """Where an algorithm runs: on one of ``gpus``, on the CPU, or nowhere (``skip`` says why not)."""

    gpus: tuple[Gpu, ...] = ()
    skip: str | None = None

    @property
    def on_gpu(self) -> bool:
        return bool(self.gpus)


def assign_lane(algorithm: Algorithm, gpus: Sequence[Gpu], cpu: bool) -> Lane:
    """Run on a GPU if the algorithm can use one and a big enough one is selected, else on the CPU or skip."""
    if algorithm.gpu == "none":
        return Lane()
    fitting = tuple(g for g in gpus if not algorithm.min_gpu_memory_gb or g.memory_gb >= algorithm.min_gpu_memory_gb)
    if fitting:
        return Lane(gpus=fitting)
    if algorithm.gpu == "optional":
        return Lane()
    if cpu:
        why = "--cpu was given"
    elif gpus:
        why = f"no selected GPU has the {algorithm.min_gpu_memory_gb:g} GB it needs"
    else:
        why = "no NVIDIA GPU was found on this machine"
    return Lane(skip=f"needs a GPU and {why}")


class GpuPool:
    """Hands out GPUs one algorithm at a time: a GPU algorithm waits until one it can use is free."""

    def __init__(self, gpus: Sequence[Gpu]):
        self._free = list(gpus)
        self._changed = threading.Condition()

    @contextmanager
    def take(self, allowed: Sequence[Gpu]) -> Iterator[Gpu]:
        """Hold one free GPU among ``allowed`` for the duration of the block."""
        with self._changed:
            self._changed.wait_for(lambda: any(g in allowed for g in self._free))
            gpu = next(g for g in self._free if g in allowed)
            self._free.remove(gpu)
        try:
            yield gpu
        finally:
            with self._changed:
                self._free.append(gpu)
                self._changed.notify_all()
