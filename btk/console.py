"""The shared rich console, logging set-up and progress bars.

Everything shown goes through the de-identification guard (:data:`btk.deid.guard`): the console redacts
every string and text it renders, and btk's logger redacts every record before any handler sees it.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from btk.deid import guard


class GuardedConsole(Console):
    """A rich console that redacts the identifiers of :data:`btk.deid.guard` from all it renders.

    Strings are redacted before markup is parsed (:meth:`render_str`, which also renders table cells and
    log messages) and :class:`~rich.text.Text` objects before they are rendered (:meth:`render`), so a
    wrapped table cell cannot split an identifier past the check.
    """

    def render_str(self, text: str, **kwargs) -> Text:
        return super().render_str(guard.redact(text), **kwargs)

    def render(self, renderable, options=None):
        if isinstance(renderable, Text) and guard.contains(renderable.plain):
            renderable = Text(
                guard.redact(renderable.plain),
                style=renderable.style,
                justify=renderable.justify,
                overflow=renderable.overflow,
                no_wrap=renderable.no_wrap,
                end=renderable.end,
            )
        yield from super().render(renderable, options)


class RedactingFilter(logging.Filter):
    """Replaces a log record's message by its redacted text (so file handlers write no identifier either)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if guard.contains(message):
            record.msg, record.args = guard.redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = guard.redact(logging.Formatter().formatException(record.exc_info))
        return True


#: Messages, tables and progress go to standard error so that standard output stays clean for data. Strings are
#: shown literally (no rich markup): file names such as ``case[1].nii.gz`` or ``[/]x`` are user data, not styles.
console = GuardedConsole(stderr=True, markup=False)

logger = logging.getLogger("btk")
logger.addFilter(RedactingFilter())


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
        TextColumn("{task.description}", markup=False),  # descriptions hold exam and file names: literal
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
