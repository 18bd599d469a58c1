"""Options and state shared by the sub-commands."""

from __future__ import annotations

from typing import Annotated

import typer

from btk.console import configure_logging

VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Say more about what is happening; show tracebacks on errors.")
]
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
FastOption = Annotated[bool, typer.Option(
    "--fast/--accurate",
    help="HD-BET brain extraction: fast (1 fold, no mirroring; about 1 min on CPU) or accurate "
         "(5 folds x 8 mirrorings; tens of minutes on CPU, minutes on a GPU).",
)]

_state = {"verbose": False}


def set_verbose(verbose: bool) -> None:
    """Turn verbose logging on (it stays on once any level of the command line asked for it)."""
    if verbose and not _state["verbose"]:
        _state["verbose"] = True
        configure_logging(verbose=True)


def is_verbose() -> bool:
    """Whether ``--verbose`` was given."""
    return _state["verbose"]
