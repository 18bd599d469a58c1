"""The torch device a command computes on, checked before anything is computed or written."""

from __future__ import annotations

import torch

from btk.errors import InputError

_HINT = "use cpu, or cuda (cuda:0, cuda:1 ...) on a machine with a working NVIDIA GPU"


def resolve_device(device: str | None) -> str:
    """``device`` checked (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...), or CUDA when available, else the CPU."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"unknown device {device!r}", hint=_HINT) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"the device {device!r} is not available: torch finds no CUDA GPU here", hint=_HINT)
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise InputError(
                f"the device {device!r} does not exist: torch finds {torch.cuda.device_count()} "
                "CUDA GPU(s), numbered from 0",
                hint=_HINT,
            )
    elif parsed.type != "cpu":
        raise InputError(f"unsupported device {device!r}", hint=_HINT)
    return str(parsed)
