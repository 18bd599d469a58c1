"""Reports: per exam (HTML, PNG figures, viewer colour tables) and per batch (cohort summary CSV and HTML).

>>> from btk.report import write_itksnap_labels, write_slicer_colour_table
"""

from __future__ import annotations

from btk.report.colours import label_colours, write_itksnap_labels, write_slicer_colour_table
from btk.report.exam import region_volumes_ml, render_exam_report
from btk.report.figures import overlay_figure, tumour_centre

__all__ = ["label_colours", "overlay_figure", "region_volumes_ml", "render_exam_report", "tumour_centre",
           "write_itksnap_labels", "write_slicer_colour_table"]
