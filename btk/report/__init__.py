"""Reports: per exam (HTML, PNG figures, viewer colour tables) and per batch (cohort summary CSV and HTML).

The report is a leaf: it renders the typed records of :mod:`btk.report.data` that the pipeline fills
(:mod:`btk.pipeline.reporting`), and imports no other component.

>>> from btk.report import write_itksnap_labels, write_slicer_colour_table
"""

from __future__ import annotations

from btk.report.colours import label_colours, write_itksnap_labels, write_slicer_colour_table
from btk.report.data import CohortRow, ExamReportData
from btk.report.exam import ReportImages, region_volumes_ml, render_exam_report, write_exam_report
from btk.report.figures import overlay_figure, tumour_centre

__all__ = [
    "CohortRow",
    "ExamReportData",
    "ReportImages",
    "label_colours",
    "overlay_figure",
    "region_volumes_ml",
    "render_exam_report",
    "tumour_centre",
    "write_exam_report",
    "write_itksnap_labels",
    "write_slicer_colour_table",
]
