"""Test support for btk's U-Net: a tiny, fast training configuration and its container image.

The image is built FROM btk's Debian base image (see :mod:`tests.support.docker_engine`) through btk's own
build code, from a small build context holding ``btk/``, ``containers/unet/`` and a wheelhouse (pip, the local
CPU torch wheel and the exact numpy, nibabel and rich releases of this environment, so container and host
compute alike).
The build itself needs no network; the wheelhouse is downloaded once per machine with this environment's pip.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from btk.unet.augment import Augmentation
from btk.unet.model import ModelConfig
from btk.unet.training import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
#: Where the torch wheel lies on this machine (the CPU build); else the official CPU index is used.
LOCAL_WHEELS = Path("/opt/wheels")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Torch threads of the learning test: fixed, so runs on any machine compute alike.
THREADS = 2


def tiny_config(epochs: int = 5, steps_per_epoch: int = 60, folds: int = 1) -> TrainConfig:
    """A configuration that learns the synthetic lesions in a few minutes on 2 CPU cores."""
    return TrainConfig(
        model=ModelConfig(width=8, norm="group", residual=False, deep_supervision=True),
        augmentation=Augmentation(rotation_probability=0.1),
        patch=(32, 32, 32),
        batch_size=2,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        learning_rate=3e-3,
        warmup_epochs=1,
        tumour_probability=0.5,
        folds=folds,
        fold=0,
        seed=0,
        threads=THREADS,
        validation_patch=(32, 32, 32),
    )


def _requirements() -> list[str]:
    return [
        f"pip=={version('pip')}",
        f"torch=={version('torch')}",
        f"numpy=={version('numpy')}",
        f"nibabel=={version('nibabel')}",
        f"rich=={version('rich')}",
    ]


def wheelhouse() -> Path:
    """Wheels for an offline image build, downloaded once per machine (cached under /var/tmp)."""
    requirements = _requirements()
    key = hashlib.sha256(" ".join(requirements).encode()).hexdigest()[:12]
    folder = Path("/var/tmp") / f"btk-unet-wheels-{key}"
    if (folder / "complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    source = (
        ["--find-links", str(LOCAL_WHEELS)]
        if any(LOCAL_WHEELS.glob("torch-*.whl"))
        else ["--extra-index-url", TORCH_CPU_INDEX]
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(folder), *source, *requirements], check=True
    )
    (folder / "complete").touch()
    return folder


def build_context(folder: Path, weights: Path | None = None) -> Path:
    """A build context for containers/unet/Dockerfile: btk's package, the Dockerfile, wheels, optional weights."""
    shutil.copytree(ROOT / "btk", folder / "btk", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = folder / "containers" / "unet"
    shutil.copytree(ROOT / "containers" / "unet", target, ignore=shutil.ignore_patterns("*.whl", "*.pt"))
    for wheel in wheelhouse().glob("*.whl"):
        try:
            (target / "wheels" / wheel.name).hardlink_to(wheel)
        except OSError:
            shutil.copy2(wheel, target / "wheels" / wheel.name)
    if weights is not None:
        shutil.copy2(weights, target / "weights" / weights.name)
    return folder


def build_unet_image(folder: Path, weights: Path | None = None) -> str:
    """Build the btk-unet registry entry's image (``btk/unet:0.1.0``) FROM the Debian base; returns its tag."""
    from tests.support.docker_engine import build_algorithm

    return build_algorithm("btk-unet", source=build_context(folder, weights))
