"""The coded concepts of btk's tissue classes in a DICOM Segmentation (Segmented Property Category and Type).

Every class is coded with concepts of the DICOM standard's context groups (PS3.16), so that a PACS, a viewer or
a query over many SEG objects can tell what a segment is without reading its free-text label:

=======  ==========================================  ===============================================  ========
class    category (CID 7150 / CID 9580)              type                                             from
=======  ==========================================  ===============================================  ========
NCR      SCT 49755003 Morphologically Abnormal ...   SCT 6574001 Necrosis                             CID 7168
ED       SCT 49755003 Morphologically Abnormal ...   SCT 79654002 Edema                               CID 7168
ET       SCT 49755003 Morphologically Abnormal ...   NCIt C113842 Enhancing Lesion                    CID 7168
NET      SCT 49755003 Morphologically Abnormal ...   NCIt C81175 Non-Enhancing Lesion                 CID 7168
CC       SCT 49755003 Morphologically Abnormal ...   SCT 367643001 Cyst                               CID 7159
GTV      DCM 130041 RT Target (CID 9580)             SCT 228791009 GTV                                CID 9534
RC       SCT 49755003 Morphologically Abnormal ...   SCT 52988006 Lesion                              CID 7159
=======  ==========================================  ===============================================  ========

CID 7168 is the standard's *Brain Lesion Segmentation Type With Necrosis*: the BraTS vocabulary. The standard
has no concept for a resection cavity; it is coded as a lesion (a morphologically abnormal structure) and named
by its segment label and description. The code values are pydicom's (``pydicom.sr.codedict``, generated from
PS3.16), checked against the context group tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SegmentConcept:
    """The category and type of one tissue class, as (scheme, value, meaning) triples."""

    category: tuple[str, str, str]
    type: tuple[str, str, str]

    def codes(self) -> tuple[Any, Any]:
        """The category and type as pydicom ``Code`` objects (what highdicom takes)."""
        from pydicom.sr.coding import Code

        return Code(self.category[1], self.category[0], self.category[2]), Code(
            self.type[1], self.type[0], self.type[2]
        )


_ABNORMAL = ("SCT", "49755003", "Morphologically Abnormal Structure")
_RT_TARGET = ("DCM", "130041", "RT Target")

#: Tissue class (:data:`btk.labels.TISSUES`, background excepted) -> its coded concepts.
TISSUE_CONCEPTS: dict[str, SegmentConcept] = {
    "NCR": SegmentConcept(_ABNORMAL, ("SCT", "6574001", "Necrosis")),
    "ED": SegmentConcept(_ABNORMAL, ("SCT", "79654002", "Edema")),
    "ET": SegmentConcept(_ABNORMAL, ("NCIt", "C113842", "Enhancing Lesion")),
    "NET": SegmentConcept(_ABNORMAL, ("NCIt", "C81175", "Non-Enhancing Lesion")),
    "CC": SegmentConcept(_ABNORMAL, ("SCT", "367643001", "Cyst")),
    "GTV": SegmentConcept(_RT_TARGET, ("SCT", "228791009", "GTV")),
    "RC": SegmentConcept(_ABNORMAL, ("SCT", "52988006", "Lesion")),
}
