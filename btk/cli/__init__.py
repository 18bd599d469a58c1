"""The ``btk`` command line: one sub-command per component.

User mistakes (:class:`btk.errors.BtkError`) are printed as one message and exit with code 2; a traceback
is shown only with ``--verbose``.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.text import Text

from btk import __version__
from btk.cli import common
from btk.cli.algorithms import algorithms
from btk.cli.app import app as app_command
from btk.cli.clinical import clinical
from btk.cli.compare import compare
from btk.cli.evaluate import evaluate
from btk.cli.fuse import alarms, fuse
from btk.cli.preprocess import convert, dicom_seg, native, preprocess
from btk.cli.run import run
from btk.cli.segment import segment, synthesise
from btk.cli.train import train, unet_predict
from btk.console import configure_logging, console
from btk.errors import BtkError


def _typer_app() -> typer.Typer:
    """An empty ``btk`` application with the command line's settings."""
    return typer.Typer(
        name="btk",
        help="Brain-tumour MRI from raw DICOM studies to a consensus tumour segmentation.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


app = _typer_app()
# In pipeline order: preprocessing, segmentation, fusion, the whole pipeline, evaluation, clinical measures,
# the U-Net.
for _command in (preprocess, convert, native):
    app.command(no_args_is_help=True)(_command)
app.command("dicom-seg", no_args_is_help=True)(dicom_seg)
for _component in (segment, synthesise):
    app.command(no_args_is_help=True)(_component)
app.add_typer(algorithms)
for _later in (fuse, alarms, run, evaluate, clinical, compare, train):
    app.command(no_args_is_help=True)(_later)
app.command("unet-predict", no_args_is_help=True)(unet_predict)
app.command("app")(app_command)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"btk {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    verbose: common.VerboseOption = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Brain-tumour MRI from raw DICOM studies to a consensus tumour segmentation."""
    common.set_verbose(verbose)


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    # numpy's BLAS (OpenBLAS) starts a thread per core and keeps them spinning after each call; btk's array work
    # has no large matrix products, so a command runs BLAS on one thread unless the user chose otherwise
    # (``btk fuse`` of five candidates: 0.30 -> 0.21 CPU-s). Read when numpy loads: too late once it has.
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    configure_logging(verbose=False)
    try:
        _app_for(sys.argv[1:] if argv is None else argv)(args=argv, prog_name="btk")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BtkError as error:
        if common.is_verbose():
            console.print_exception()
        _print_problem("Error:", str(error))
        return 2
    except KeyboardInterrupt:
        _print_problem("Interrupted.")
        return 130
    except Exception as error:  # a bug, not a user mistake: say so and how to get details
        if common.is_verbose():
            console.print_exception()
        else:
            _print_problem(
                "Internal error:",
                f"{error.__class__.__name__}: {error}\n"
                "  -> run again with --verbose for the traceback and report it to the btk developers",
            )
        return 70
    return 0


def _app_for(arguments: list[str]) -> typer.Typer:
    """The application to run ``arguments``: the root with only the command they name, or the whole ``app``.

    Typer builds the click command of every registered command on each run (25 ms for btk's, a tenth of a
    ``btk fuse``); the command named is the only one a run needs. The root's help, a mistyped command (whose
    error suggests another) and no command get the whole application.
    """
    named = next((argument for argument in arguments if not argument.startswith("-")), None)
    if named is None or any(argument in ("-h", "--help") for argument in arguments[: arguments.index(named)]):
        return app  # btk --help fuse: the root's help, listing every command
    commands = [info for info in app.registered_commands if _command_name(info) == named]
    groups = [info for info in app.registered_groups if info.typer_instance and info.typer_instance.info.name == named]
    if not commands and not groups:
        return app
    single = _typer_app()
    single.registered_callback = app.registered_callback
    single.registered_commands, single.registered_groups = commands, groups
    return single


def _command_name(info: typer.models.CommandInfo) -> str | None:
    """The name typer gives a registered command: its own, else its function's with dashes."""
    if info.name:
        return info.name
    return info.callback.__name__.lower().replace("_", "-") if info.callback else None


def _print_problem(label: str, message: str = "") -> None:
    """Print ``label`` in bold red, then ``message`` literally.

    File names like ``[bold]x`` are not markup, and control characters (a terminal escape sequence in a file
    name, say) are shown escaped, as in ``\\x1b``, never sent to the terminal.
    """
    visible = "".join(char if char == "\n" or char.isprintable() else repr(char)[1:-1] for char in message)
    console.print(Text.assemble((label, "bold red"), f" {visible}" if visible else ""), highlight=False, soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
