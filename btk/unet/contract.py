"""The container's entry point, speaking the BraTS 2025 contract.

``/input/<case>/<case>-t1c.nii.gz`` (and ``-t1n``, ``-t2w``, ``-t2f``) -> ``/output/<case>.nii.gz``
(BraTS 2023 labels: 1 NCR, 2 ED, 3 ET), using every ``*.pt`` checkpoint in ``/weights`` (mounted at run
time, or baked into the image). No network is needed.

Environment: ``BTK_UNET_TTA`` (``1``/``0``, default 1), ``BTK_UNET_THREADS`` (default: the CPUs available,
at most 8; see :func:`btk.unet.inference.default_threads`), ``BTK_UNET_OVERLAP`` (default 0.5).
Run as ``python -m btk.unet.contract [INPUT OUTPUT WEIGHTS]``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from btk.console import configure_logging, console, logger
from btk.errors import BtkError, InputError
from btk.io import save_label_map
from btk.unet.cases import read_case
from btk.unet.inference import Predictor

Number = TypeVar("Number", int, float)


def segment_folder(input_dir: Path, output_dir: Path, predictor: Predictor) -> list[Path]:
    """Segment every case folder in ``input_dir`` into ``output_dir/<case>.nii.gz``; returns the outputs."""
    folders = sorted(p for p in Path(input_dir).iterdir() if p.is_dir())
    if not folders:
        raise InputError(
            "no case folders in the input folder",
            path=input_dir,
            hint="expected <input>/<case>/<case>-t1c.nii.gz, -t1n, -t2w, -t2f",
        )
    outputs = []
    for folder in folders:
        case = read_case(folder, need_segmentation=False)
        logger.info(
            "Segmenting %s with %d checkpoint(s), TTA %s",
            case.name,
            len(predictor.models),
            "on" if predictor.tta else "off",
        )
        labels, reference = predictor.segment_files(case.images, "brats2023")
        output = Path(output_dir) / f"{case.name}.nii.gz"
        save_label_map(labels, reference, output)
        outputs.append(output)
    return outputs


def _environment_number(name: str, kind: Callable[[str], Number]) -> Number | None:
    """The number (``kind``: int or float) in environment variable ``name``; None if unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"the environment variable {name} is {text[:40]!r}, not a {kind.__name__}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the contract; exit code 0 on success, 1 with a message on any problem."""
    configure_logging()
    args = sys.argv[1:] if argv is None else argv
    input_dir, output_dir, weights = (Path(a) for a in (args + ["/input", "/output", "/weights"][len(args) :])[:3])
    try:
        overlap = _environment_number("BTK_UNET_OVERLAP", float)
        predictor = Predictor(
            [weights],
            tta=os.environ.get("BTK_UNET_TTA", "1") != "0",
            overlap=0.5 if overlap is None else overlap,
            threads=_environment_number("BTK_UNET_THREADS", int),
        )
        segment_folder(input_dir, output_dir, predictor)
    except BtkError as error:
        console.print(f"Error: {error}", highlight=False, soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
