"""``btk run``: the whole pipeline for one exam or a folder of studies, locally or on a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from btk.cli import common
from btk.console import console
from btk.errors import InputError

if TYPE_CHECKING:
    from btk.pipeline import BatchResult


def run(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="One exam folder, or a folder of DICOM studies and/or exam folders.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (one sub-folder per study).")],
    candidates: Annotated[
        Optional[Path],
        typer.Option(
            help="Segmentations made elsewhere, in the studies' atlas space: NIfTI files (one exam) or one "
            "sub-folder per study.",
        ),
    ] = None,
    algorithm: Annotated[
        Optional[list[str]],
        typer.Option(
            "--algorithm",
            "-a",
            help="Segmentation algorithm to run (Docker; repeat for several; see `btk algorithms`).",
        ),
    ] = None,
    registry: Annotated[
        Optional[list[Path]],
        typer.Option(help="Extra algorithm registry file (JSON, as for `btk segment --registry`); repeat for several."),
    ] = None,
    method: Annotated[str, typer.Option("--method", "-m", help="Fusion method: mav, simple, staple.")] = "simple",
    regions: Annotated[
        bool, typer.Option("--regions", help="Fuse the regions (WT, TC, ET for gliomas) instead of the labels.")
    ] = False,
    take: Annotated[
        Optional[list[str]],
        typer.Option(
            help="REGION=SOURCE: take a region from one candidate (algorithm or file name) or fuse it from "
            "some ('TC=a+b'), as btk fuse --take; repeat for several regions."
        ),
    ] = None,
    labels: Annotated[
        str,
        typer.Option(
            help="Label convention of the outputs: brats2023, brats2021, brats2024-post, brats2024-ped, "
            "brats2024-men-rt; 'auto': the one that holds the algorithms' labels (brats2023 for candidates)."
        ),
    ] = "auto",
    synthesise_missing: Annotated[
        Optional[str],
        typer.Option(
            "--synthesise-missing",
            metavar="ALGORITHM",
            help="Synthesise the one modality a study on an atlas grid lacks with this missing-mri algorithm "
            "before segmenting (flagged as synthetic everywhere).",
        ),
    ] = None,
    track: Annotated[
        Optional[str],
        typer.Option(
            help="Without -a or --candidates: run the top-ranked algorithm of the newest year of this track "
            "(glioma, glioma-post, ssa, pediatric, meningioma, meningioma-rt, metastases, goat)."
        ),
    ] = None,
    reference: Annotated[
        Optional[Path],
        typer.Option(
            help="Reference segmentation to evaluate against (a file, or a folder of files named like the studies).",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="Preprocessing device: auto, cpu, cuda.")] = "auto",
    fast: common.FastOption = False,
    atlas: Annotated[
        Optional[str],
        typer.Option(help=common.ATLAS_HELP + " Default: the space the algorithms expect (they must agree)."),
    ] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Run segmentation containers without a GPU.")] = False,
    workers: Annotated[
        Optional[int],
        typer.Option(
            help="Local worker processes (default: as many as studies, cores and memory allow).",
            parser=common.PositiveInt,
        ),
    ] = None,
    scheduler: Annotated[
        Optional[str], typer.Option(help="Run on a Dask cluster: the scheduler's address, tcp://HOST:PORT.")
    ] = None,
    longitudinal: Annotated[
        bool,
        typer.Option(
            "--longitudinal",
            help="INPUT is one patient's folder whose exams are visits: once all are done, compare them "
            "(OUTPUT/compare/, as btk compare). DICOM visits are ordered by StudyDate, NIfTI ones by --visits or "
            "by the numbers in their folder names.",
        ),
    ] = False,
    visits: Annotated[
        Optional[str],
        typer.Option(
            metavar="NAME,NAME,...",
            help="The NIfTI visits' folder names in order, baseline first (implies --longitudinal).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Redo every stage, even finished ones.")] = False,
    pdf: Annotated[
        bool,
        typer.Option("--pdf/--no-pdf", help="Print each exam's report to report.pdf with headless Chromium."),
    ] = True,
    verbose: common.VerboseOption = False,
) -> None:
    """Preprocess, segment, fuse and report: one exam or a whole folder of studies.

    Resumable: finished stages are skipped when run again (--force redoes them). A failing study is
    recorded with its reason and the others go on; the exit code is 1 if any study failed. Writes
    OUTPUT/manifest.csv, OUTPUT/summary.csv and OUTPUT/summary.html, and per study a report
    (OUTPUT/STUDY/report/report.html). With --longitudinal, the patient's visits are then compared
    (OUTPUT/compare/compare.html); a failed visit refuses the comparison (exit code 1).
    """
    common.set_verbose(verbose)
    from btk.pipeline import Pipeline

    if track is not None and (algorithm or candidates is not None):
        raise InputError(
            "--track chooses the algorithm when none is named", hint="drop --track, or drop -a and --candidates"
        )
    if track is not None:
        from btk.segment import Segmentor

        algorithm = [Segmentor(list(registry or []) or None, cpu=cpu).default_algorithm(track)]
    pipeline = Pipeline(
        output,
        algorithms=algorithm or (),
        candidates=candidates,
        reference=reference,
        workers=workers,
        scheduler=scheduler,
        longitudinal=longitudinal,
        visits=_visit_names(visits),
        method=method,
        regions=regions,
        take={region: tuple(names) for region, names in common.parse_take(take or []).items()},
        labels=labels,
        synthesise=synthesise_missing,
        device=device,
        fast=fast,
        atlas=atlas,
        cpu=cpu,
        registry=tuple(path.resolve() for path in registry or ()),
        force=force,
        pdf=pdf,
    )
    batch = pipeline.run(input_path)
    console.print(summary_table(batch))
    console.print(f"Summary: {batch.output / 'summary.html'} (and summary.csv)", highlight=False)
    if len(batch.results) == 1 and batch.ok:
        console.print(f"Report: {batch.output / batch.results[0].study / 'report' / 'report.html'}", highlight=False)
    followup = batch.followup
    if followup is not None and followup.folder is not None:
        for visit, response in followup.responses.items():
            console.print(f"{visit}: {response}", highlight=False)
        console.print(
            f"Follow-up comparison ({followup.status}): {followup.folder / 'compare.html'}. For research use only.",
            highlight=False,
        )
    elif followup is not None:
        console.print(f"Follow-up comparison refused: {followup.reason}", style="bold red", highlight=False)
    if not batch.ok:
        raise typer.Exit(1)


def _visit_names(visits: str | None) -> list[str] | None:
    """``--visits a,b,c`` as names; an empty name is a usage error."""
    if visits is None:
        return None
    names = [name.strip() for name in visits.split(",")]
    if len(names) < 2 or not all(names):
        raise InputError(
            f"--visits takes two or more visit names separated by commas, got {visits!r}",
            hint="e.g. --visits baseline,3-months,6-months",
        )
    return names


def summary_table(batch: BatchResult) -> Table:
    """One row per study: status, time and, for failures, the stage and reason."""
    table = Table(
        title=f"btk run: {len(batch.results) - len(batch.failed)} done, {len(batch.failed)} failed "
        f"({batch.seconds:.0f} s)"
    )
    table.add_column("study", no_wrap=True)
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("stages run / failure")
    for result in batch.results:
        ran = ", ".join(stage for stage, how in result.stages.items() if how == "ran") or "none (all done before)"
        table.add_row(
            result.study,
            result.status,
            f"{result.seconds:.0f}",
            ran if result.status == "ok" else f"{result.stage}: {result.reason}",
            style=None if result.status == "ok" else "bold red",
        )
    return table
