"""The command line as a click command, for documentation generators (the CLI reference in ``docs/``)."""

from __future__ import annotations

import typer

from btk.cli import app

#: The whole ``btk`` command tree as click sees it.
command = typer.main.get_command(app)
