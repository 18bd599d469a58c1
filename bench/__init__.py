"""btk's benchmarks, run from the repository root: ``python -m bench.<name>`` (see docs/benchmarks.md)."""

from __future__ import annotations

import compileall
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def compile_btk() -> None:
    """Byte-compile btk's modules, as ``pip install`` of a wheel does, before timing fresh processes.

    An editable install compiles its sources on first import and keeps the result in ``__pycache__``, unless
    the environment forbids writing bytecode (``PYTHONDONTWRITEBYTECODE``, set on btk's CI machines): then
    every run compiles them again, about 25 ms of a ``btk fuse`` that an installed btk, like the reference
    tools installed by pip, never spends.
    """
    compileall.compile_dir(REPO / "btk", quiet=1)
