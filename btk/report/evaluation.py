"""The cohort report of an evaluation (``btk evaluate --report``): tables, figures and CSVs in one folder.

Renders a :class:`btk.evaluation.cohort.CohortAnalysis`: ``index.html`` (statistics per region and metric,
the worst cases, the cases whose reference lacks a region, the figures), ``statistics.csv``, ``cases.csv``
(volumes and lesion counts per case and region), ``features.csv`` (first-order intensity and shape features,
when images were given), ``metrics.png`` (box plots of the ranked metrics per region), ``dice_vs_volume.png``
and ``evaluation_report.json`` (the record that btk wrote the folder).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from btk import __version__
from btk.evaluation.cohort import FEATURE_COLUMNS, CohortAnalysis
from btk.io import FOLDER_MARKERS, atomic_path, save_json
from btk.report.figures import save_png
from btk.report.html import link, page, table, write_page

#: The record in the report folder (its key marks the folder as btk's: ``--force`` may replace it).
RECORD = "evaluation_report.json"
RECORD_KEY = FOLDER_MARKERS[RECORD]


def write_evaluation_report(
    analysis: CohortAnalysis, folder: Path, features: Sequence[dict[str, object]] | None = None
) -> dict[str, Path]:
    """Write the report into ``folder`` (it exists and is empty); returns what was written, by name."""
    written = {
        "statistics": _csv(
            folder / "statistics.csv",
            ("region", "metric", "n", "mean", "std", "median", "q1", "q3", "minimum", "maximum", "undefined"),
            [
                {"region": region, "metric": metric, **asdict(stats)}
                for region, metrics in analysis.statistics.items()
                for metric, stats in metrics.items()
            ],
        ),
        "cases": _csv(
            folder / "cases.csv",
            ("case", "region", "reference_ml", "prediction_ml", "reference_lesions", "prediction_lesions"),
            [asdict(fact) for fact in analysis.facts],
        ),
        "metrics_figure": _box_plots(analysis, folder / "metrics.png"),
        "volume_figure": _dice_against_volume(analysis, folder / "dice_vs_volume.png"),
    }
    if features is not None:
        written["features"] = _csv(folder / "features.csv", FEATURE_COLUMNS, features)
    written["page"] = write_page(folder / "index.html", _page(analysis, features is not None))
    written["record"] = folder / RECORD
    save_json({RECORD_KEY: 1, "btk_version": __version__, "scheme": analysis.scheme}, written["record"])
    return written


def _csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, object]]) -> Path:
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def _page(analysis: CohortAnalysis, with_features: bool) -> str:
    cases = sorted({fact.case for fact in analysis.facts})
    body = [
        f'<p class="note">btk {__version__} &middot; scheme <code>{analysis.scheme}</code> &middot; '
        f"{len(cases)} case(s). Files: {link('statistics.csv', 'statistics.csv')}, {link('cases.csv', 'cases.csv')}"
        + (f", {link('features.csv', 'features.csv')}" if with_features else "")
        + ".</p>"
    ]
    absent = {region: names for region, names in analysis.absent.items() if names}
    if absent:
        body.append("<h2>References without a region</h2>")
        body.append(
            "<p>These cases' references have none of the region: its Dice is 1 or 0 and its HD95 0 or the "
            "penalty, whatever the rest of the case looks like, so they weigh heavily on the means.</p>"
        )
        body.append(table(["region", "cases"], [[region, ", ".join(names)] for region, names in absent.items()]))
    body.append("<h2>Statistics per region</h2>")
    for region, metrics in analysis.statistics.items():
        body.append(f"<h3>{region}</h3>")
        body.append(
            table(
                ["metric", "n", "mean", "std", "median", "q1", "q3", "min", "max", "undefined"],
                [
                    [metric, s.n, s.mean, s.std, s.median, s.q1, s.q3, s.minimum, s.maximum, s.undefined]
                    for metric, s in metrics.items()
                ],
            )
        )
    body.append("<h2>Figures</h2>")
    body.append('<img src="metrics.png" alt="box plots of the metrics per region">')
    body.append('<img src="dice_vs_volume.png" alt="Dice against the reference volume">')
    body.append("<h2>Worst cases</h2>")
    for region in analysis.regions:
        rows = [
            [dice_case, dice, hd95_case, hd95]
            for (dice_case, dice), (hd95_case, hd95) in zip(
                analysis.worst_by_dice[region], analysis.worst_by_hd95[region]
            )
        ]
        body.append(f"<h3>{region}</h3>")
        body.append(table(["case", analysis.dice_metric, "case", analysis.hd95_metric], rows))
    body.append("<h2>Volumes and lesions per case</h2>")
    body.append(
        table(
            ["case", "region", "reference (ml)", "prediction (ml)", "reference lesions", "predicted lesions"],
            [
                [f.case, f.region, f.reference_ml, f.prediction_ml, f.reference_lesions, f.prediction_lesions]
                for f in analysis.facts
            ],
        )
    )
    return page("Evaluation of a cohort", body)


def _figure(columns: int):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt, *plt.subplots(1, columns, figsize=(5.5 * columns, 4.2), layout="tight", squeeze=False)


def _box_plots(analysis: CohortAnalysis, path: Path) -> Path:
    """Box plots (with every case as a dot) of the ranked Dice and HD95 per region (finite values)."""
    plt, figure, axes = _figure(2)
    for column, (axis, metric) in enumerate(zip(axes[0], (analysis.dice_metric, analysis.hd95_metric)), start=1):
        values = [
            [case[column] for case in analysis.per_case[region] if np.isfinite(case[column])]
            for region in analysis.regions
        ]
        axis.boxplot(values, tick_labels=list(analysis.regions), showfliers=False)
        for index, points in enumerate(values, start=1):
            axis.scatter(np.full(len(points), index) + np.linspace(-0.12, 0.12, len(points)), points, s=10, alpha=0.6)
        axis.set_title(metric.replace("_", " "))
    return save_png(plt, figure, path)


def _dice_against_volume(analysis: CohortAnalysis, path: Path) -> Path:
    """The ranked Dice of every case against its reference volume, per region (log volume axis)."""
    plt, figure, axes = _figure(len(analysis.regions))
    for axis, region in zip(axes[0], analysis.regions):
        volumes = {f.case: f.reference_ml for f in analysis.facts if f.region == region}
        shown = [
            (volumes[case], dice)
            for case, dice, _ in analysis.per_case[region]
            if volumes.get(case, 0) > 0 and np.isfinite(dice)
        ]
        if shown:
            axis.scatter(*zip(*shown), s=14)
            axis.set_xscale("log")
        axis.set_xlabel("reference volume (ml)")
        axis.set_ylabel(analysis.dice_metric.replace("_", " "))
        axis.set_ylim(-0.05, 1.05)
        axis.set_title(region)
    return save_png(plt, figure, path)
