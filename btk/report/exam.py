"""The report of one exam: figures, volumes, agreement, provenance and citations, as HTML.

:func:`write_exam_report` writes the figures, the colour tables, ``report.json`` (the :class:`ExamReportData`:
every fact the page shows) and ``report.html``. After a batch, the page is rendered again with the cohort's
ensemble alarms (:mod:`btk.report.cohort`), which need all studies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from btk.io import load_label_map, load_nifti
from btk.labels import get_convention
from btk.modalities import DISPLAY_NAMES, canonical
from btk.report.clinical import disclaimer, render_clinical
from btk.report.colours import label_colours, write_itksnap_labels, write_slicer_colour_table
from btk.report.data import ExamReportData, FollowUpRecord, RaisedAlarm, ReportFiles
from btk.report.figures import overlay_figure
from btk.report.html import Raw, link, page, table, write_page
from btk.report.pdf import find_browser, print_pdf

REPORT_DATA = "report.json"
REPORT_PAGE = "report.html"
REPORT_PDF = "report.pdf"
CLINICAL_FILES = ("clinical.csv", "clinical.json")


@dataclass(frozen=True)
class ReportImages:
    """The images the figures show, all on the BraTS grid.

    Args:
        segmentation: The fused segmentation.
        t1c: The contrast-enhanced T1 image.
        flair: The FLAIR image (None: the exam has none, as in meningioma radiotherapy's T1c-only data).
    """

    segmentation: Path
    t1c: Path
    flair: Path | None = None


def region_volumes_ml(segmentation: np.ndarray, zooms: tuple[float, ...], labels: str) -> dict[str, float]:
    """Volume of each region of the convention (WT, TC, ET for gliomas) in millilitres.

    Args:
        segmentation: A label map.
        zooms: Its voxel size in mm (the first three are used).
        labels: Its label convention's name.

    Returns:
        Region -> volume in ml, rounded to 0.01 ml.
    """
    convention = get_convention(labels)
    voxel_ml = float(np.prod(zooms[:3])) / 1000.0
    return {
        region: round(int(np.count_nonzero(convention.region_mask(segmentation, region))) * voxel_ml, 2)
        for region in convention.region_names
    }


def write_exam_report(data: ExamReportData, images: ReportImages, folder: Path) -> dict[str, Path]:
    """Write the figures, colour tables, ``report.json`` and ``report.html`` of one exam into ``folder``.

    Args:
        data: Every fact the page shows.
        images: The segmentation and the images it is shown on.
        folder: The report's folder (it exists).

    Returns:
        The files that stay as written: ``figure_t1c``, ``figure_flair``, ``itksnap_labels``, ``slicer_colours``
        and ``data`` -> file (not the page, which is rendered again with the cohort's alarms).
    """
    convention = get_convention(data.labels)
    segmentation, _ = load_label_map(images.segmentation)
    outputs: dict[str, Path] = {}
    for modality, image in (("t1c", images.t1c), ("flair", images.flair)):
        if image is None:
            continue
        anatomy, _ = load_nifti(image)
        outputs[f"figure_{modality}"] = overlay_figure(
            anatomy,
            segmentation,
            convention,
            f"{data.study}: fused segmentation on {_shown(data, modality)}",
            folder / f"{modality}.png",
        )
    outputs["itksnap_labels"] = write_itksnap_labels(convention, folder / "labels_itksnap.txt")
    outputs["slicer_colours"] = write_slicer_colour_table(convention, folder / "labels_slicer.ctbl")
    outputs["data"] = data.save(folder / REPORT_DATA)
    write_exam_page(folder, data)
    return outputs


def read_exam_report(folder: Path) -> ExamReportData | None:
    """The data of the exam report in ``folder`` (its ``report.json``), or None if it cannot be read."""
    try:
        return ExamReportData.load(folder / REPORT_DATA)
    except (OSError, ValueError):
        return None


def write_exam_page(
    folder: Path,
    data: ExamReportData,
    alarms: Sequence[RaisedAlarm] | None = None,
    cohort_size: int = 0,
    *,
    pdf: bool = False,
    followup: FollowUpRecord | None = None,
) -> Path:
    """Write (or write again, with the cohort's alarms) ``report.html`` into ``folder``; returns it.

    Args:
        folder: The report's folder.
        data, alarms, cohort_size, followup: As for :func:`render_exam_report`.
        pdf: Also print the page to ``report.pdf`` with headless Chromium (skipped, with a warning, when
            there is none); without it, an earlier ``report.pdf`` is removed.
    """
    html = render_exam_report(data, alarms, cohort_size, pdf=pdf, followup=followup)
    written = write_page(folder / REPORT_PAGE, html)
    if pdf:
        print_pdf(written, folder / REPORT_PDF)
    else:  # a PDF of an earlier page no longer matches this one
        (folder / REPORT_PDF).unlink(missing_ok=True)
    return written


def render_exam_report(
    data: ExamReportData,
    alarms: Sequence[RaisedAlarm] | None = None,
    cohort_size: int = 0,
    *,
    pdf: bool = False,
    followup: FollowUpRecord | None = None,
) -> str:
    """The HTML page of one exam.

    Args:
        data: Every fact the page shows.
        alarms: The cohort's ensemble alarms raised for this exam (None: no alarms were computed).
        cohort_size: How many fused exams the batch had (0: not part of a batch).
        pdf: The page is printed to ``report.pdf`` (it links it, or says why there is none).
        followup: The comparison of the patient's visits, when this exam is one of them (the page says which
            visit it is and links the comparison, in ``<output>/<study>/report/``'s terms, or says why there is
            none).

    Returns:
        A complete, self-contained HTML document.
    """
    convention = get_convention(data.labels)
    body = [disclaimer(data.clinical)] if data.clinical else []
    body += [
        f'<p class="note">btk {escape(data.btk_version)} &middot; input: <code>{escape(data.source)}</code> '
        f"({escape(data.kind)})</p>"
    ]
    if data.synthetic:
        body.append(
            f'<p><span class="synthetic">{escape(data.synthetic.label)}</span> This sequence was not acquired: '
            f"<code>{escape(data.synthetic.algorithm)}</code> synthesised it from the other three before the "
            "segmentation. Read the result with that in mind.</p>"
        )
    if followup is not None and followup.visit_number(data.study):
        body.append(_followup(data.study, followup))
    body.append("<h2>Fused segmentation</h2>")
    body += [f'<img src="{name}.png" alt="fused segmentation over {_shown(data, name)}">' for name in data.figures]
    legend = ", ".join(
        f'<span style="color: rgb{colour}">&#9632;</span> {value}: {escape(name)}'
        for value, (colour, name) in label_colours(convention).items()
    )
    body.append(f"<p>Labels ({escape(convention.name)}): {legend}. Slices through the tumour centre; BraTS space.</p>")
    if data.clinical:
        body.append(render_clinical(data.clinical))
    else:
        body.append("<h2>Volumes</h2>")
        body.append(table(["region", "volume (ml)"], [[r, float(v)] for r, v in data.volumes_ml.items()]))
    body.append("<h2>Files</h2>")
    body.append(_files(data.files, clinical=bool(data.clinical), pdf=pdf))
    if data.dicom_seg:  # the SEG for the PACS, or why there is none
        seg = link(data.dicom_seg.file, "seg.dcm") if data.dicom_seg.file else escape(f"none ({data.dicom_seg.reason})")
        body.append(f"<p>DICOM SEG: {seg}</p>")
    body.append("<h2>Candidates and their agreement with the consensus</h2>")
    body.append(_candidates(data))
    body.append(_agreement(data, alarms, cohort_size))
    if data.evaluation:
        body.append("<h2>Evaluation against the reference</h2>")
        body.append(f"<p>Reference: <code>{escape(data.evaluation.reference)}</code></p>")
        body.append(table(["region", "Dice"], [[r, float(v)] for r, v in data.evaluation.dice.items()]))
    body.append("<h2>Provenance</h2>")
    body.append(
        table(
            ["stage", "seconds", "detail"],
            [[stage, float(record.seconds), record.detail] for stage, record in data.stages.items()],
        )
    )
    if data.preprocessed:
        body.append(f"<p>Preprocessed exam: <code>{escape(data.preprocessed)}</code></p>")
    body.append("<h2>Please cite</h2><ol>" + "".join(f"<li>{escape(c)}</li>" for c in data.citations) + "</ol>")
    return page(f"btk report: {data.study}", body)


def _followup(study: str, followup: FollowUpRecord) -> str:
    """Which of the patient's visits this exam is, its response, and the comparison (or why there is none)."""
    number = followup.visit_number(study)
    where = "the baseline" if number == 1 else f"a follow-up (baseline: {escape(followup.visits[0])})"
    text = f"<h2>Follow-up</h2><p>Visit {number} of {len(followup.visits)} of this patient, {where}."
    if followup.page is None:
        return text + f' <span class="failed">{escape(followup.reason)}</span></p>'
    response = followup.responses.get(study)
    if response:
        text += f" Response against the baseline: <b>{escape(response)}</b>."
    return text + f" {link('../../' + followup.page, 'The follow-up comparison')} of the visits.</p>"


def _files(files: ReportFiles, *, clinical: bool, pdf: bool) -> str:
    rows = [["fused segmentation (BraTS space)", link(files.fused, Path(files.fused).name)]]
    if clinical:
        rows += [["clinical measures", link(name, name)] for name in CLINICAL_FILES]
    if pdf:
        rows.append(
            ["this report as PDF", link(REPORT_PDF, REPORT_PDF)]
            if find_browser()
            else ["this report as PDF", "not written: no Chromium found (Debian: apt-get install chromium)"]
        )
    if files.native:
        rows.append(["fused segmentation (native space of the exam)", link(files.native, Path(files.native).name)])
    rows += [
        ["ITK-SNAP label descriptions", link("labels_itksnap.txt", "labels_itksnap.txt")],
        ["3D Slicer colour table", link("labels_slicer.ctbl", "labels_slicer.ctbl")],
    ]
    if files.evaluation:
        rows.append(["evaluation", link(files.evaluation, "evaluation.csv")])
    return table(["what", "file"], rows)


def _shown(data: ExamReportData, modality: str) -> str:
    """How a figure names the image it is drawn on: ``"T1c"``, or ``"synthetic FLAIR"``."""
    key = canonical(modality)
    return data.synthetic.label if data.synthetic and data.synthetic.modality == key else DISPLAY_NAMES[key]


def _candidates(data: ExamReportData) -> str:
    fusion = data.fusion
    parts = [f"<p>Fusion: <b>{escape(fusion.method)}</b>{' (' + escape(fusion.mode) + ')' if fusion.mode else ''}.</p>"]
    if fusion.sources:
        chosen = "; ".join(
            f"{escape(region)} {'taken from' if len(names) == 1 else 'fused from'} {escape(' + '.join(names))}"
            for region, names in fusion.sources.items()
        )
        parts.append(f"<p>Regions from chosen candidates: {chosen}; the other regions fused from all.</p>")
    if data.candidates_source:
        parts.append(
            f"<p>Candidate segmentations made elsewhere were brought in from "
            f"<code>{escape(data.candidates_source)}</code> (<code>--candidates</code>); btk did not "
            "produce them and cannot vouch for how they were made.</p>"
        )
    parts.append(
        table(
            ["candidate", "origin", "source", "labels", "SHA-256"],
            [
                [c.name, c.origin, c.source, c.labels, Raw(f"<code>{escape(c.sha256[:16])}</code>")]
                for c in data.candidates
            ],
        )
    )
    failed = [run for run in data.algorithm_runs if run.status != "ok"]
    if failed:
        parts.append(
            table(
                ["algorithm", "status", "message"],
                [[run.algorithm, run.status, run.message] for run in failed],
                ["alarm"] * len(failed),
            )
        )
    return "\n".join(parts)


def _agreement(data: ExamReportData, alarms: Sequence[RaisedAlarm] | None, cohort_size: int) -> str:
    if not data.agreement:
        return "<p>Agreement: not computed (a single candidate).</p>"
    raised = {(alarm.algorithm, alarm.region) for alarm in alarms or ()}
    regions = get_convention(data.agreement.convention).region_names
    rows, classes = [], []
    for candidate in data.agreement.candidates:
        rows.append(
            [
                candidate.name,
                *(float(candidate.dice[r]) for r in regions),
                *(float(candidate.hd95_mm[r]) for r in regions),
                ", ".join(r for r in regions if (candidate.name, r) in raised) or "-",
            ]
        )
        classes.append("alarm" if any((candidate.name, r) in raised for r in regions) else "")
    text = table(
        ["candidate", *(f"{r} Dice" for r in regions), *(f"{r} HD95 (mm)" for r in regions), "alarms"], rows, classes
    )
    if alarms is None:
        note = (
            "Ensemble alarms (Kofler et al. 2021) compare each algorithm's agreement with its agreement on "
            "other cases; they need a cohort of at least 3 cases"
            + (f" (this run had {cohort_size})." if cohort_size else ".")
        )
    else:
        note = (
            f"Ensemble alarms over a cohort of {cohort_size} cases: {len(alarms)} raised for this case "
            "(Dice below the algorithm's median - 3 MAD over the cohort)."
        )
    return text + f'<p class="note">{escape(note)}</p>'
