"""Clinical measures of a tumour segmentation, as a neuroradiology report states them.

One module per measure: :mod:`~btk.clinical.size` (volume, the three largest orthogonal diameters),
:mod:`~btk.clinical.rano` (the RANO bidimensional product of the enhancing tumour), :mod:`~btk.clinical.foci`
(multifocality), :mod:`~btk.clinical.laterality` (left/right share, midline crossing) and
:mod:`~btk.clinical.location` (the share in each structure of an anatomical atlas shipped on the BraTS grid);
:mod:`~btk.clinical.exam` puts them together for one exam.

    from btk.clinical import measure_exam

    findings = measure_exam(segmentation, affine, "brats2023")
    findings.regions[0].volume_ml, findings.rano.sum_of_products_mm2, findings.midline_crossing
"""

from btk.clinical.exam import ClinicalFindings, measure_exam, write_clinical_files

__all__ = ["ClinicalFindings", "measure_exam", "write_clinical_files"]
