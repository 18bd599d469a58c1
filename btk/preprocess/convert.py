"""``btk convert`` as a function: a DICOM study to a folder of anonymised NIfTI files, written atomically."""

from __future__ import annotations

from pathlib import Path

from btk.io import check_replaceable, refuse_overlap, save_json
from btk.preprocess.dicom import ConversionResult, convert_dicom
from btk.preprocess.output_folder import built_atomically, remove_abandoned_outputs

#: Written last into a converted folder: which file is which modality; marks the folder as btk's.
MARKER = "conversion.json"


def convert_to_folder(dicom_dir: str | Path, output_dir: str | Path, force: bool = False) -> ConversionResult:
    """Convert the DICOM study in ``dicom_dir`` into a new folder ``output_dir``.

    The folder is built in a hidden sibling and renamed into place when complete, with ``conversion.json``
    (the files and the modality of each, no identifying data). ``force`` replaces an earlier conversion
    (a folder holding that marker), never any other folder; the output may not be, hold or lie inside the
    DICOM folder.

    Returns:
        The conversion; its paths point into ``output_dir``.
    """
    dicom_dir, output_dir = Path(dicom_dir), Path(output_dir).absolute()
    refuse_overlap(output_dir, [dicom_dir])
    remove_abandoned_outputs(output_dir)
    check_replaceable(output_dir, force, folder=True)
    with built_atomically(output_dir) as staging:
        result = convert_dicom(dicom_dir, staging)
        files = sorted(path.name for path in staging.iterdir())
        save_json(
            {
                "btk_convert": 1,
                "files": files,
                "modalities": {modality: path.name for modality, path in result.modalities.items()},
            },
            staging / MARKER,
        )
    return _moved(result, staging, output_dir)


def _moved(result: ConversionResult, staging: Path, output_dir: Path) -> ConversionResult:
    """``result`` with its paths in ``output_dir`` instead of the staging folder."""

    def move(path: Path) -> Path:
        return output_dir / path.relative_to(staging)

    for candidate in result.series:
        candidate.path = move(candidate.path)
    result.modalities = {modality: move(path) for modality, path in result.modalities.items()}
    return result
