"""The training loop: tumour-biased patches, augmentation, Dice + focal loss, AdamW with warm-up and cosine
decay, mixed precision on GPU, per-epoch validation Dice per region, checkpoints and resume, CSV log and plot.

A run folder holds ``config.json``, ``split.json`` (training and validation cases), ``last.pt`` (every
epoch, with the optimiser state, for resuming), ``best.pt`` (best mean validation Dice; the final model
when training without validation), ``log.csv``, ``training.png`` and ``cache/`` (prepared cases).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from btk.console import console, logger, progress
from btk.errors import BtkError
from btk.evaluation.metrics import dice
from btk.io import save_json
from btk.labels import REGIONS
from btk.unet.augment import Augmentation, augment
from btk.unet.cases import Case, find_cases
from btk.unet.checkpoints import read_checkpoint, save_checkpoint
from btk.unet.dataset import PreparedCase, load_prepared
from btk.unet.inference import predict_probabilities
from btk.unet.log import plot_log, read_log, write_log
from btk.unet.losses import deep_supervision_loss
from btk.unet.model import DEPTH, ModelConfig, UNet3D
from btk.unet.sampling import sample_batch


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` and in every checkpoint).

    Args:
        model: Network shape.
        augmentation: Augmentation strengths.
        patch: Training patch size (multiples of 8).
        batch_size: Patches per step.
        epochs: Number of epochs.
        steps_per_epoch: Optimiser steps per epoch.
        learning_rate: Peak learning rate (reached after the warm-up).
        weight_decay: AdamW weight decay.
        warmup_epochs: Linear warm-up length; the rate then decays along a cosine to 1 % of its peak.
        tumour_probability: Share of patches centred on a tumour voxel.
        folds: Number of cross-validation folds (1: train on all cases, no validation).
        fold: The fold held out for validation (0 .. folds-1).
        seed: Seed of every random choice (split, sampling, augmentation, initial weights).
        threads: Torch CPU threads (None: torch's default).
        validation_patch: Sliding-window size for validation.
        amp: Mixed precision (used on CUDA only).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    augmentation: Augmentation = field(default_factory=Augmentation)
    patch: tuple[int, int, int] = (128, 128, 128)
    batch_size: int = 2
    epochs: int = 300
    steps_per_epoch: int = 250
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    warmup_epochs: int = 5
    tumour_probability: float = 0.66
    folds: int = 5
    fold: int = 0
    seed: int = 0
    threads: int | None = None
    validation_patch: tuple[int, int, int] = (128, 128, 128)
    amp: bool = True

    def check(self) -> None:
        """Raise :class:`BtkError` on inconsistent settings."""
        multiple = 2**DEPTH
        for name in ("patch", "validation_patch"):
            if any(v <= 0 or v % multiple for v in getattr(self, name)):
                raise BtkError(f"{name.replace('_', ' ')} {getattr(self, name)} must be positive multiples of {multiple}")
        if self.folds < 1 or not 0 <= self.fold < self.folds:
            raise BtkError(f"fold {self.fold} does not exist with {self.folds} folds", hint="use 0 <= fold < folds")
        if min(self.batch_size, self.epochs, self.steps_per_epoch, self.model.width) < 1:
            raise BtkError("batch size, epochs, steps per epoch and width must be at least 1")
        if self.model.norm not in ("group", "instance"):
            raise BtkError(f"unknown norm {self.model.norm!r}", hint="use group or instance")

    def to_dict(self) -> dict:
        """Plain values (for JSON and checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The inverse of :meth:`to_dict`."""
        values = dict(values)
        values["model"] = ModelConfig(**values["model"])
        values["augmentation"] = Augmentation(**values["augmentation"])
        for name in ("patch", "validation_patch"):
            values[name] = tuple(values[name])
        return cls(**values)


@dataclass
class TrainResult:
    """What a finished run left behind."""

    run_dir: Path
    best_checkpoint: Path
    best_dice: dict[str, float]
    epochs_run: int


def split_cases(cases: list[Case], folds: int, fold: int, seed: int) -> tuple[list[Case], list[Case]]:
    """k-fold split: cases shuffled with ``seed``, every ``folds``-th one held out, starting at ``fold``."""
    if folds == 1:
        return list(cases), []
    if len(cases) < folds:
        raise BtkError(f"{folds}-fold cross-validation needs at least {folds} cases, found {len(cases)}",
                       hint="use fewer folds (--folds 1 trains on all cases without validation)")
    order = np.random.default_rng(seed).permutation(len(cases))
    held_out = set(order[fold::folds].tolist())
    return ([c for i, c in enumerate(cases) if i not in held_out], [c for i, c in enumerate(cases) if i in held_out])


def learning_rate_factor(step: int, warmup_steps: int, total_steps: int, floor: float = 0.01) -> float:
    """Linear warm-up to 1, then cosine decay to ``floor``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress_ = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress_, 1.0)))


def validate(model: UNet3D, cases: list[PreparedCase], patch: tuple[int, ...], device: str) -> dict[str, float]:
    """Mean Dice per region over the validation cases (whole volumes, sliding window, no TTA)."""
    model.eval()
    scores = {region: [] for region in REGIONS}
    for case in cases:
        probabilities = predict_probabilities([model], np.asarray(case.images, dtype=np.float32), patch,
                                              overlap=0.25, tta=False, device=device)
        predicted = probabilities > 0.5
        predicted[1] &= predicted[0]
        predicted[2] &= predicted[1]
        for index, region in enumerate(REGIONS):
            scores[region].append(dice(predicted[index], np.asarray(case.regions[index], dtype=bool)))
    model.train()
    return {region: float(np.mean(values)) for region, values in scores.items()}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Trains a U-Net on a folder of BraTS cases into a run folder.

    >>> Trainer(TrainConfig(epochs=100)).train("BraTS2023-GLI-Training/", "runs/fold0")
    """

    def __init__(self, config: TrainConfig | None = None, device: str | None = None):
        self.config = config or TrainConfig()
        self.config.check()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    def train(self, data_dir: str | Path, run_dir: str | Path, resume: bool = False,
              on_epoch: Callable[[dict[str, float]], bool | None] | None = None) -> TrainResult:
        """Train (or, with ``resume``, continue the run in ``run_dir``) and return the best checkpoint.

        ``on_epoch`` is called with each epoch's log row once its checkpoints are written; returning
        ``False`` stops the run there (it can be resumed later).
        """
        run_dir = Path(run_dir)
        state = self._resume_state(run_dir) if resume else None
        if state is None and (run_dir / "last.pt").exists():
            raise BtkError("the run folder holds a run already", path=run_dir,
                           hint="pass --resume to continue it, or choose another folder")
        config = TrainConfig.from_dict(state["train_config"]) if state else self.config
        if state and config != self.config:
            logger.info("Resuming with the run's own settings (config.json); other options are ignored")
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed_everything(config.seed)

        cases = find_cases(Path(data_dir))
        training_cases, validation_cases = split_cases(cases, config.folds, config.fold, config.seed)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_json(config.to_dict(), run_dir / "config.json")
        save_json({"training": [c.name for c in training_cases], "validation": [c.name for c in validation_cases],
                   "folds": config.folds, "fold": config.fold, "naming": sorted({c.naming for c in cases})},
                  run_dir / "split.json")
        logger.info("Training on %d cases, validating on %d (fold %d of %d), device %s",
                    len(training_cases), len(validation_cases), config.fold, config.folds, self.device)
        prepared = load_prepared(cases, run_dir / "cache")
        by_name = {p.name: p for p in prepared}
        training = [by_name[c.name] for c in training_cases]
        validation = [by_name[c.name] for c in validation_cases]

        model = UNet3D(config.model).to(self.device)
        optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        total_steps = config.epochs * config.steps_per_epoch
        warmup_steps = max(1, config.warmup_epochs * config.steps_per_epoch)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: learning_rate_factor(step, warmup_steps, total_steps))
        amp = config.amp and self.device.startswith("cuda")
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        rng = np.random.default_rng(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        rows, first_epoch, best_score, best_dice = [], 0, -1.0, {}
        if state:
            model.load_state_dict(state["state_dict"])
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            rng.bit_generator.state = state["numpy_rng"]
            generator.set_state(state["torch_rng"])
            torch.set_rng_state(state["torch_global_rng"])
            first_epoch, best_score, best_dice = state["epoch"] + 1, state["best_score"], state["best_dice"]
            rows = read_log(run_dir / "log.csv")[:first_epoch]
            logger.info("Resuming at epoch %d of %d", first_epoch + 1, config.epochs)

        model.train()
        with progress() as bar:
            task = bar.add_task("Training", total=config.epochs * config.steps_per_epoch,
                                completed=first_epoch * config.steps_per_epoch)
            for epoch in range(first_epoch, config.epochs):
                started, losses = time.monotonic(), []
                for _ in range(config.steps_per_epoch):
                    images, regions = sample_batch(training, config.batch_size, config.patch,
                                                   config.tumour_probability, rng)
                    images_t = torch.from_numpy(images).to(self.device)
                    regions_t = torch.from_numpy(regions.astype(np.float32)).to(self.device)
                    images_t, regions_t = augment(images_t, regions_t, config.augmentation, generator)
                    with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp):
                        loss = deep_supervision_loss(model(images_t), regions_t)
                    optimiser.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimiser)
                    scaler.update()
                    scheduler.step()
                    losses.append(loss.item())
                    bar.advance(task)
                scores = validate(model, validation, config.validation_patch, self.device) if validation else {}
                row = {"epoch": epoch + 1, "step": (epoch + 1) * config.steps_per_epoch,
                       "learning_rate": scheduler.get_last_lr()[0], "train_loss": float(np.mean(losses)),
                       **{f"dice_{r}": v for r, v in scores.items()}, "seconds": time.monotonic() - started}
                rows.append(row)
                score = float(np.mean(list(scores.values()))) if scores else float(epoch)
                if score > best_score:
                    best_score, best_dice = score, scores
                    save_checkpoint(run_dir / "best.pt", model, {"train_config": config.to_dict(), "epoch": epoch,
                                                                 "validation_dice": scores})
                save_checkpoint(run_dir / "last.pt", model, {
                    "train_config": config.to_dict(), "epoch": epoch, "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                    "numpy_rng": rng.bit_generator.state, "torch_rng": generator.get_state(),
                    "torch_global_rng": torch.get_rng_state(), "best_score": best_score, "best_dice": best_dice,
                    "validation_dice": scores})
                write_log(rows, run_dir / "log.csv")
                plot_log(rows, run_dir / "training.png")
                shown = "  ".join(f"{r} {v:.3f}" for r, v in scores.items())
                console.print(f"epoch {epoch + 1}/{config.epochs}  loss {row['train_loss']:.4f}  {shown}",
                              highlight=False)
                if on_epoch is not None and on_epoch(row) is False:
                    return TrainResult(run_dir, run_dir / "best.pt", best_dice, epoch + 1 - first_epoch)
        return TrainResult(run_dir, run_dir / "best.pt", best_dice, config.epochs - first_epoch)

    @staticmethod
    def _resume_state(run_dir: Path) -> dict | None:
        last = run_dir / "last.pt"
        if not last.exists():
            raise BtkError("nothing to resume: no last.pt in the run folder", path=run_dir,
                           hint="start a new run without --resume")
        state = read_checkpoint(last)
        if "optimiser" not in state:
            raise BtkError("last.pt holds no training state", path=last)
        return state
