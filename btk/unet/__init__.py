"""btk's own segmentation algorithm: a 3D U-Net with region outputs (WT, TC, ET).

Follows the BraTS 2020 pipelines of Henry et al. (self-ensembled, deeply supervised 3D U-Net) and the
U-Net/TTA pipelines: patch training biased towards tumour, Dice + focal loss, AdamW with warm-up and cosine
decay; sliding-window inference with flip test-time augmentation and checkpoint ensembles.

No pretrained BraTS weights ship with btk: train them with :class:`Trainer` (``btk train``).

>>> from btk.unet import Trainer, TrainConfig, Predictor
>>> Trainer(TrainConfig(epochs=300)).train("BraTS2023-GLI-Training/", "runs/fold0")
>>> labels, image = Predictor(["runs/fold0/best.pt"]).segment_files(["c-t1n.nii.gz", "c-t1c.nii.gz",
...                                                                  "c-t2w.nii.gz", "c-t2f.nii.gz"])

Modules: :mod:`~btk.unet.model` (network), :mod:`~btk.unet.losses`, :mod:`~btk.unet.cases` (BraTS folders),
:mod:`~btk.unet.normalise`, :mod:`~btk.unet.dataset` (prepared-case cache), :mod:`~btk.unet.sampling`,
:mod:`~btk.unet.augment`, :mod:`~btk.unet.training`, :mod:`~btk.unet.inference`,
:mod:`~btk.unet.checkpoints`, :mod:`~btk.unet.log` (CSV and plot), :mod:`~btk.unet.contract` (container
entry point).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ModelConfig": "btk.unet.model",
    "UNet3D": "btk.unet.model",
    "Augmentation": "btk.unet.augment",
    "TrainConfig": "btk.unet.training",
    "Trainer": "btk.unet.training",
    "TrainResult": "btk.unet.training",
    "Predictor": "btk.unet.inference",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'btk.unet' has no attribute {name!r}")
