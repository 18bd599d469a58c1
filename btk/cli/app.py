"""``btk app``: the local web application (the pipeline of ``btk run`` with a 3-D viewer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from btk.cli import common
from btk.console import console


def app(
    root: Annotated[
        Optional[list[Path]],
        typer.Option(help="A folder whose exams the app may open (repeat for several; default: the current folder)."),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output folder: the studies shown, and where new runs write.")
    ] = Path("btk-output"),
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but 127.0.0.1 exposes the app (and patient data).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: a free one).", parser=common.NonNegativeInt)] = 0,
    max_upload_gb: Annotated[
        float, typer.Option(help="The largest upload (one exam or folder) in GiB.", parser=common.PositiveFloat)
    ] = 4.0,
    open_browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open the page in a browser.")] = True,
    verbose: common.VerboseOption = False,
) -> None:
    """Start the local web app: choose or upload exams, run the pipeline, look at the results in 3-D.

    Listens on 127.0.0.1 only, on a free port, and prints a URL with a random token that every request
    needs. Stop it with Ctrl-C: a running batch is cancelled, its finished stages are kept.
    """
    common.set_verbose(verbose)
    from btk.app import App

    server = App(output, roots=root or (), host=host, port=port, upload_limit=int(max_upload_gb * 1024**3))
    if server.exposed:
        console.print(
            f"Warning: listening on {host}, reachable from the network; anyone with the token can see the "
            "patient data in the allowed folders. Use --host 127.0.0.1 unless you need this.",
            style="bold red",
            highlight=False,
        )
    console.print(f"btk app: open {server.url}\n  (Ctrl-C stops it)", highlight=False)
    server.serve_forever(open_browser=open_browser)
    console.print("btk app stopped.", highlight=False)
