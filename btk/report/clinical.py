"""The clinical section of an exam report: sizes, RANO product, foci, laterality, location and atlas licences.

It renders the plain data of ``clinical.json`` (:meth:`btk.clinical.ClinicalFindings.to_dict`), so the report
stays a leaf that knows nothing of how the measures were made.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from btk.report.html import page, table, write_page
from btk.report.pdf import find_browser, print_pdf

#: Structures holding less of a region than this (%) are left out of the page (``clinical.json`` has all).
SHOWN_SHARE_PERCENT = 1.0


def disclaimer(clinical: Mapping[str, Any]) -> str:
    """The research-use line, as the page's first paragraph."""
    return f'<p class="disclaimer">{escape(str(clinical["disclaimer"]))}</p>'


def render_clinical(clinical: Mapping[str, Any]) -> str:
    """The HTML of the clinical section (a ``<h2>`` and what follows it)."""
    regions = clinical["regions"]
    parts = ["<h2>Clinical measures</h2>", _summary(clinical), _sizes(regions)]
    parts.append(_rano(clinical["rano"]))
    if regions and regions[0]["foci"]:
        parts.append(f"<h3>Foci of {escape(regions[0]['region'])}</h3>")
        parts.append(_foci(regions[0]["foci"], clinical["on_brats_grid"]))
    if clinical["on_brats_grid"]:
        parts.append("<h3>Location</h3>")
        parts.append(_locations(regions, clinical["atlases"]))
        parts.append(_atlases(clinical["atlases"]))
    else:
        parts.append(
            '<p class="note">Location and laterality need the segmentation on the BraTS grid; this one is not.</p>'
        )
    rules = clinical["rules"]
    parts.append(
        '<p class="note">Rules: volumes count voxels; the diameters are the extents along the region\'s principal '
        "axes, edge to edge. Foci are connected parts (26-connected) of at least "
        f"{rules['focus_minimum_ml']} ml, parts closer than {rules['focus_merge_distance_mm']} mm counting as one "
        "(Raidionics). RANO: per enhancing lesion, the longest axial diameter and the longest one perpendicular "
        "to it, on the axial slice where their product is largest; measurable when both are at least "
        f"{rules['rano_measurable_mm']} mm on two or more axial slices (Wen et al. 2010).</p>"
    )
    return "\n".join(parts)


def _summary(clinical: Mapping[str, Any]) -> str:
    regions = clinical["regions"]
    if not regions:
        return ""
    outer = regions[0]
    count = len(outer["foci"])
    focality = "multifocal" if clinical["multifocal"] else "unifocal"
    facts = [f"{escape(outer['region'])}: {count} {'focus' if count == 1 else 'foci'}, {focality}"]
    if clinical["midline_crossing"] is not None:
        facts.append("crosses the midline" if clinical["midline_crossing"] else "does not cross the midline")
    if outer["left_percent"] is not None:
        facts.append(f"{outer['left_percent']:.0f} % left, {outer['right_percent']:.0f} % right")
    return f"<p><b>{'; '.join(facts)}.</b></p>"


def _sizes(regions: list[Mapping[str, Any]]) -> str:
    native = any(region["native_volume_ml"] is not None for region in regions)
    lateral = any(region["left_percent"] is not None for region in regions)
    header = ["region", "volume BraTS (ml)", *(["volume native (ml)"] if native else []), "diameters (mm)"]
    header += ["left (%)", "right (%)"] if lateral else []
    rows = []
    for region in regions:
        row: list[object] = [region["region"], float(region["volume_ml"])]
        if native:
            row.append(float(region["native_volume_ml"]) if region["native_volume_ml"] is not None else "-")
        row.append(" × ".join(f"{d:.1f}" for d in region["diameters_mm"]))
        if lateral:
            row += [_percent(region["left_percent"]), _percent(region["right_percent"])]
        rows.append(row)
    return table(header, rows)


def _percent(value: float | None) -> object:
    return "-" if value is None else float(value)


def _rano(rano: Mapping[str, Any]) -> str:
    parts = ["<h3>RANO bidimensional product</h3>"]
    if rano["lesions"]:
        parts.append(
            table(
                [
                    "lesion",
                    "volume (ml)",
                    "axial slice",
                    "longest (mm)",
                    "perpendicular (mm)",
                    "product (mm²)",
                    "measurable",
                ],
                [
                    [
                        int(lesion["lesion"]),
                        float(lesion["volume_ml"]),
                        int(lesion["slice_index"]),
                        float(lesion["longest_mm"]),
                        float(lesion["perpendicular_mm"]),
                        float(lesion["product_mm2"]),
                        "yes" if lesion["measurable"] else "no",
                    ]
                    for lesion in rano["lesions"]
                ],
            )
        )
    if rano["region"]:
        parts.append(
            f"<p>Sum of the products of the measurable lesions: <b>{rano['sum_of_products_mm2']:.1f} mm²</b>.</p>"
        )
    if rano["note"]:
        parts.append(f'<p class="note">{escape(rano["note"])}.</p>')
    return "\n".join(parts)


def _foci(foci: list[Mapping[str, Any]], located: bool) -> str:
    header = ["focus", "volume (ml)", "centre (voxel)"] + (
        ["side", "crosses midline", "main structure"] if located else []
    )
    rows = []
    for focus in foci:
        row: list[object] = [
            int(focus["number"]),
            float(focus["volume_ml"]),
            ", ".join(f"{c:.0f}" for c in focus["centre_voxel"]),
        ]
        if located:
            row += [focus["side"], "yes" if focus["crosses_midline"] else "no", focus["structure"]]
        rows.append(row)
    return table(header, rows)


def _locations(regions: list[Mapping[str, Any]], atlases: list[Mapping[str, str]]) -> str:
    titles = {atlas["key"]: atlas["title"] for atlas in atlases}
    rows = []
    for region in regions:
        for key, shares in region["locations"].items():
            shown = [f"{name} {share:.1f} %" for name, share in shares.items() if share >= SHOWN_SHARE_PERCENT]
            if shown:
                rows.append([region["region"], titles.get(key, key), "; ".join(shown)])
    return table(["region", "atlas", f"share of the region in each structure (≥ {SHOWN_SHARE_PERCENT:g} %)"], rows) + (
        '<p class="note">Harvard-Oxford has no white-matter structure: a region\'s share in none of its structures '
        "is mostly white matter.</p>"
    )


def _atlases(atlases: list[Mapping[str, str]]) -> str:
    items = "".join(
        f"<li><b>{escape(atlas['title'])}</b>. Source: {escape(atlas['source'])}. Licence: {escape(atlas['licence'])}. "
        f"Cite: {escape(atlas['citation'])}</li>"
        for atlas in atlases
    )
    return (
        "<p>Atlases, registered once from MNI152 space onto the BraTS atlas (SRI24) with ANTs SyN and shipped "
        f"with btk:</p><ul>{items}</ul>"
    )


def write_clinical_page(clinical: Mapping[str, Any], title: str, path: Path, *, pdf: bool) -> Path:
    """Write a page of the clinical section alone (``btk clinical``), and print it to PDF beside it if asked."""
    pdf_path = path.with_suffix(".pdf")
    body = [disclaimer(clinical), render_clinical(clinical)]
    if pdf and find_browser() is None:
        body.append('<p class="note">No PDF: no Chromium was found (Debian: apt-get install chromium).</p>')
    written = write_page(path, page(title, body))
    if pdf:
        print_pdf(written, pdf_path)
    return written
