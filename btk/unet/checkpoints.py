"""Checkpoint files: the model's weights with everything needed to rebuild it, and training state.

A checkpoint holds tensors and plain data only (dicts, lists, tuples, str, int, float, bool, None), and is
read with ``torch.load(..., weights_only=True)``: a file that holds any other Python object is refused
before that object is built, because unpickling it could run arbitrary code. Every reader of checkpoints
(``btk unet-predict``, ensembles, the ``btk-unet`` container, ``btk train --resume``) goes through
:func:`read_checkpoint`, which also checks the content against the format (:func:`model_from_checkpoint`
checks the model settings and every weight's name and shape against the model they describe).
"""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from btk.errors import InputError, MissingFileError
from btk.io import atomic_path
from btk.network_weights import flush_subnormals
from btk.unet.model import NORMS, ModelConfig, UNet3D

#: Written into every checkpoint; a file without it is not a btk U-Net checkpoint.
FORMAT = "btk-unet-1"

#: What to do about an unusable checkpoint given to inference (``btk unet-predict``, the container).
PREDICT_HINT = "pass a checkpoint written by `btk train` (RUN_DIR/best.pt)"

#: Input modalities (t1n, t1c, t2w, t2f) and output regions (WT, TC, ET) every btk U-Net has.
IN_CHANNELS, OUT_CHANNELS = 4, 3

_PLAIN = (str, int, float, bool, type(None))


def plain_data(value: Any) -> Any:
    """``value`` as tensors and plain data only, the content a checkpoint may hold.

    Converts numpy scalars and arrays, paths and dataclasses; raises ``TypeError`` for anything else.
    """
    if isinstance(value, (torch.Tensor, *_PLAIN)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_data(dataclasses.asdict(value))
    if isinstance(value, dict):
        if not all(isinstance(key, (str, int)) for key in value):
            raise TypeError("checkpoint dictionaries need str or int keys")
        return {key: plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_data(item) for item in value)
    raise TypeError(f"a checkpoint cannot hold a {type(value).__name__}")


#: How deeply a checkpoint's dicts and lists may nest (btk's own nest 4 levels).
MAX_NESTING = 16


def _foreign_content(value: Any, where: str = "the checkpoint", depth: int = 0) -> str | None:
    """Where ``value`` holds something other than tensors and plain data (None if nowhere)."""
    if isinstance(value, _PLAIN) or (isinstance(value, torch.Tensor) and value.layout == torch.strided):
        return None
    if depth >= MAX_NESTING:
        return f"{where} nests more than {MAX_NESTING} levels deep"
    if isinstance(value, dict):
        for key, item in value.items():
            found = (
                f"{where} has a {type(key).__name__} key"
                if not isinstance(key, (str, int))
                else _foreign_content(item, f"{where}[{key!r}]", depth + 1)
            )
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        return next(
            (
                found
                for index, item in enumerate(value)
                if (found := _foreign_content(item, f"{where}[{index}]", depth + 1))
            ),
            None,
        )
    return f"{where} is a {type(value).__name__}"


def save_checkpoint(path: Path, model: UNet3D, extra: dict[str, Any] | None = None) -> None:
    """Write a checkpoint atomically: model config and weights, plus ``extra`` (training state, scores)."""
    payload = plain_data(
        {"format": FORMAT, "model": model.config.to_dict(), "state_dict": dict(model.state_dict()), **(extra or {})}
    )
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def read_checkpoint(path: Path, hint: str = PREDICT_HINT) -> dict[str, Any]:
    """Read a checkpoint safely (tensors and plain data only), with one clear error for a file that is
    missing, corrupt, truncated, unsafe or not a btk U-Net checkpoint; ``hint`` says what to do then."""
    path = Path(path)
    if not path.is_file():
        raise (MissingFileError if not path.exists() else InputError)(
            "checkpoint not found" if not path.exists() else "is not a file, expected a checkpoint",
            path=path,
            hint=hint,
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it meets in foreign files
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "unsupported global" in str(error).lower():  # torch's words for an object it would have to build
            raise InputError(
                "refused: the file holds Python objects other than tensors and plain data, and "
                "loading them could run code (btk checkpoints never hold such objects)",
                path=path,
                hint=hint,
            ) from None
        raise _unreadable(path, error, hint) from None
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise _unreadable(path, error, hint) from None
    foreign = _foreign_content(payload)
    if foreign:
        raise InputError(
            f"not a btk U-Net checkpoint: {foreign[:200]}, not tensors and plain data", path=path, hint=hint
        )
    if not isinstance(payload, dict):
        raise InputError(
            f"not a btk U-Net checkpoint: it holds a {type(payload).__name__}, not a dictionary", path=path, hint=hint
        )
    stamp = payload.get("format")
    if not (isinstance(stamp, str) and stamp == FORMAT):
        if payload and all(isinstance(value, torch.Tensor) for value in payload.values()):
            problem = "a bare state dict (weights without btk's model settings), not a btk U-Net checkpoint"
        elif "format" in payload:
            problem = f"unsupported checkpoint format {str(stamp)[:40]!r} (btk reads {FORMAT!r})"
        else:
            problem = "not a btk U-Net checkpoint (it has no btk format stamp)"
        raise InputError(problem, path=path, hint=hint)
    return payload


def _unreadable(path: Path, error: Exception, hint: str) -> InputError:
    return InputError(
        f"cannot read the checkpoint ({error.__class__.__name__}): the file is truncated, corrupt or "
        "not a PyTorch checkpoint",
        path=path,
        hint=hint,
    )


def model_config(payload: dict[str, Any], path: Path, hint: str = PREDICT_HINT) -> ModelConfig:
    """The checked model settings of a checkpoint read by :func:`read_checkpoint`."""
    values = payload.get("model")
    fields = {field.name for field in dataclasses.fields(ModelConfig)}
    if not isinstance(values, dict) or set(values) != fields:
        raise InputError(
            f"the checkpoint's model settings are missing or incomplete (expected {sorted(fields)})",
            path=path,
            hint=hint,
        )
    width, norm = values["width"], values["norm"]
    if not (
        type(width) is int
        and width >= 1
        and norm in NORMS
        and all(type(values[name]) is bool for name in ("residual", "deep_supervision"))
    ):
        raise InputError(
            f"the checkpoint's model settings are invalid: width {width!r}, norm {norm!r}, residual "
            f"{values['residual']!r}, deep supervision {values['deep_supervision']!r}",
            path=path,
            hint=hint,
        )
    if (values["in_channels"], values["out_channels"]) != (IN_CHANNELS, OUT_CHANNELS):
        raise InputError(
            f"the checkpoint's model takes {values['in_channels']!r} inputs and gives "
            f"{values['out_channels']!r} outputs; btk's U-Net takes {IN_CHANNELS} modalities and "
            f"gives {OUT_CHANNELS} regions (WT, TC, ET)",
            path=path,
            hint=hint,
        )
    return ModelConfig(**values)


def model_from_checkpoint(payload: dict[str, Any], path: Path, hint: str = PREDICT_HINT) -> UNet3D:
    """The model a checkpoint describes, with its weights, after checking every weight's name and shape."""
    config = model_config(payload, path, hint)
    weights = payload.get("state_dict")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise InputError("the checkpoint has no weights (a state dict of tensors)", path=path, hint=hint)
    with torch.device("meta"):  # the shapes the settings need, without allocating the model
        expected = {name: tuple(tensor.shape) for name, tensor in UNet3D(config).state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        shown = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(map(str, unexpected[:3]))}" if unexpected else "",
            )
            if part
        )
        raise InputError(
            f"the checkpoint's weights do not belong to the model it describes ({shown})", path=path, hint=hint
        )
    for name, shape in expected.items():
        tensor = weights[name]
        if tuple(tensor.shape) != shape or not tensor.is_floating_point():
            raise InputError(
                f"the checkpoint's weight {name} is {tensor.dtype} {tuple(tensor.shape)}; the model it "
                f"describes needs floating-point {shape}",
                path=path,
                hint=hint,
            )
        if not bool(torch.isfinite(tensor).all()):
            raise InputError(
                f"the checkpoint's weight {name} holds NaN or infinite values (a diverged training run?)",
                path=path,
                hint=hint,
            )
    model = UNet3D(config)
    model.load_state_dict(flush_subnormals(weights))
    return model


def load_model(path: Path) -> UNet3D:
    """The model stored in a checkpoint, in evaluation mode on the CPU."""
    path = Path(path)
    return model_from_checkpoint(read_checkpoint(path), path).eval()


def find_checkpoints(location: Path) -> list[Path]:
    """A checkpoint file, or every ``*.pt`` file in a folder (sorted); a :class:`BtkError` if there is none."""
    location = Path(location)
    paths = sorted(p for p in location.glob("*.pt") if p.is_file()) if location.is_dir() else [location]
    if not paths or not paths[0].exists():
        raise MissingFileError(
            "no U-Net weights (*.pt) found",
            path=location,
            hint="train them with `btk train DATA_DIR -o RUN_DIR` and pass RUN_DIR/best.pt "
            "(no pretrained BraTS weights ship with btk)",
        )
    return paths
