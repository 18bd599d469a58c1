"""Start-up time of the ``btk`` command: how long a user waits before anything happens.

    python -m bench.startup [--repeats 7] [--top 12] [--all-commands]

Each command runs in a fresh process (``python -m btk ...``, interpreter start included) ``--repeats`` times and
the median wall time is shown, beside a bare ``python -c pass`` (the interpreter alone). Measured:
``btk --version``, ``btk --help`` and ``btk fuse --help`` (``--all-commands``: every command's ``--help``). Then,
from ``python -X importtime -m btk fuse --help``, the modules whose import took longest (cumulative, own
imports included) and which heavy libraries (numpy, SciPy, nibabel, SimpleITK, docker, torch, ...) were loaded:
none should be, since parsing the command line needs none of them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

from bench import compile_btk

REPO = Path(__file__).resolve().parents[1]
HEAVY = (
    "numpy",
    "scipy",
    "nibabel",
    "SimpleITK",
    "docker",
    "torch",
    "pydicom",
    "ants",
    "dask",
    "matplotlib",
    "pydantic",
)
COMMANDS = (
    "preprocess",
    "convert",
    "native",
    "segment",
    "algorithms",
    "fuse",
    "alarms",
    "run",
    "evaluate",
    "train",
    "unet-predict",
)


def _environment() -> dict[str, str]:
    """The environment of every measured process: this checkout first on the import path."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    return environment


def time_command(arguments: list[str], repeats: int) -> float:
    """Median wall time in seconds of ``python ARGUMENTS`` in fresh processes.

    Args:
        arguments: the interpreter's arguments, e.g. ``["-m", "btk", "--version"]``.
        repeats: how many fresh processes to time.

    Returns:
        The median wall time in seconds.

    Raises:
        RuntimeError: the command failed.
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *arguments], capture_output=True, env=_environment(), check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"python {' '.join(arguments)} failed:\n{done.stderr.decode(errors='replace')}")
    return median(times)


def import_times(arguments: list[str]) -> list[tuple[str, float]]:
    """Every module ``python -X importtime ARGUMENTS`` imported, with its cumulative import time in seconds.

    Args:
        arguments: the interpreter's arguments after ``-X importtime``.

    Returns:
        ``(module, seconds)`` pairs in import order.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *arguments],
        capture_output=True,
        text=True,
        env=_environment(),
        check=False,
    )
    modules = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = (field.strip() for field in line.removeprefix("import time:").split("|", 2))
        modules.append((name.strip(), int(cumulative) / 1e6))
    return modules


def heavy_modules(modules: list[tuple[str, float]]) -> list[str]:
    """The heavy libraries among imported modules (top-level names only)."""
    loaded = {name.split(".")[0] for name, _seconds in modules}
    return [library for library in HEAVY if library in loaded]


def main() -> None:
    """Time the start-up and print the table and the slowest imports."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per command (median shown)")
    parser.add_argument("--top", type=int, default=12, help="how many of the slowest imports to show")
    parser.add_argument("--all-commands", action="store_true", help="also time every command's --help")
    options = parser.parse_args()
    compile_btk()

    cases = [["--version"], ["--help"], ["fuse", "--help"]]
    if options.all_commands:
        cases += [[command, "--help"] for command in COMMANDS if command != "fuse"]
    print(f"median of {options.repeats} fresh processes, wall time")
    print(f"  {'python -c pass (interpreter alone)':<40} {time_command(['-c', 'pass'], options.repeats):6.3f} s")
    for case in cases:
        seconds = time_command(["-m", "btk", *case], options.repeats)
        heavy = heavy_modules(import_times(["-m", "btk", *case]))
        print(f"  {'btk ' + ' '.join(case):<40} {seconds:6.3f} s   heavy libraries: {', '.join(heavy) or 'none'}")

    modules = import_times(["-m", "btk", "fuse", "--help"])
    print("\nslowest imports of `btk fuse --help` (python -X importtime, cumulative):")
    for name, seconds in sorted(modules, key=lambda module: -module[1])[: options.top]:
        print(f"  {seconds * 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
