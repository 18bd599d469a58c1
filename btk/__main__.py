"""The ``btk`` program: ``python -m btk`` and the ``btk`` console script run :func:`run`."""

from __future__ import annotations

import gc
import sys


def run() -> None:
    """Run the command line on this process's arguments and exit with its code.

    A process that runs one command and exits need not collect the garbage of its start-up: the cyclic
    garbage collector pauses while the command line's modules load, then freezes what they made (modules,
    classes and functions are never garbage; later collections skip them), and freezes everything again
    before the interpreter exits, whose last collections would walk every object to find none. Together a
    tenth of a ``btk fuse`` (25 ms of 0.25 s, ``bench/fusion.py``). Code that calls :func:`btk.cli.main` keeps
    Python's defaults.
    """
    gc.disable()
    try:
        from btk.cli import main
    finally:
        gc.enable()
    gc.freeze()
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
