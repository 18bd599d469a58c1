"""What researchers must cite: every algorithm and method a result was made with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

METHODS: dict[str, str] = {
    "btk": "btk, brain-tumour MRI toolkit (this software), following BraTS Toolkit: Kofler F, Berger C, "
    "Waldmannstetter D, et al. BraTS Toolkit: Translating BraTS Brain Tumor Segmentation Algorithms Into "
    "Clinical and Scientific Practice. Front. Neurosci. 2020;14:125. doi:10.3389/fnins.2020.00125",
    "dcm2niix": "Li X, Morgan PS, Ashburner J, Smith J, Rorden C. The first step for neuroimaging data analysis: "
    "DICOM to NIfTI conversion. J Neurosci Methods. 2016;264:47-56. doi:10.1016/j.jneumeth.2016.03.001",
    "ants": "Avants BB, Tustison NJ, Song G, et al. A reproducible evaluation of ANTs similarity metric performance in "
    "brain image registration. NeuroImage. 2011;54(3):2033-2044. doi:10.1016/j.neuroimage.2010.09.025",
    "hd-bet": "Isensee F, Schell M, Pflueger I, et al. Automated brain extraction of multisequence MRI using "
    "artificial neural networks. Hum Brain Mapp. 2019;40(17):4952-4964. doi:10.1002/hbm.24750",
    "sri24": "Rohlfing T, Zahr NM, Sullivan EV, Pfefferbaum A. The SRI24 multichannel atlas of normal adult human "
    "brain structure. Hum Brain Mapp. 2010;31(5):798-819. doi:10.1002/hbm.20906",
    "brats": "Menze BH, Jakab A, Bauer S, et al. The Multimodal Brain Tumor Image Segmentation Benchmark (BRATS). "
    "IEEE Trans Med Imaging. 2015;34(10):1993-2024. doi:10.1109/TMI.2014.2377694",
    "simple": "Langerak TR, van der Heide UA, Kotte AN, et al. Label fusion in atlas-based segmentation using a "
    "selective and iterative method for performance level estimation (SIMPLE). IEEE Trans Med Imaging. "
    "2010;29(12):2000-2008. doi:10.1109/TMI.2010.2057442",
    "staple": "Warfield SK, Zou KH, Wells WM. Simultaneous truth and performance level estimation (STAPLE): an "
    "algorithm for the validation of image segmentation. IEEE Trans Med Imaging. 2004;23(7):903-921. "
    "doi:10.1109/TMI.2004.828354",
    "mav": "Majority voting as implemented in BraTS Toolkit (Kofler et al. 2020, above).",
    "rano": "Wen PY, Macdonald DR, Reardon DA, et al. Updated response assessment criteria for high-grade gliomas: "
    "Response Assessment in Neuro-Oncology Working Group. J Clin Oncol. 2010;28(11):1963-1972. "
    "doi:10.1200/JCO.2009.26.3541",
    "raidionics": "Bouget D, Pedersen A, Jakola AS, et al. Preoperative brain tumor imaging: models and software for "
    "segmentation and standardized reporting. Front Neurol. 2022;13:932219. doi:10.3389/fneur.2022.932219",
    "alarms": "Kofler F, Ezhov I, Fidon L, et al. Robust, primitive, and unsupervised quality estimation for "
    "segmentation ensembles. Front. Neurosci. 2021;15:752780. doi:10.3389/fnins.2021.752780",
}


def citations(steps: Sequence[str], method: str, candidates: Mapping[str, str | None]) -> list[str]:
    """The citations of a study's result: the methods of the steps it went through, then the candidates'.

    Args:
        steps: The steps the result went through (``convert``, ``preprocess``, ``native`` ... as the pipeline
            names its stages; ``clinical`` for the clinical measures, whose atlases were registered with ANTs).
        method: The fusion method.
        candidates: Each candidate's name -> its algorithm's citation (None: made elsewhere, or unknown).

    Returns:
        The citations, in order.
    """
    keys = ["btk", "brats"]
    if "convert" in steps:
        keys.append("dcm2niix")
    if "preprocess" in steps or "native" in steps:
        keys += ["ants", "hd-bet", "sri24"]
    keys += [m for m in ("mav", "simple", "staple") if m == method] + ["alarms"]
    if "clinical" in steps:
        keys += [key for key in ("ants", "sri24") if key not in keys] + ["rano", "raidionics"]
    found = [METHODS[key] for key in keys]
    for name, citation in candidates.items():
        found.append(citation or f"{name}: candidate segmentation made elsewhere; cite its authors as they ask.")
    return found
