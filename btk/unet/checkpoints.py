"""Checkpoint files: the model's weights with everything needed to rebuild it, and training state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from btk.errors import BtkError
from btk.io import atomic_path
from btk.unet.model import ModelConfig, UNet3D

#: Written into every checkpoint; a file without it is not a btk U-Net checkpoint.
FORMAT = "btk-unet-1"


def save_checkpoint(path: Path, model: UNet3D, extra: dict[str, Any] | None = None) -> None:
    """Write a checkpoint atomically: model config and weights, plus ``extra`` (training state, scores)."""
    payload = {"format": FORMAT, "model": model.config.to_dict(), "state_dict": model.state_dict(), **(extra or {})}
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, with a clear error for missing, corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise BtkError("checkpoint not found", path=path, hint="pass a .pt file written by `btk train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for a bad file
        raise BtkError(f"cannot read the checkpoint ({error.__class__.__name__})", path=path,
                       hint="the file is corrupt or not a PyTorch checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BtkError("not a btk U-Net checkpoint", path=path, hint="pass a .pt file written by `btk train`")
    return payload


def load_model(path: Path) -> UNet3D:
    """The model stored in a checkpoint, in evaluation mode on the CPU."""
    payload = read_checkpoint(path)
    model = UNet3D(ModelConfig(**payload["model"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def find_checkpoints(location: Path) -> list[Path]:
    """A checkpoint file, or every ``*.pt`` in a folder (sorted); a :class:`BtkError` if there is none."""
    location = Path(location)
    paths = sorted(location.glob("*.pt")) if location.is_dir() else [location]
    if not paths or not paths[0].exists():
        raise BtkError("no U-Net weights (*.pt) found", path=location,
                       hint="train them with `btk train DATA_DIR -o RUN_DIR` and pass RUN_DIR/best.pt "
                            "(no pretrained BraTS weights ship with btk)")
    return paths
