"""The shared rich console, logging set-up and progress bars."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

#: Messages, tables and progress go to standard error so that standard output stays clean for data.
console = Console(stderr=True)

logger = logging.getLogger("btk")


def configure_logging(verbose: bool = False) -> None:
    """Send btk's log records to the console: INFO by default, DEBUG when ``verbose``."""
    logger.handlers.clear()
    handler = RichHandler(console=console, show_path=verbose, show_time=verbose, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def progress() -> Progress:
    """A progress display for long work: spinner, description, bar, count and elapsed time."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
