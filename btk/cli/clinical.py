"""``btk clinical``: the clinical measures of one segmentation, as a neuroradiology report states them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from btk.cli import common
from btk.console import console

if TYPE_CHECKING:
    from btk.clinical import ClinicalFindings

#: What ``btk clinical`` writes into its output folder.
OUTPUTS = ("clinical.json", "clinical.csv", "clinical.html", "clinical.pdf")


def clinical(
    segmentation: Annotated[Path, typer.Argument(help="A (fused) segmentation, on the BraTS grid for the location.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Folder to write clinical.json, clinical.csv, clinical.html and clinical.pdf into."
        ),
    ],
    labels: Annotated[
        Optional[str],
        typer.Option(
            help="Label convention: brats2021, brats2023, brats2024-post, brats2024-ped, brats2024-men-rt "
            "(default: detected among the glioma ones)."
        ),
    ] = None,
    native: Annotated[
        Optional[Path],
        typer.Option(
            help="The same segmentation in the exam's native space (btk's <study>/native/), for native volumes."
        ),
    ] = None,
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="Print the page to clinical.pdf with headless Chromium.")
    ] = True,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Measure a segmentation like a neuroradiology report: per region its volume, three largest orthogonal
    diameters, laterality and share in each atlas structure; its foci; the RANO bidimensional product of the
    enhancing tumour. For research use, not for diagnosis."""
    common.set_verbose(verbose)
    from btk.clinical import measure_exam, write_clinical_files
    from btk.io import guard_output, load_label_map
    from btk.labels import detect_convention, get_convention
    from btk.report.clinical import write_clinical_page

    guard_output(output, [segmentation, native], force=force, folder=True)
    image, data = load_label_map(segmentation)
    convention = get_convention(labels) if labels else detect_convention(data)
    convention.validate(data, segmentation)
    native_map = None
    if native is not None:
        native_image, native_data = load_label_map(native)
        convention.validate(native_data, native)
        native_map = (native_data, native_image.affine)
    findings = measure_exam(data, image.affine, convention, native_map)
    output.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # btk's own earlier outputs (--force): none may outlive this run
        (output / name).unlink(missing_ok=True)
    page = write_clinical_page(
        findings.to_dict(),
        "btk clinical measures",
        output / "clinical.html",
        pdf=pdf,
    )
    written = write_clinical_files(findings, output)  # clinical.json last: it marks the folder complete
    console.print(_summary_table(findings))
    if not findings.on_brats_grid:
        console.print("Location and laterality skipped: the segmentation is not on the BraTS grid.", highlight=False)
    names = [page.name, *(path.name for path in written.values())]
    if pdf and (output / "clinical.pdf").exists():
        names.append("clinical.pdf")
    console.print(f"Wrote {', '.join(names)} into {output}. {findings.disclaimer}", highlight=False)


def _summary_table(findings: ClinicalFindings) -> Table:
    table = Table(title=f"Clinical measures ({findings.labels})")
    for column in ("region", "volume (ml)", "diameters (mm)", "left %", "foci"):
        table.add_column(column, justify="left" if column == "region" else "right")
    for region in findings.regions:
        table.add_row(
            region.region,
            f"{region.volume_ml:.2f}",
            " x ".join(f"{d:.1f}" for d in region.diameters_mm),
            "-" if region.left_percent is None else f"{region.left_percent:.0f}",
            str(len(region.foci)),
        )
    return table
