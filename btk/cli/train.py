"""``btk train`` and ``btk unet-predict``: train btk's 3D U-Net on BraTS cases and segment with it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from btk.cli import common
from btk.console import console
from btk.errors import InputError


def parse_size(text: str) -> tuple[int, int, int]:
    """``'128'`` -> (128, 128, 128); ``'160,192,128'`` -> (160, 192, 128)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise InputError(
            f"cannot read the size {text!r}", hint="write one number (128) or three (160,192,128)"
        ) from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise InputError(f"a size has one or three numbers, not {len(values)} ({text!r})")
    return values[0], values[1], values[2]


def train(
    data_dir: Annotated[
        Path, typer.Argument(help="Folder of BraTS case folders (2020 or 2023 naming, with _seg/-seg).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder: checkpoints, log.csv, training.png.")],
    width: Annotated[
        int, typer.Option(help="Channels of the first stage (16 or 48 are usual).", parser=common.PositiveInt)
    ] = 16,
    norm: Annotated[str, typer.Option(help="Normalisation layers: group or instance.")] = "group",
    residual: Annotated[bool, typer.Option("--residual/--plain", help="Residual convolution blocks.")] = False,
    deep_supervision: Annotated[bool, typer.Option(help="Deep supervision at 1/2 and 1/4 resolution.")] = True,
    patch: Annotated[str, typer.Option(help="Training patch size: '128' or '160,192,128' (multiples of 8).")] = "128",
    batch_size: Annotated[int, typer.Option(help="Patches per step.", parser=common.PositiveInt)] = 2,
    epochs: Annotated[int, typer.Option(help="Number of epochs.", parser=common.PositiveInt)] = 300,
    steps_per_epoch: Annotated[int, typer.Option(help="Optimiser steps per epoch.", parser=common.PositiveInt)] = 250,
    learning_rate: Annotated[
        float, typer.Option("--lr", help="Peak learning rate of AdamW.", parser=common.PositiveFloat)
    ] = 1e-3,
    warmup_epochs: Annotated[
        int, typer.Option(help="Epochs of linear warm-up before the cosine decay.", parser=common.NonNegativeInt)
    ] = 5,
    tumour_probability: Annotated[
        float, typer.Option(help="Share of patches centred on tumour.", parser=common.Probability)
    ] = 0.66,
    folds: Annotated[
        int,
        typer.Option(
            help="Cross-validation folds (1: all cases for training, no validation).", parser=common.PositiveInt
        ),
    ] = 5,
    fold: Annotated[int, typer.Option(help="The fold held out for validation.", parser=common.NonNegativeInt)] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.", parser=common.BoundedInt(0, 2**32 - 1))] = 0,
    threads: Annotated[
        Optional[int], typer.Option(help="Torch CPU threads (default: torch's choice).", parser=common.PositiveInt)
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if available).")] = None,
    amp: Annotated[bool, typer.Option(help="Mixed precision on GPU.")] = True,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in OUTPUT from its last.pt.")] = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Train btk's 3D U-Net on BraTS cases (no pretrained BraTS weights ship; this makes them).

    Writes OUTPUT/best.pt (best mean validation Dice), last.pt (resumable), log.csv, training.png, config.json
    and split.json. Train all folds (--fold 0..4) and pass all best.pt files to inference for a self-ensemble.
    """
    common.set_verbose(verbose)
    from btk.io import refuse_overlap
    from btk.unet.augment import Augmentation
    from btk.unet.model import ModelConfig
    from btk.unet.training import TrainConfig, Trainer

    refuse_overlap(output, [data_dir])  # the run folder never goes into (or around) the training data
    config = TrainConfig(
        model=ModelConfig(width=width, norm=norm, residual=residual, deep_supervision=deep_supervision),
        augmentation=Augmentation(),
        patch=parse_size(patch),
        batch_size=batch_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        learning_rate=learning_rate,
        warmup_epochs=warmup_epochs,
        tumour_probability=tumour_probability,
        folds=folds,
        fold=fold,
        seed=seed,
        threads=threads,
        amp=amp,
    )
    result = Trainer(config, device=device).train(data_dir, output, resume=resume)
    shown = ", ".join(f"{region} {value:.3f}" for region, value in result.best_dice.items()) or "no validation"
    console.print(f"Best checkpoint: {result.best_checkpoint} ({shown})", highlight=False)


def unet_predict(
    case: Annotated[Path, typer.Argument(help="A case folder: <case>-t1n/-t1c/-t2w/-t2f.nii.gz (or 2020 naming).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Label map to write (.nii.gz).")],
    weights: Annotated[
        list[Path], typer.Option("--weights", "-w", help="Checkpoint(s) or folder(s) of *.pt; several = ensemble.")
    ],
    tta: Annotated[bool, typer.Option(help="Test-time augmentation by the 8 mirror flips.")] = True,
    overlap: Annotated[
        float,
        typer.Option(
            help="Overlap of neighbouring sliding windows (0 to <1).", parser=common.FiniteFloat(0, 1, max_open=True)
        ),
    ] = 0.5,
    patch: Annotated[str, typer.Option(help="Sliding-window size: '128' or three numbers.")] = "128",
    labels: Annotated[
        str, typer.Option(help="Output label convention: brats2023, brats2021, brats2024-post.")
    ] = "brats2023",
    threads: Annotated[
        Optional[int],
        typer.Option(help="Torch CPU threads (default: CPUs available, at most 8).", parser=common.PositiveInt),
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda ... (default: cuda if available).")] = None,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Segment one case with trained U-Net checkpoints (sliding window, flip TTA, ensemble)."""
    common.set_verbose(verbose)
    from btk.io import guard_output, require_nifti_name, save_label_map
    from btk.labels import get_convention
    from btk.unet.cases import read_case
    from btk.unet.inference import Predictor

    require_nifti_name(output)
    guard_output(output, [case, *weights], force=force)
    convention = get_convention(labels)
    found = read_case(case, need_segmentation=False)
    predictor = Predictor(weights, tta=tta, overlap=overlap, patch=parse_size(patch), threads=threads, device=device)
    with console.status(Text(f"Segmenting {found.name} with {len(predictor.models)} checkpoint(s)")):  # Text: no markup
        label_map, reference = predictor.segment_files(found.images, convention)
    save_label_map(label_map, reference, output)
    console.print(f"Wrote {output}", highlight=False)
