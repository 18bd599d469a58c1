"""The report of one exam: figures, volumes, agreement, provenance and citations, as HTML.

The report stage writes the figures, the colour tables and ``report.json`` (every fact the page shows),
then renders ``report.html`` from it. After a batch, the page is rendered again with the cohort's
ensemble alarms (:mod:`btk.report.cohort`), which need all studies.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from btk import __version__
from btk.io import load_label_map, load_nifti, save_json
from btk.labels import REGIONS, get_convention
from btk.report.citations import citations
from btk.report.colours import label_colours, write_itksnap_labels, write_slicer_colour_table
from btk.report.figures import overlay_figure
from btk.report.html import Raw, link, page, table, write_page

if TYPE_CHECKING:
    from btk.pipeline.stages import StudyContext

REPORT_DATA = "report.json"
REPORT_PAGE = "report.html"


def region_volumes_ml(segmentation: np.ndarray, zooms: tuple[float, ...], labels: str) -> dict[str, float]:
    """Volume of each region (WT, TC, ET) in millilitres."""
    convention = get_convention(labels)
    voxel_ml = float(np.prod(zooms[:3])) / 1000.0
    return {region: round(int(np.count_nonzero(convention.region_mask(segmentation, region))) * voxel_ml, 2)
            for region in REGIONS}


def write_exam_report(context: StudyContext, folder: Path) -> dict[str, Path]:
    """Write the figures, colour tables, ``report.json`` and ``report.html`` of one study into ``folder``."""
    options = context.options
    convention = get_convention(options.labels)
    fused_image, fused = load_label_map(context.fused())
    images = context.brats_images()
    outputs: dict[str, Path] = {}
    for modality, title in (("t1c", "T1c"), ("flair", "FLAIR")):
        anatomy, _ = load_nifti(images[modality])
        outputs[f"figure_{modality}"] = overlay_figure(
            anatomy, fused_image, convention, f"{context.name}: fused segmentation on {title}", folder / f"{modality}.png")
    outputs["itksnap_labels"] = write_itksnap_labels(convention, folder / "labels_itksnap.txt")
    outputs["slicer_colours"] = write_slicer_colour_table(convention, folder / "labels_slicer.ctbl")
    data = _report_data(context, folder, fused, tuple(float(z) for z in fused_image.header.get_zooms()))
    save_json(data, folder / REPORT_DATA)
    outputs["data"] = folder / REPORT_DATA
    write_page(folder / REPORT_PAGE, render_exam_report(data))
    return outputs


def _report_data(context: StudyContext, folder: Path, fused: np.ndarray, zooms: tuple[float, ...]) -> dict:
    study, options = context.task.study, context.options
    segment = context.details.get("segment", {})
    fuse = context.details.get("fuse", {})
    agreement_file = context.outputs["fuse"].get("agreement")
    final = context.folder / "report"  # where this stage's folder ends up; links are relative to it
    relative = {stage: {name: os.path.relpath(path, final) for name, path in outputs.items()}
                for stage, outputs in context.outputs.items()}
    return {
        "btk_version": __version__,
        "study": context.name,
        "kind": study.kind,
        "source": str(study.source),
        "labels": options.labels,
        "volumes_ml": region_volumes_ml(fused, zooms, options.labels),
        "fusion": fuse,
        "candidates": segment.get("candidates", []),
        "candidates_source": segment.get("candidates_source", ""),
        "algorithm_runs": segment.get("algorithm_runs", []),
        "agreement": json.loads(agreement_file.read_text(encoding="utf-8")) if agreement_file else None,
        "evaluation": context.details.get("evaluate"),
        "stages": {stage: {k: v for k, v in details.items() if k in ("seconds", "source", "reference")}
                   for stage, details in context.details.items()},
        "files": relative,
        "preprocessed": str(context.preprocessed_folder() or ""),
        "citations": citations(list(context.details) + ["report"], options.method, list(context.candidates())),
    }


def render_exam_report(data: dict, alarms: list[dict] | None = None, cohort_size: int = 0) -> str:
    """The HTML page of one exam from its ``report.json`` and, after a batch, the cohort's alarms."""
    convention = get_convention(data["labels"])
    files = data["files"]
    body = [f'<p class="note">btk {escape(data["btk_version"])} &middot; input: <code>{escape(data["source"])}</code> '
            f'({escape(data["kind"])})</p>']
    body.append("<h2>Fused segmentation</h2>")
    body += [f'<img src="{name}.png" alt="fused segmentation over {title}">' for name, title in
             (("t1c", "T1c"), ("flair", "FLAIR"))]
    legend = ", ".join(f'<span style="color: rgb{colour}">&#9632;</span> {value}: {escape(name)}'
                       for value, (colour, name) in label_colours(convention).items())
    body.append(f"<p>Labels ({escape(convention.name)}): {legend}. Slices through the tumour centre; "
                "BraTS space.</p>")
    body.append("<h2>Volumes</h2>")
    body.append(table(["region", "volume (ml)"], [[r, float(v)] for r, v in data["volumes_ml"].items()]))
    body.append("<h2>Files</h2>")
    body.append(_files(files))
    body.append("<h2>Candidates and their agreement with the consensus</h2>")
    body.append(_candidates(data))
    body.append(_agreement(data, alarms, cohort_size))
    if data.get("evaluation"):
        dice = data["evaluation"]["dice"]
        body.append("<h2>Evaluation against the reference</h2>")
        body.append(f'<p>Reference: <code>{escape(data["evaluation"]["reference"])}</code></p>')
        body.append(table(["region", "Dice"], [[r, float(v)] for r, v in dice.items()]))
    body.append("<h2>Provenance</h2>")
    body.append(table(["stage", "seconds", "detail"], [
        [stage, float(d.get("seconds", 0.0)), d.get("source") or d.get("reference") or ""]
        for stage, d in data["stages"].items()]))
    if data.get("preprocessed"):
        body.append(f'<p>Preprocessed exam: <code>{escape(data["preprocessed"])}</code></p>')
    body.append("<h2>Please cite</h2><ol>" + "".join(f"<li>{escape(c)}</li>" for c in data["citations"]) + "</ol>")
    return page(f"btk report: {data['study']}", body)


def _files(files: dict[str, dict[str, str]]) -> str:
    rows = [["fused segmentation (BraTS space)", link(files["fuse"]["fused"], Path(files["fuse"]["fused"]).name)]]
    if "native" in files:
        rows.append(["fused segmentation (native space of the exam)",
                     link(files["native"]["native"], Path(files["native"]["native"]).name)])
    rows += [["ITK-SNAP label descriptions", link("labels_itksnap.txt", "labels_itksnap.txt")],
             ["3D Slicer colour table", link("labels_slicer.ctbl", "labels_slicer.ctbl")]]
    if "evaluate" in files:
        rows.append(["evaluation", link(files["evaluate"]["evaluation"], "evaluation.csv")])
    return table(["what", "file"], rows)


def _candidates(data: dict) -> str:
    fusion = data["fusion"]
    parts = [f"<p>Fusion: <b>{escape(str(fusion.get('method')))}</b>"
             f"{' (' + escape(fusion['mode']) + ')' if fusion.get('mode') else ''}.</p>"]
    if data.get("candidates_source"):
        parts.append(f'<p>Candidate segmentations made elsewhere were brought in from '
                     f'<code>{escape(data["candidates_source"])}</code> (<code>--candidates</code>); btk did not '
                     "produce them and cannot vouch for how they were made.</p>")
    parts.append(table(["candidate", "origin", "source", "labels", "SHA-256"], [
        [c["name"], c["origin"], c["source"], c["labels"], Raw(f"<code>{c['sha256'][:16]}</code>")]
        for c in data["candidates"]]))
    failed = [r for r in data.get("algorithm_runs", []) if r["status"] != "ok"]
    if failed:
        parts.append(table(["algorithm", "status", "message"], [[r["algorithm"], r["status"], r["message"]]
                                                                 for r in failed], ["alarm"] * len(failed)))
    return "\n".join(parts)


def _agreement(data: dict, alarms: list[dict] | None, cohort_size: int) -> str:
    agreement = data.get("agreement")
    if not agreement:
        return "<p>Agreement: not computed (a single candidate).</p>"
    raised = {(a["algorithm"], a["region"]) for a in alarms or []}
    rows, classes = [], []
    for candidate in agreement["candidates"]:
        rows.append([candidate["name"], *(float(candidate["dice"][r]) for r in REGIONS),
                     *(float(candidate["hd95_mm"][r]) for r in REGIONS),
                     ", ".join(r for r in REGIONS if (candidate["name"], r) in raised) or "-"])
        classes.append("alarm" if any((candidate["name"], r) in raised for r in REGIONS) else "")
    text = table(["candidate", *(f"{r} Dice" for r in REGIONS), *(f"{r} HD95 (mm)" for r in REGIONS), "alarms"],
                 rows, classes)
    if alarms is None:
        note = ("Ensemble alarms (Kofler et al. 2021) compare each algorithm's agreement with its agreement on "
                "other cases; they need a cohort of at least 3 cases"
                + (f" (this run had {cohort_size})." if cohort_size else "."))
    else:
        note = (f"Ensemble alarms over a cohort of {cohort_size} cases: {len(alarms)} raised for this case "
                "(Dice below the algorithm's median - 3 MAD over the cohort).")
    return text + f'<p class="note">{escape(note)}</p>'
