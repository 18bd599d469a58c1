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
from typing import Any

import numpy as np
import torch

from btk.console import console, logger, progress
from btk.errors import BtkError, InputError, OutputExistsError
from btk.evaluation.metrics import dice
from btk.io import save_json
from btk.labels import REGIONS
from btk.unet.augment import Augmentation, augment
from btk.unet.cases import Case, find_cases
from btk.unet.checkpoints import IN_CHANNELS, OUT_CHANNELS, model_from_checkpoint, read_checkpoint, save_checkpoint
from btk.unet.dataset import PreparedCase, load_prepared
from btk.unet.devices import resolve_device
from btk.unet.inference import predict_probabilities
from btk.unet.log import plot_log, read_log, write_log
from btk.unet.losses import deep_supervision_loss
from btk.unet.model import DEPTH, NORMS, ModelConfig, UNet3D
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
        """Raise :class:`BtkError` on an invalid or inconsistent setting (before anything is written).

        The hints name the ``btk train`` option of a setting; settings without one have no hint.
        """
        multiple = 2**DEPTH
        for name, option in (("patch", "--patch"), ("validation_patch", None)):
            value = getattr(self, name)
            if not (
                isinstance(value, (tuple, list))
                and len(value) == 3
                and all(_is_int(v) and v > 0 and v % multiple == 0 for v in value)
            ):
                raise InputError(
                    f"{name.replace('_', ' ')} {value} must be three positive multiples of {multiple}",
                    hint=option and f"e.g. {option} 128 or {option} 160,192,128",
                )
        for name, option, low in (
            ("batch_size", "--batch-size", 1),
            ("epochs", "--epochs", 1),
            ("steps_per_epoch", "--steps-per-epoch", 1),
            ("warmup_epochs", "--warmup-epochs", 0),
            ("folds", "--folds", 1),
            ("fold", "--fold", 0),
            ("seed", "--seed", 0),
        ):
            _check_int(name, getattr(self, name), low, option)
        if self.threads is not None:
            _check_int("threads", self.threads, 1, "--threads")
        if self.seed >= 2**32:
            raise InputError(f"seed {self.seed} must be below 2**32", hint="e.g. --seed 0")
        if not 0 <= self.fold < self.folds:
            raise InputError(
                f"fold {self.fold} does not exist with {self.folds} folds",
                hint=f"use --fold 0 to {self.folds - 1} (or more --folds)",
            )
        _check_number("learning rate", self.learning_rate, "--lr 1e-3", above=0)
        _check_number("weight decay", self.weight_decay, None, at_least=0)
        _check_number("tumour probability", self.tumour_probability, "--tumour-probability 0.66", at_least=0, at_most=1)
        augmentation = self.augmentation
        for name in ("flip_probability", "rotation_probability"):
            _check_number(
                f"augmentation {name.replace('_', ' ')}", getattr(augmentation, name), None, at_least=0, at_most=1
            )
        _check_number("augmentation scale", augmentation.scale, None, at_least=0, below=1)
        _check_number("augmentation shift", augmentation.shift, None, at_least=0)
        _check_number(
            "augmentation max rotation degrees", augmentation.max_rotation_degrees, None, at_least=0, at_most=180
        )
        _check_int("width", self.model.width, 1, "--width")
        if self.model.norm not in NORMS:
            raise InputError(f"unknown norm {self.model.norm!r}", hint=f"use --norm {' or --norm '.join(NORMS)}")
        if (self.model.in_channels, self.model.out_channels) != (IN_CHANNELS, OUT_CHANNELS):
            raise InputError(
                f"the model must take {IN_CHANNELS} modalities and give {OUT_CHANNELS} regions, not "
                f"{self.model.in_channels} and {self.model.out_channels}"
            )
        if not isinstance(self.amp, bool):
            raise InputError(f"amp must be true or false, not {self.amp!r}")

    def to_dict(self) -> dict:
        """Plain values (for JSON and checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The inverse of :meth:`to_dict`; a ``ValueError`` if ``values`` does not describe a configuration.

        The result is not checked: call :meth:`check`.
        """
        try:
            values = dict(values)
            values["model"] = ModelConfig(**values["model"])
            values["augmentation"] = Augmentation(**values["augmentation"])
            for name in ("patch", "validation_patch"):
                values[name] = tuple(values[name])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a training configuration ({error.__class__.__name__}: {error})") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, option: str | None) -> None:
    """A :class:`BtkError` unless ``value`` is a whole number of at least ``low``."""
    if not _is_int(value) or value < low:
        raise InputError(
            f"{name.replace('_', ' ')} must be a whole number of at least {low}, not {value!r}",
            hint=option and f"pass {option} {low} or more",
        )


def _check_number(
    name: str,
    value: Any,
    option: str | None,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> None:
    """A :class:`BtkError` unless ``value`` is a finite number within the given bounds; ``option`` is an
    example of the ``btk train`` option that sets it (None if there is none)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (above is None or value > above) and (at_least is None or value >= at_least)
    ok = ok and (below is None or value < below) and (at_most is None or value <= at_most)
    if not ok:
        bounds = " and ".join(
            text
            for text in (
                above is not None and f"above {above:g}",
                at_least is not None and f"at least {at_least:g}",
                below is not None and f"below {below:g}",
                at_most is not None and f"at most {at_most:g}",
            )
            if text
        )
        raise InputError(
            f"the {name} must be a finite number {bounds}, not {value!r}", hint=option and f"e.g. {option}"
        )


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
        raise InputError(
            f"{folds}-fold cross-validation needs at least {folds} cases, found {len(cases)}",
            hint="use fewer folds (--folds 1 trains on all cases without validation)",
        )
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
    scores: dict[str, list[float]] = {region: [] for region in REGIONS}
    for case in cases:
        probabilities = predict_probabilities(
            [model], np.asarray(case.images, dtype=np.float32), patch, overlap=0.25, tta=False, device=device
        )
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
        self.device = resolve_device(device)

    def train(
        self,
        data_dir: str | Path,
        run_dir: str | Path,
        resume: bool = False,
        on_epoch: Callable[[dict[str, float]], bool | None] | None = None,
    ) -> TrainResult:
        """Train (or, with ``resume``, continue the run in ``run_dir``) and return the best checkpoint.

        Args:
            data_dir: A folder of BraTS training cases (see :func:`btk.unet.cases.find_cases`).
            run_dir: The run folder to write (see the module's description).
            resume: Continue the run that ``run_dir/last.pt`` holds, with that run's own settings.
            on_epoch: Called with each epoch's log row once its checkpoints are written; returning
                ``False`` stops the run there (it can be resumed later).

        Returns:
            Where the best checkpoint is, its validation Dice, and how many epochs this call ran.

        Raises:
            BtkError: For a run folder that holds a run already (without ``resume``), nothing or something
                unusable to resume, or a data folder without usable cases. All of these fail before anything
                is written.
        """
        run_dir = Path(run_dir)
        config, state = self._settings(run_dir, resume)
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed_everything(config.seed)

        # Everything that can fail on the options, the data folder or last.pt fails here, before anything
        # is written; the cache is written next, config.json and split.json once it is complete.
        cases = find_cases(Path(data_dir))
        training_cases, validation_cases = split_cases(cases, config.folds, config.fold, config.seed)
        run = self._start(config, state, run_dir)
        logger.info(
            "Training on %d cases, validating on %d (fold %d of %d), device %s",
            len(training_cases),
            len(validation_cases),
            config.fold,
            config.folds,
            self.device,
        )
        training, validation = _prepare_run_folder(cases, training_cases, validation_cases, config, run_dir)

        run.model.train()
        with progress() as bar:
            task = bar.add_task(
                "Training",
                total=config.epochs * config.steps_per_epoch,
                completed=run.first_epoch * config.steps_per_epoch,
            )
            for epoch in range(run.first_epoch, config.epochs):
                started = time.monotonic()
                losses = self._train_epoch(run, training, config, lambda: bar.advance(task))
                row = self._end_epoch(run, epoch, losses, validation, config, run_dir, started)
                if on_epoch is not None and on_epoch(row) is False:
                    return TrainResult(run_dir, run_dir / "best.pt", run.best_dice, epoch + 1 - run.first_epoch)
        return TrainResult(run_dir, run_dir / "best.pt", run.best_dice, config.epochs - run.first_epoch)

    def _settings(self, run_dir: Path, resume: bool) -> tuple[TrainConfig, dict | None]:
        """The settings to train with and, when resuming, the checked state of ``run_dir/last.pt``."""
        state = _resume_state(run_dir) if resume else None
        if state is None and (run_dir / "last.pt").exists():
            raise OutputExistsError(
                "the run folder holds a run already",
                path=run_dir,
                hint="pass --resume to continue it, or choose another folder",
            )
        config = state["config"] if state else self.config
        if state and config != self.config:
            logger.info("Resuming with the run's own settings (config.json); other options are ignored")
        return config, state

    def _start(self, config: TrainConfig, state: dict | None, run_dir: Path) -> _Run:
        """A fresh model, optimiser, schedule and random generators, or those of the run being resumed."""
        model = (state["model"] if state else UNet3D(config.model)).to(self.device)
        optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        total_steps = config.epochs * config.steps_per_epoch
        warmup_steps = max(1, config.warmup_epochs * config.steps_per_epoch)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: learning_rate_factor(step, warmup_steps, total_steps)
        )
        amp = config.amp and self.device.startswith("cuda")
        run = _Run(
            model,
            optimiser,
            scheduler,
            torch.amp.GradScaler("cuda", enabled=amp),
            amp,
            np.random.default_rng(config.seed),
            torch.Generator().manual_seed(config.seed),
        )
        if state:
            _restore(state, run.optimiser, run.scheduler, run.scaler, run.rng, run.generator)
            run.first_epoch, run.best_score, run.best_dice = state["epoch"] + 1, state["best_score"], state["best_dice"]
            run.rows = read_log(run_dir / "log.csv")[: run.first_epoch]
            logger.info("Resuming at epoch %d of %d", run.first_epoch + 1, config.epochs)
        return run

    def _train_epoch(
        self, run: _Run, training: list[PreparedCase], config: TrainConfig, advance: Callable[[], None]
    ) -> list[float]:
        """One epoch of optimiser steps on augmented patches; the loss of each step."""
        losses = []
        for _ in range(config.steps_per_epoch):
            images, regions = sample_batch(
                training, config.batch_size, config.patch, config.tumour_probability, run.rng
            )
            images_t = torch.from_numpy(images).to(self.device)
            regions_t = torch.from_numpy(regions.astype(np.float32)).to(self.device)
            images_t, regions_t = augment(images_t, regions_t, config.augmentation, run.generator)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=run.amp):
                loss = deep_supervision_loss(run.model(images_t), regions_t)
            run.optimiser.zero_grad(set_to_none=True)
            run.scaler.scale(loss).backward()
            run.scaler.step(run.optimiser)
            run.scaler.update()
            run.scheduler.step()
            losses.append(loss.item())
            advance()
        return losses

    def _end_epoch(
        self,
        run: _Run,
        epoch: int,
        losses: list[float],
        validation: list[PreparedCase],
        config: TrainConfig,
        run_dir: Path,
        started: float,
    ) -> dict:
        """Validate, write the checkpoints, the log and its plot, show the epoch; return its log row."""
        scores = validate(run.model, validation, config.validation_patch, self.device) if validation else {}
        row = {
            "epoch": epoch + 1,
            "step": (epoch + 1) * config.steps_per_epoch,
            "learning_rate": run.scheduler.get_last_lr()[0],
            "train_loss": float(np.mean(losses)),
            **{f"dice_{r}": v for r, v in scores.items()},
            "seconds": time.monotonic() - started,
        }
        run.rows.append(row)
        _save_checkpoints(run, config, epoch, scores, run_dir)
        write_log(run.rows, run_dir / "log.csv")
        plot_log(run.rows, run_dir / "training.png")
        shown = "  ".join(f"{r} {v:.3f}" for r, v in scores.items())
        console.print(f"epoch {epoch + 1}/{config.epochs}  loss {row['train_loss']:.4f}  {shown}", highlight=False)
        return row


@dataclass
class _Run:
    """What a training run carries from epoch to epoch."""

    model: UNet3D
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    amp: bool
    rng: np.random.Generator
    generator: torch.Generator
    rows: list[dict] = field(default_factory=list)
    first_epoch: int = 0
    best_score: float = -1.0
    best_dice: dict[str, float] = field(default_factory=dict)


def _prepare_run_folder(
    cases: list[Case], training_cases: list[Case], validation_cases: list[Case], config: TrainConfig, run_dir: Path
) -> tuple[list[PreparedCase], list[PreparedCase]]:
    """Prepare every case into the run's cache, then write config.json and split.json; the prepared
    training and validation cases."""
    prepared = load_prepared(cases, run_dir / "cache")
    by_name = {p.name: p for p in prepared}
    save_json(config.to_dict(), run_dir / "config.json")
    save_json(
        {
            "training": [c.name for c in training_cases],
            "validation": [c.name for c in validation_cases],
            "folds": config.folds,
            "fold": config.fold,
            "naming": sorted({c.naming for c in cases}),
        },
        run_dir / "split.json",
    )
    return [by_name[c.name] for c in training_cases], [by_name[c.name] for c in validation_cases]


def _save_checkpoints(run: _Run, config: TrainConfig, epoch: int, scores: dict[str, float], run_dir: Path) -> None:
    """``best.pt`` when the epoch's mean validation Dice is the best so far (every epoch is, without
    validation), and ``last.pt`` with everything needed to resume after this epoch."""
    score = float(np.mean(list(scores.values()))) if scores else float(epoch)
    if score > run.best_score:
        run.best_score, run.best_dice = score, scores
        save_checkpoint(
            run_dir / "best.pt",
            run.model,
            {"train_config": config.to_dict(), "epoch": epoch, "validation_dice": scores},
        )
    save_checkpoint(
        run_dir / "last.pt",
        run.model,
        {
            "train_config": config.to_dict(),
            "epoch": epoch,
            "optimiser": run.optimiser.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "numpy_rng": run.rng.bit_generator.state,
            "torch_rng": run.generator.get_state(),
            "torch_global_rng": torch.get_rng_state(),
            "best_score": run.best_score,
            "best_dice": run.best_dice,
            "validation_dice": scores,
        },
    )


#: What to do about an unusable last.pt.
RESUME_HINT = (
    "last.pt must be the file `btk train` wrote in this run folder; restore it from a backup, or start "
    "a new run in another folder (without --resume)"
)

#: What last.pt holds besides the model (see :func:`_save_checkpoints`).
RESUME_KEYS = (
    "train_config",
    "epoch",
    "optimiser",
    "scheduler",
    "scaler",
    "numpy_rng",
    "torch_rng",
    "torch_global_rng",
    "best_score",
    "best_dice",
)


def _resume_state(run_dir: Path) -> dict:
    """The checked training state in ``run_dir/last.pt``, with its ``config`` and ``model`` rebuilt."""
    last = run_dir / "last.pt"
    if not last.exists():
        raise InputError(
            "nothing to resume: no last.pt in the run folder", path=run_dir, hint="start a new run without --resume"
        )
    state = read_checkpoint(last, hint=RESUME_HINT)
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        raise InputError(f"last.pt holds no training state (missing {', '.join(missing)})", path=last, hint=RESUME_HINT)
    try:
        config = TrainConfig.from_dict(state["train_config"])
        config.check()
    except (ValueError, BtkError) as error:
        problem = error.problem if isinstance(error, BtkError) else str(error)
        raise InputError(f"last.pt's training settings are invalid: {problem}", path=last, hint=RESUME_HINT) from None
    model = model_from_checkpoint(state, last, hint=RESUME_HINT)
    if model.config != config.model:
        raise InputError(
            "last.pt's model differs from the one its training settings describe", path=last, hint=RESUME_HINT
        )
    epoch, best_score, best_dice = state["epoch"], state["best_score"], state["best_dice"]
    if not (
        _is_int(epoch)
        and 0 <= epoch < config.epochs
        and isinstance(best_score, (int, float))
        and isinstance(best_dice, dict)
        and all(isinstance(v, float) for v in best_dice.values())
    ):
        raise InputError(
            f"last.pt's progress is invalid (epoch {epoch!r} of {config.epochs})", path=last, hint=RESUME_HINT
        )
    return {**state, "config": config, "model": model, "path": last}


def _restore(
    state: dict,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> None:
    """Put the optimiser, schedule, gradient scaler and random generators back where last.pt left them.

    The saved optimiser, schedule and scaler states must have the layout of fresh ones (same types and
    lengths; keys may differ between torch releases) and may not replace the scheduler's methods, so a
    damaged file fails here, not in the middle of training.
    """
    problem = (
        _optimiser_state_problem(state["optimiser"], optimiser)
        or _layout_problem(state["scheduler"], scheduler.state_dict(), "schedule")
        or next(
            (
                f"the schedule's {key!r} is not a setting"
                for key in state["scheduler"]
                if key not in scheduler.state_dict() and hasattr(scheduler, key)
            ),
            None,
        )
        or _layout_problem(state["scaler"], scaler.state_dict(), "gradient scaler")
    )
    if problem is None:
        try:
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
            if state["scaler"]:  # empty when saved without mixed precision (on the CPU)
                scaler.load_state_dict(state["scaler"])
            rng.bit_generator.state = state["numpy_rng"]
            generator.set_state(state["torch_rng"])
            torch.set_rng_state(state["torch_global_rng"])
            return
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            problem = f"{error.__class__.__name__}: {str(error)[:200]}"
    raise InputError(
        f"last.pt's training state does not fit its model ({problem})", path=state["path"], hint=RESUME_HINT
    )


def _layout_problem(saved: object, fresh: object, where: str) -> str | None:
    """How ``saved`` differs in layout from ``fresh`` (None if it does not): types, list lengths, tensor
    shapes; keys present in only one of two dicts are allowed; anything goes where ``fresh`` is None."""
    if fresh is None:
        return None
    if isinstance(fresh, dict):
        if not isinstance(saved, dict):
            return f"the {where} is not a dictionary"
        return next(
            (
                found
                for key in saved.keys() & fresh.keys()
                if (found := _layout_problem(saved[key], fresh[key], f"{where}'s {key}"))
            ),
            None,
        )
    if isinstance(fresh, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(fresh):
            return f"the {where} has another length"
        return next(
            (
                found
                for item, expected in zip(saved, fresh, strict=True)
                if (found := _layout_problem(item, expected, where))
            ),
            None,
        )
    if isinstance(fresh, torch.Tensor):
        ok = isinstance(saved, torch.Tensor) and saved.shape == fresh.shape
    elif isinstance(fresh, bool) or not isinstance(fresh, (int, float)):
        ok = type(saved) is type(fresh)
    else:  # a number: an int stands for a float, never the other way round
        ok = _is_int(saved) or (isinstance(saved, float) and isinstance(fresh, float) and math.isfinite(saved))
    return None if ok else f"the {where} is a {type(saved).__name__}, expected a {type(fresh).__name__}"


def _optimiser_state_problem(saved: object, optimiser: torch.optim.Optimizer) -> str | None:
    """What keeps ``saved`` from being ``optimiser``'s state (None if nothing): the layout of its parameter
    groups, one entry per parameter, moment tensors shaped like their parameters."""
    parameters = [p for group in optimiser.param_groups for p in group["params"]]
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        return "its optimiser state is not AdamW's"
    problem = _layout_problem(saved.get("param_groups"), optimiser.state_dict()["param_groups"], "optimiser")
    if problem:
        return problem
    for index, values in saved["state"].items():
        if not (_is_int(index) and 0 <= index < len(parameters) and isinstance(values, dict)):
            return f"its optimiser state names parameter {index!r}, which the model does not have"
        for name, value in values.items():
            if not isinstance(value, torch.Tensor) or (value.ndim and value.shape != parameters[index].shape):
                return f"its optimiser's {name} of parameter {index} does not match the parameter"
    return None
