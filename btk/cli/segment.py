"""``btk segment``: run containerised segmentation algorithms on one preprocessed exam."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from btk.cli import common
from btk.console import console
from btk.errors import InputError

if TYPE_CHECKING:
    from btk.segment import SegmentationReport

RegistryOption = Annotated[
    Optional[list[Path]],
    typer.Option("--registry", help="Extra registry file(s) on top of the shipped one (also: $BTK_ALGORITHMS)."),
]
_STYLE = {"ok": "green", "failed": "bold red", "timeout": "bold red", "skipped": "yellow"}


def segment(
    exam: Annotated[
        Path,
        typer.Argument(help="Preprocessed exam folder, or any folder with the modalities the algorithms read."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for <algorithm>.nii.gz and logs/.")],
    algorithm: Annotated[
        Optional[list[str]], typer.Option("--algorithm", "-a", help="Algorithm to run (repeat for several).")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Run every algorithm of the track that btk can run (see --track).")
    ] = False,
    track: Annotated[
        Optional[str],
        typer.Option(
            help="Track of --all, or of the default algorithm: glioma, glioma-post, ssa, pediatric, meningioma, "
            "meningioma-rt, metastases, goat (default: adult glioma)."
        ),
    ] = None,
    registry: RegistryOption = None,
    gpu: Annotated[Optional[str], typer.Option(help="GPU index(es) to use, e.g. '0' or '0,1' (default: all).")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Use no GPU; GPU-only algorithms are skipped.")] = False,
    pull: Annotated[bool, typer.Option("--pull/--no-pull", help="Pull missing images (default) or fail.")] = True,
    labels: Annotated[
        Optional[str],
        typer.Option(
            help="Label convention of the written segmentations (default, or 'auto': the one that holds the "
            "algorithms' own: brats2023 for adult glioma, brats2024-post with post-treatment entries, ...)."
        ),
    ] = None,
    timeout: Annotated[
        Optional[float], typer.Option(help="Seconds per algorithm (default: the entry's).", parser=common.PositiveFloat)
    ] = None,
    memory: Annotated[Optional[str], typer.Option(help="Memory limit per container, e.g. '16g'.")] = None,
    cpus: Annotated[
        Optional[float], typer.Option(help="CPU limit per container, e.g. 4.", parser=common.PositiveFloat)
    ] = None,
    weights: Annotated[
        Optional[list[str]],
        typer.Option(
            "--weights",
            metavar="NAME=DIR",
            help="Bind folder DIR read-only where algorithm NAME reads its weights (repeatable).",
        ),
    ] = None,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Segment one exam with containerised BraTS algorithms (Docker).

    Without -a or --all, the top-ranked algorithm of the newest challenge year of --track runs (adult glioma
    unless --track names another; with --cpu, the best one that runs without a GPU).

    The exam must lie in the atlas space the algorithms expect (brats-mni152 for adult glioma 2024-2025,
    brats-sri24 otherwise; see `btk algorithms show`); with --all, those of another space are left out.

    Each algorithm runs without network, with read-only inputs, as you; its result is checked, put on the
    exam's grid, converted to --labels and written to OUTPUT/<algorithm>.nii.gz. One failure does not stop
    the others; the exit code is 1 if any algorithm failed or was skipped.
    """
    common.set_verbose(verbose)
    from btk.segment import Segmentor  # the Docker SDK and pydantic are only needed here

    if all_ and algorithm:
        raise InputError("give either --algorithm or --all, not both")
    if track is not None and algorithm:
        raise InputError(
            "--track chooses the algorithms of --all, or the default one", hint="drop --track when naming algorithms"
        )
    if gpu is not None and cpu:
        raise InputError("give either --gpu or --cpu, not both")
    segmentor = Segmentor(
        registry,
        gpus=parse_gpus(gpu),
        cpu=cpu,
        pull=pull,
        labels=None if labels == "auto" else labels,
        timeout=timeout,
        memory=memory,
        cpus=cpus,
        force=force,
    )
    report = segmentor.run(
        exam,
        algorithms=None if all_ else (algorithm or [segmentor.default_algorithm(track)]),
        output=output,
        weights=parse_pairs(weights, "--weights", "NAME=DIR"),
        track=track,
    )
    console.print(summary_table(report))
    if not report.ok:
        raise typer.Exit(1)


def parse_gpus(text: str | None) -> list[str] | None:
    """``'0,1'`` -> ``['0', '1']``."""
    if text is None:
        return None
    indices = [item.strip() for item in text.split(",") if item.strip()]
    if not indices or not all(item.isdigit() for item in indices):
        raise InputError(f"cannot read --gpu {text!r}", hint="give GPU indices like '0' or '0,1'")
    return indices


def parse_pairs(items: list[str] | None, option: str, form: str) -> dict[str, str]:
    """``['a=1', 'b=2']`` -> ``{'a': '1', 'b': '2'}``; a clear error for an item without ``=``."""
    pairs = {}
    for item in items or []:
        key, separator, value = item.partition("=")
        if not separator or not key.strip() or not value.strip():
            raise InputError(f"cannot read {option} {item!r}", hint=f"write {option} {form}")
        pairs[key.strip()] = value.strip()
    return pairs


def summary_table(report: SegmentationReport) -> Table:
    """Algorithm, status, time and message of every run."""
    table = Table(title=f"Segmentations of {report.exam.name} -> {report.output}")
    table.add_column("algorithm", no_wrap=True)
    table.add_column("status")
    table.add_column("device")
    table.add_column("time", justify="right")
    table.add_column("message")
    for run in report.runs:
        table.add_row(
            run.algorithm, Text(run.status, style=_STYLE[run.status]), run.device, f"{run.seconds:.1f} s", run.message
        )
    return table


def synthesise(
    exam: Annotated[
        Path,
        typer.Argument(help="Exam folder in an atlas space (BraTS SRI24 or MNI152) with three of the four modalities."),
    ],
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help="Synthesis algorithm (btk algorithms list --track missing-mri).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the completed exam.")],
    registry: RegistryOption = None,
    gpu: Annotated[Optional[str], typer.Option(help="GPU index(es) to use, e.g. '0' (default: all).")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Use no GPU (only for images that run without one).")] = False,
    pull: Annotated[bool, typer.Option("--pull/--no-pull", help="Pull a missing image (default) or fail.")] = True,
    timeout: Annotated[
        Optional[float], typer.Option(help="Seconds (default: the entry's).", parser=common.PositiveFloat)
    ] = None,
    weights: Annotated[
        Optional[Path], typer.Option(help="Folder bound read-only where the image reads its weights.")
    ] = None,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Fill the one modality an exam lacks with a synthesis (BraSyn) image, into a complete exam folder.

    OUTPUT gets the three real modalities, the synthetic one as <exam>-synthetic-<suffix>.nii.gz and
    synthesis.json (which modality is synthetic, and by what); btk segment and btk run take it as an exam.
    """
    common.set_verbose(verbose)
    from btk.segment import Segmentor

    if gpu is not None and cpu:
        raise InputError("give either --gpu or --cpu, not both")
    segmentor = Segmentor(registry, gpus=parse_gpus(gpu), cpu=cpu, pull=pull, timeout=timeout, force=force)
    report = segmentor.synthesise(exam, algorithm, output, weights)
    console.print(
        f"Wrote {report.folder}: {report.label} ({report.image.name}) by {report.algorithm}, {report.seconds:.0f} s",
        highlight=False,
    )
