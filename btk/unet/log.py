"""The training log: one CSV row per epoch and a PNG plot of the loss and validation Dice."""

from __future__ import annotations

import csv
from pathlib import Path

from btk.errors import InputError
from btk.io import atomic_path
from btk.labels import REGIONS

_LOG_HINT = "log.csv must be the file `btk train` wrote: restore it, or delete it to start the log afresh"
COLUMNS = ("epoch", "step", "learning_rate", "train_loss", *(f"dice_{r}" for r in REGIONS), "seconds")


def read_log(path: Path) -> list[dict[str, float]]:
    """The rows written so far (empty if there is no log yet)."""
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [
                {key: float(value) if value else float("nan") for key, value in row.items()}
                for row in csv.DictReader(handle)
            ]
    except (OSError, UnicodeDecodeError, ValueError, TypeError, csv.Error) as error:
        raise InputError(
            f"cannot read the training log ({error.__class__.__name__})", path=path, hint=_LOG_HINT
        ) from None
    if any(set(row) != set(COLUMNS) for row in rows):
        raise InputError("the training log does not have btk's columns", path=path, hint=_LOG_HINT)
    return rows


def write_log(rows: list[dict[str, float]], path: Path) -> None:
    """Write all rows atomically (a resumed run rewrites the log it continues)."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{row[key]:.6g}" if key in row else "") for key in COLUMNS})


def plot_log(rows: list[dict[str, float]], path: Path) -> None:
    """Training loss and validation Dice per region against the epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    epochs = [row["epoch"] for row in rows]
    figure, (loss_axis, dice_axis) = pyplot.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [row["train_loss"] for row in rows], marker=".")
    loss_axis.set(xlabel="epoch", ylabel="training loss (Dice + focal)", title="Loss")
    for region in REGIONS:
        dice_axis.plot(epochs, [row.get(f"dice_{region}", float("nan")) for row in rows], marker=".", label=region)
    dice_axis.set(xlabel="epoch", ylabel="Dice", ylim=(0, 1), title="Validation Dice")
    dice_axis.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=80)
    pyplot.close(figure)
