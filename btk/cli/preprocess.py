"""``btk preprocess``, ``btk convert``, ``btk native`` and ``btk dicom-seg``: raw exams to BraTS-ready images,
and back (to native space, and to DICOM for the PACS)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from btk.cli import common
from btk.console import console

ModalityOption = Annotated[Optional[Path], typer.Option(help="Use this NIfTI file, overriding recognition.")]


def preprocess(
    exam: Annotated[Path, typer.Argument(help="Exam folder: DICOM files (any nesting) or NIfTI files.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Exam output folder (written atomically).")],
    device: Annotated[str, typer.Option(help="Where HD-BET runs: cpu, cuda or auto.")] = "auto",
    fast: common.FastOption = False,
    registration: Annotated[str, typer.Option(help="T1-to-atlas transform: rigid (BraTS) or affine.")] = "rigid",
    mode: Annotated[
        Optional[str],
        typer.Option(
            help="skullstrip (BraTS) or deface (Quickshear: remove the face, keep the skull); default: deface in "
            "the native-t1c space, skullstrip otherwise."
        ),
    ] = None,
    naming: Annotated[str, typer.Option(help="File names: 2023 (<id>-t1n.nii.gz) or 2020 (<id>_t1.nii.gz).")] = "2023",
    atlas: Annotated[str, typer.Option(help=common.ATLAS_HELP)] = "brats-sri24",
    case_id: Annotated[
        Optional[str], typer.Option(help="Identifier in the file names (default: OUTPUT's name).")
    ] = None,
    t1: ModalityOption = None,
    t1c: ModalityOption = None,
    t2: ModalityOption = None,
    flair: ModalityOption = None,
    memory_budget_gb: Annotated[
        Optional[float],
        typer.Option(
            help="Use HD-BET fast mode if accurate mode would need more memory (GiB).", parser=common.PositiveFloat
        ),
    ] = None,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Preprocess one exam the BraTS way: co-registration, atlas registration, HD-BET brain masks, QC overviews.

    The brats/ images lie in the --atlas space (recorded in provenance.json); `btk native` maps segmentations
    of them back to the native images.
    """
    common.set_verbose(verbose)
    from btk.preprocess import Preprocessor

    preprocessor = Preprocessor(
        device=device,
        fast=fast,
        registration=registration,
        mode=mode,
        naming=naming,
        memory_budget_gb=memory_budget_gb,
        atlas=atlas,
    )
    result = preprocessor.run(
        exam, output, force=force, case_id=case_id, modalities={"t1": t1, "t1c": t1c, "t2": t2, "flair": flair}
    )
    table = Table("role", "file", title=f"Exam {result.case_id} ({result.space.name} space)")
    for role, relative in sorted(result.provenance["outputs"].items()):
        if role.startswith(("brats/", "transform/")):
            table.add_row(role, relative)
    console.print(table)
    console.print(f"All outputs are listed in {result.folder / 'provenance.json'}", highlight=False)


def convert(
    dicom_dir: Annotated[Path, typer.Argument(help="Folder of DICOM files (any nesting, several series).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="New folder for the anonymised NIfTI files.")],
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Convert a DICOM study to anonymised NIfTI (dcm2niix) and show which series is which modality."""
    common.set_verbose(verbose)
    from btk.preprocess.convert import convert_to_folder

    result = convert_to_folder(dicom_dir, output, force=force)
    table = Table("series", "description", "modality", "file", title="DICOM series")
    chosen = {path: modality for modality, path in result.modalities.items()}
    for series in result.series:
        table.add_row(str(series.series_number), series.text, chosen.get(series.path, "-"), series.path.name)
    console.print(table)
    for note in result.notes:
        console.print(note, style="yellow", highlight=False)


def native(
    segmentation: Annotated[
        Path, typer.Argument(help="Label map on the exam's atlas grid (that of its brats/ images and mask).")
    ],
    exam_output: Annotated[Path, typer.Argument(help="The exam folder written by btk preprocess.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", callback=common.nifti_output, help="Native-space label map to write (.nii.gz or .nii)."
        ),
    ],
    modality: Annotated[
        Optional[str],
        typer.Option(help="Whose native grid: t1, t1c, t2 or flair (default: t1; the T1c in the native-t1c space)."),
    ] = None,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Map a segmentation of an exam's brats/ images (any space) back onto its native image."""
    common.set_verbose(verbose)
    from btk.preprocess import to_native

    written = to_native(segmentation, exam_output, output, modality=modality, force=force)
    console.print(f"Wrote {written}", highlight=False)


def dicom_seg(
    label_map: Annotated[Path, typer.Argument(help="Native-space label map on the source series' grid (NIfTI).")],
    source_series: Annotated[Path, typer.Argument(help="Folder of the source DICOM series (only its files).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="DICOM SEG file to write (e.g. seg.dcm).")],
    labels: Annotated[str, typer.Option(help="Label convention of the map: one segment per label.")] = "brats2023",
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Write a native-space label map as a DICOM SEG of its source series, for the PACS."""
    common.set_verbose(verbose)
    from btk.labels import get_convention
    from btk.preprocess.dicom_seg import write_dicom_seg
    from btk.report.colours import label_colours

    convention = get_convention(labels)
    result = write_dicom_seg(label_map, source_series, output, convention, label_colours(convention), force=force)
    table = Table("segment", "label", "name", title=f"DICOM SEG ({result.source_images} source images referenced)")
    for number, (value, name) in result.segments.items():
        table.add_row(str(number), str(value), name)
    console.print(table)
    console.print(f"Wrote {result.path}", highlight=False)
