"""``btk compare``: one patient's exams over time (btk output folders of the same patient)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from btk.cli import common
from btk.console import console
from btk.errors import InputError


def compare(
    exams: Annotated[
        list[Path],
        typer.Argument(help="The patient's exams, baseline first: btk run's study folders (OUT/STUDY)."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder to write compare.json, compare.csv and compare.html into.")
    ],
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Compare the exams of one patient: per region the volume change (ml, %), new and vanished foci, the
    change of the RANO sum of products and the volumetric RANO response category, with a volume-over-time plot
    and every exam on the same slices. For research use, not for diagnosis."""
    common.set_verbose(verbose)
    import os

    from btk.io import guard_output
    from btk.pipeline.followup import write_comparison

    if len(exams) < 2:
        raise InputError(
            "btk compare needs a baseline and at least one follow-up", hint="name two or more study folders"
        )
    guard_output(output, exams, force=force, folder=True)
    reports = {
        folder.name: os.path.relpath(folder.resolve() / "report" / "report.html", output.resolve()) for folder in exams
    }
    comparison, _ = write_comparison(exams, output, reports)
    for follow in comparison["follow_ups"]:
        console.print(f"{follow['exam']}: {follow['response']} ({follow['reason']})", highlight=False)
    console.print(
        f"Wrote compare.html, compare.csv and compare.json into {output}. For research use only.", highlight=False
    )
