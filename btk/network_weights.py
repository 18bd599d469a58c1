"""Network parameters made fast on CPUs: subnormal values flushed to zero before a model is used.

Trained weights often hold subnormal floats (values below ``torch.finfo(float32).tiny``, about 1.2e-38):
weight decay drives unused filters towards zero. CPUs compute with subnormal operands tens of times more
slowly, and PyTorch's ``set_flush_denormal`` only helps the thread that calls it, not its worker threads
started earlier. Measured on this project's CI machine: 45 % of HD-BET's parameters are subnormal, and one
128^3 forward pass takes 376 s with them and 11 s with them set to zero. A subnormal weight contributes less
than 1e-37 to an activation, so flushing them changes no result (GPUs flush them too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def flush_subnormals(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state dict in which every subnormal floating-point value is zero (other tensors as given)."""
    import torch

    flushed = {}
    for name, tensor in state.items():
        if tensor.is_floating_point():
            tiny = torch.finfo(tensor.dtype).tiny
            tensor = torch.where(tensor.abs() < tiny, torch.zeros((), dtype=tensor.dtype), tensor)
        flushed[name] = tensor
    return flushed
