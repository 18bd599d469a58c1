"""The follow-up page of one patient: volumes over time, changes, foci, response, and the same slices side by side.

It renders the plain data of ``compare.json`` (:meth:`btk.clinical.compare.Comparison.to_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from btk.labels import get_convention
from btk.report.figures import canonical, display_window, draw_overlay, overlay_colours, save_png, tumour_centre
from btk.report.html import link, page, table, write_page

DISCLAIMER = "For research use only; not for diagnosis or treatment decisions."


def volume_plot(comparison: Mapping[str, Any], output: Path) -> Path:
    """A PNG of each region's volume (ml) over the exams."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    exams = comparison["exams"]
    figure, axis = plt.subplots(figsize=(7, 4), layout="tight")
    for region, volumes in comparison["volumes_ml"].items():
        axis.plot(range(len(exams)), volumes, marker="o", label=region)
    axis.set_xticks(range(len(exams)), exams, rotation=20, ha="right")
    axis.set_ylabel("volume (ml)")
    axis.set_title("Volume over time")
    axis.legend()
    return save_png(plt, figure, output)


def side_by_side(
    images: Sequence[nib.Nifti1Image],
    segmentations: Sequence[nib.Nifti1Image],
    names: Sequence[str],
    labels: str,
    output: Path,
) -> Path:
    """A PNG of every exam's segmentation over its image, on the same axial and coronal slices (through the
    baseline's tumour centre): the exams lie on one grid, so a slice is the same place in each."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    colours = overlay_colours(get_convention(labels))
    maps = [canonical(segmentation).astype(np.uint8) for segmentation in segmentations]
    _, y, z = tumour_centre(maps[0])
    figure, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 6.4), facecolor="black", squeeze=False)
    for column, (image, labels_map, name) in enumerate(zip(images, maps, names)):
        anatomy = canonical(image).astype(np.float32)
        window = display_window(anatomy)
        for row, (picture, mask, plane) in enumerate(
            ((anatomy[:, :, z], labels_map[:, :, z], "axial"), (anatomy[:, y, :], labels_map[:, y, :], "coronal"))
        ):
            draw_overlay(axes[row][column], picture, mask, colours, window, f"{name}: {plane}", fontsize=10)
    return save_png(plt, figure, output, dpi=80, facecolor="black")


def write_compare_page(
    comparison: Mapping[str, Any], path: Path, image_notes: Sequence[str], reports: Mapping[str, str] | None = None
) -> Path:
    """Write ``compare.html`` (it shows ``volumes.png`` and ``slices.png`` of its folder).

    Args:
        comparison: ``compare.json``'s content.
        path: The page to write.
        image_notes: Notes on the images shown (an exam shown over the atlas T1, ...).
        reports: Exam name -> its report page (relative to the page's folder), linked from the volume table.
    """
    exams = comparison["exams"]
    body = [f'<p class="disclaimer">{escape(DISCLAIMER)}</p>']
    body.append(
        f"<p>Baseline: <b>{escape(exams[0])}</b>; follow-ups: {escape(', '.join(exams[1:]))}. "
        f"Labels: {escape(comparison['labels'])}.</p>"
    )
    body.append('<h2>Volumes</h2><img src="volumes.png" alt="volume of each region over time">')
    body.append(_volume_table(comparison, reports or {}))
    body.append("<h2>Change and response</h2>")
    body.append(_response_table(comparison))
    body.append(
        f'<p class="note">Response on the {escape(comparison["response_region"])} volume; new and vanished foci of '
        "the outermost region since the exam before. Rule: "
        f"{escape(comparison['source'])}. Only the images are assessed, not RANO's clinical conditions. Resection "
        f"class: {escape(comparison['resection_source'])}.</p>"
    )
    body.append('<h2>The same slices</h2><img src="slices.png" alt="every exam on the same slices">')
    body += [f'<p class="note">{escape(note)}</p>' for note in image_notes]
    return write_page(path, page("btk follow-up", body))


def _volume_table(comparison: Mapping[str, Any], reports: Mapping[str, str]) -> str:
    """Each exam's volume per region (ml), the exam linked to its report where it has one."""
    regions = list(comparison["volumes_ml"])
    return table(
        ["exam", *(f"{r} (ml)" for r in regions)],
        [
            [
                link(reports[exam], exam) if exam in reports else exam,
                *(float(comparison["volumes_ml"][r][i]) for r in regions),
            ]
            for i, exam in enumerate(comparison["exams"])
        ],
    )


def _response_table(comparison: Mapping[str, Any]) -> str:
    """Per follow-up: the change from baseline, foci, RANO sum of products, response and extent of resection."""
    rows = []
    for follow in comparison["follow_ups"]:
        changes = "; ".join(
            f"{c['region']} {c['change_ml']:+.2f} ml"
            + (f" ({c['change_percent']:+.0f} %)" if c["change_percent"] is not None else "")
            for c in follow["regions"]
        )
        product = f"{follow['product_mm2']:.0f} mm² ({follow['product_change_mm2']:+.0f})"
        resection = follow["extent_of_resection_percent"]
        rows.append(
            [
                follow["exam"],
                changes,
                len(follow["new_foci_ml"]),
                len(follow["vanished_foci_ml"]),
                product,
                follow["response"],
                follow["reason"],
                "-" if resection is None else f"{resection:.1f} % (RANO resect class {follow['resection_class']})",
            ]
        )
    headers = [
        "follow-up",
        "change from baseline",
        "new foci",
        "vanished foci",
        "RANO sum of products",
        "response",
        "why",
        "extent of resection (ET), class",
    ]
    return table(headers, rows)
