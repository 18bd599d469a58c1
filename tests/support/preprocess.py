"""Shared test support for the Preprocessor: the real TCIA exam, a DICOM study made from it, and the one
preprocessing run of the session (``preprocessed_tcga``)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

#: The raw exam is the one shipped in examples/; BraTS Toolkit's results for it are test data.
RAW = Path(__file__).resolve().parents[2] / "examples" / "exams" / "TCGA-FG-6692"
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "exams" / "TCGA-FG-6692" / "brats_toolkit_reference"
#: The patient identity written into the synthetic DICOM study; it must appear in no output.
PATIENT_NAME = "Testpatient^Johanna"
PATIENT_ID = "PID7734219"
#: Modality -> (raw file suffix, series number, series description, TE ms, TR ms, TI ms, contrast agent).
SERIES = {
    "t1n": ("_t1.nii.gz", 10, "T1 AX SE", 9.0, 500.0, None, None),
    "t1c": ("_t1c.nii.gz", 13, "MRHR T1 AX POST GAD", 9.0, 500.0, None, "Gadavist"),
    "t2w": ("_t2.nii.gz", 2, "MRHR T2 AX", 100.0, 4000.0, None, None),
    "t2f": ("_fla.nii.gz", 5, "MRHR FLAIR AX", 120.0, 9000.0, 2500.0, None),
}
REFERENCE_NAMES = {"t1n": "t1", "t1c": "t1c", "t2w": "t2", "t2f": "fla"}


def raw_image(modality: str) -> Path:
    """The raw NIfTI of one modality of the TCIA exam."""
    return next(RAW.glob(f"*{SERIES[modality][0]}"))


def write_dicom_series(
    nifti: Path,
    folder: Path,
    number: int,
    description: str,
    te: float,
    tr: float,
    ti: float | None,
    contrast: str | None,
    study_uid: str,
) -> None:
    """Write a NIfTI volume as an MR DICOM series (one file per slice, realistic tags, a patient name)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    image = nib.load(str(nifti))
    data = np.asanyarray(image.dataobj).astype(np.int16)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
    zooms = image.header.get_zooms()[:3]
    row_cosine = lps[:3, 0] / np.linalg.norm(lps[:3, 0])
    column_cosine = lps[:3, 1] / np.linalg.norm(lps[:3, 1])
    series_uid, frame_uid = generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(data.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = PATIENT_NAME, PATIENT_ID, "19580312", "F"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = "20010704"
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = f"1200{number:02d}"
        ds.AccessionNumber, ds.StudyID, ds.InstitutionName = "ACC998877", "1", "Test Hospital"
        ds.Modality, ds.Manufacturer, ds.MagneticFieldStrength = "MR", "SIEMENS", 1.5
        ds.SeriesNumber, ds.SeriesDescription, ds.ProtocolName = number, description, description
        ds.InstanceNumber, ds.AcquisitionNumber = k + 1, 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = ("IR" if ti else "SE"), "SK", "2D"
        ds.EchoTime, ds.RepetitionTime = te, tr
        if ti:
            ds.InversionTime = ti
        if contrast:
            ds.ContrastBolusAgent = contrast
        ds.ImagePositionPatient = [float(v) for v in (lps @ [0, 0, k, 1])[:3]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_cosine, *column_cosine)]
        ds.PixelSpacing = [float(zooms[1]), float(zooms[0])]
        ds.SliceThickness = ds.SpacingBetweenSlices = float(zooms[2])
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T).tobytes()
        ds.save_as(folder / f"IM{k + 1:04d}", enforce_file_format=True)


def write_dicom_study(folder: Path) -> Path:
    """The TCIA exam as a nested multi-series DICOM study, with a stray non-DICOM file."""
    from pydicom.uid import generate_uid

    study_uid = generate_uid()
    for modality, (_, number, description, te, tr, ti, contrast) in SERIES.items():
        write_dicom_series(
            raw_image(modality),
            folder / "study" / f"S{number:03d}",
            number,
            description,
            te,
            tr,
            ti,
            contrast,
            study_uid,
        )
    (folder / "study" / "README.txt").write_text("exported by a PACS\n")
    return folder


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="session")
def preprocessed_tcga(tmp_path_factory: pytest.TempPathFactory):
    """The TCIA exam, written as a DICOM study and preprocessed once per session (HD-BET fast mode on CPU).

    The run asks for accurate mode with a 0.01 GiB memory budget, so it exercises the documented fallback
    to fast mode (a real run of the fallback path, not a mock).
    """
    from btk.preprocess import Preprocessor

    root = tmp_path_factory.mktemp("preprocess-tcga")
    study = write_dicom_study(root / "dicom")
    return Preprocessor(device="cpu", fast=False, memory_budget_gb=0.01).run(study, root / "out" / "TCGA-FG-6692")


@pytest.fixture(scope="session")
def preprocessed_tcga_mni(tmp_path_factory: pytest.TempPathFactory):
    """The TCIA exam's NIfTI files preprocessed once per session into the MNI152 space (HD-BET fast mode, CPU)."""
    from btk.preprocess import Preprocessor

    root = tmp_path_factory.mktemp("preprocess-tcga-mni")
    return Preprocessor(device="cpu", fast=True, atlas="brats-mni152").run(RAW, root / "TCGA-FG-6692")


@pytest.fixture(scope="session")
def preprocessed_tcga_native(tmp_path_factory: pytest.TempPathFactory):
    """The TCIA exam's NIfTI files preprocessed once per session into the native-t1c space (BraTS meningioma
    radiotherapy: the T1c alone on its own grid, defaced; HD-BET fast mode on CPU, no registration)."""
    from btk.preprocess import Preprocessor

    root = tmp_path_factory.mktemp("preprocess-tcga-native")
    return Preprocessor(device="cpu", fast=True, atlas="native-t1c").run(RAW, root / "TCGA-FG-6692")
