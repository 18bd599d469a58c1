"""``btk algorithms list|show|pull|build``: the algorithm registry and its images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from btk.cli import common
from btk.cli.segment import RegistryOption, parse_pairs
from btk.console import console
from btk.errors import InputError

algorithms = typer.Typer(
    name="algorithms",
    help="The segmentation algorithms btk can run: list, show, pull, build.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@algorithms.command("list")
def list_(
    registry: RegistryOption = None,
    track: Annotated[
        Optional[str], typer.Option(help="Only this track's algorithms (glioma, metastases, ...).")
    ] = None,
    verbose: common.VerboseOption = False,
) -> None:
    """List the registered algorithms."""
    common.set_verbose(verbose)
    from btk.segment.registry import check_track, load_registry

    entries = load_registry(registry).algorithms
    if track is not None:
        check_track(track)
        entries = [entry for entry in entries if entry.track_name == track]
    table = Table(title="Registered algorithms" + (f" of the {track} track" if track else ""))
    for column in ("name", "track", "year", "rank", "atlas", "contract", "GPU", "labels", "image"):
        table.add_column(column, no_wrap=column == "name")
    for entry in entries:
        table.add_row(
            entry.name,
            entry.track or "",
            str(entry.year),
            str(entry.rank or ""),
            entry.atlas_space,
            entry.contract.kind,
            entry.gpu,
            entry.labels or f"({entry.output})",
            entry.reference,
        )
    console.print(table)


@algorithms.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Algorithm name (see `btk algorithms list`).")],
    registry: RegistryOption = None,
    verbose: common.VerboseOption = False,
) -> None:
    """Show everything the registry says about one algorithm, and the citation to give."""
    common.set_verbose(verbose)
    from btk.segment.registry import load_registry

    entry = load_registry(registry).get(name)
    table = Table(title=entry.name, show_header=False)
    table.add_column("field", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    for field, value in entry.model_dump(exclude_none=True).items():
        if field in ("contract", "build", "additional_files"):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif field == "modalities":
            value = ", ".join(value)
        elif field == "command":
            value = " ".join(value)
        table.add_row(field, str(value))
    if entry.atlas is None:
        table.add_row("atlas", f"{entry.atlas_space} (its track's space)")
    table.add_row("reference", entry.reference)
    if entry.additional_files is not None:
        from btk.segment.additional_files import cached_folder

        cached = cached_folder(entry.additional_files)
        table.add_row("additional files", str(cached) if cached else f"not cached: btk algorithms pull {entry.name}")
    console.print(table)


@algorithms.command("pull")
def pull(
    names: Annotated[Optional[list[str]], typer.Argument(help="Algorithms whose images to pull.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Pull every registered algorithm's image.")] = False,
    registry: RegistryOption = None,
    verbose: common.VerboseOption = False,
) -> None:
    """Pull algorithm images and fetch their additional files (weights in a Zenodo record), with progress
    bars; what is present already is left alone.

    Additional files are checked against their checksums and cached (in $BTK_CACHE_DIR/additional-files,
    default ~/.cache/btk); runs mount them read-only and never download.
    """
    common.set_verbose(verbose)
    from btk.segment.additional_files import fetch
    from btk.segment.engine import Engine
    from btk.segment.registry import load_registry

    loaded = load_registry(registry)
    if all_ == bool(names):
        raise InputError("name the algorithms to pull, or pass --all")
    entries = loaded.algorithms if all_ else [loaded.get(name) for name in names or []]
    engine = Engine.connect()
    for entry in entries:
        if engine.has_image(entry.reference):
            console.print(f"{entry.name}: {entry.reference} is present", highlight=False)
        else:
            engine.pull(entry.reference)
            console.print(f"{entry.name}: pulled {entry.reference}", highlight=False)
        if entry.additional_files is not None:
            console.print(f"{entry.name}: additional files in {fetch(entry)}", highlight=False)


@algorithms.command("build")
def build(
    name: Annotated[str, typer.Argument(help="Algorithm whose image to build (its entry has a build section).")],
    base_image: Annotated[
        Optional[str], typer.Option("--base-image", help="Image to build FROM (the BASE_IMAGE build argument).")
    ] = None,
    build_arg: Annotated[
        Optional[list[str]], typer.Option("--build-arg", metavar="K=V", help="Build argument (repeatable).")
    ] = None,
    source: Annotated[
        Optional[Path],
        typer.Option(help="Folder the entry's Dockerfile and context are relative to (default: btk's source tree)."),
    ] = None,
    registry: RegistryOption = None,
    verbose: common.VerboseOption = False,
) -> None:
    """Build an algorithm's image locally from its Dockerfile and tag it IMAGE:TAG (e.g. btk-unet)."""
    common.set_verbose(verbose)
    from btk.segment.build import build_image
    from btk.segment.engine import Engine
    from btk.segment.registry import load_registry

    entry = load_registry(registry).get(name)
    args = parse_pairs(build_arg, "--build-arg", "K=V")
    reference = build_image(Engine.connect(), entry, base_image=base_image, args=args, source=source)
    console.print(f"{entry.name}: built {reference}", highlight=False)
