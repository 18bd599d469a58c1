"""DICOM studies with patient identifiers in every identifying and free-text attribute (de-identification tests).

The study is the shipped TCIA exam written as real DICOM (``tests.support.preprocess``) with identifiers injected; the
tests search whatever btk prints or writes for each of :data:`IDENTIFIERS`.
"""

from __future__ import annotations

from pathlib import Path

import pydicom

from tests.support.preprocess import PATIENT_ID, PATIENT_NAME, SERIES, raw_image, write_dicom_series

STUDY_UID = "1.2.826.0.1.3680043.8.498.77340001"
#: Identifying attributes and the values written into them (besides PatientName/ID/BirthDate/Accession/
#: InstitutionName, written by write_dicom_series).
PEOPLE_AND_PLACES = {
    "ReferringPhysicianName": "Zwetschke^Ottokar",
    "PerformingPhysicianName": "Brummfeld^Isolde",
    "RequestingPhysician": "Pfefferkorn^Hubertus",
    "OperatorsName": "Knauserig^Emiliano",
    "NameOfPhysiciansReadingStudy": "Wackelpudding^Gretchen",
    "InstitutionAddress": "Gartenweg 17 Musterdorf",
    "InstitutionalDepartmentName": "Neuroradiologie Wendelin",
    "OtherPatientIDs": "MRN55443322",
}
#: What must appear nowhere: every identifier and every name component (6+ letters, or 4-byte strings would turn
#: up by chance in compressed images).
IDENTIFIERS = [
    *PATIENT_NAME.split("^"),
    PATIENT_ID,
    "19580312",
    "1958-03-12",
    "ACC998877",
    "Test Hospital",
    "Zwetschke",
    "Ottokar",
    "Brummfeld",
    "Isolde",
    "Pfefferkorn",
    "Hubertus",
    "Knauserig",
    "Emiliano",
    "Wackelpudding",
    "Gretchen",
    "Gartenweg 17 Musterdorf",
    "Neuroradiologie Wendelin",
    "MRN55443322",
]
#: A sentence full of identifiers, written into the free-text attributes.
LEAK = "Testpatient Johanna PID7734219 born 19580312 ACC998877 MRN55443322 Test Hospital referred by Zwetschke Ottokar"
#: Free-text attributes; SeriesDescription keeps its acquisition words so that recognition still works.
FREE_TEXT = [
    "ImageComments",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "PatientComments",
    "AdditionalPatientHistory",
    "RequestedProcedureDescription",
    "PerformedProcedureStepDescription",
    "DerivationDescription",
    "ContrastBolusAgent",
    "StudyComments",
]


def write_identified_study(folder: Path, study_uid: str = STUDY_UID, modalities=tuple(SERIES)) -> Path:
    """The TCIA exam as a DICOM study with identifiers in every identifying and free-text attribute."""
    for modality in modalities:
        _, number, description, te, tr, ti, contrast = SERIES[modality]
        write_dicom_series(
            raw_image(modality), folder / f"S{number:03d}", number, description, te, tr, ti, contrast, study_uid
        )
        for path in (folder / f"S{number:03d}").iterdir():
            dataset = pydicom.dcmread(path)
            for keyword, value in PEOPLE_AND_PLACES.items():
                setattr(dataset, keyword, value)
            for keyword in FREE_TEXT:
                original = str(dataset.get(keyword, "") or "")
                if keyword == "ContrastBolusAgent" and not contrast:
                    continue
                setattr(
                    dataset,
                    keyword,
                    f"{original} {LEAK}".strip()[:64] if keyword != "ImageComments" else f"{original} {LEAK}",
                )
            dataset.save_as(path, enforce_file_format=True)
    return folder
