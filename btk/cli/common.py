"""Options, option parsers and state shared by the sub-commands."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from btk.console import configure_logging
from btk.errors import InputError

VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Say more about what is happening; show tracebacks on errors.")
]
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
FastOption = Annotated[
    bool,
    typer.Option(
        "--fast/--accurate",
        help="HD-BET brain extraction: fast (1 fold, no mirroring; about 1 min on CPU) or accurate "
        "(5 folds x 8 mirrorings; tens of minutes on CPU, minutes on a GPU).",
    ),
]

#: ``--atlas``: the space to preprocess into (names from :data:`btk.spaces.SPACES` and ``NATIVE_SPACES``).
ATLAS_HELP = (
    "Space: brats-sri24 (BraTS SRI24 grid, 240 x 240 x 155: every track but the two below), brats-mni152 "
    "(MNI152 1 mm, 182 x 218 x 182: BraTS 2024-2025 adult glioma, pre & post treatment) or native-t1c (no "
    "registration: the T1c alone on its own grid, defaced: BraTS 2024-2025 meningioma radiotherapy)."
)


class FiniteFloat:
    """Parser of a float option: a finite number, optionally within bounds, checked when the command line is read.

    ``nan``, ``inf``, ``-inf`` and numbers too large for a float (``1e999``) are refused, so that no such value
    reaches a computation or a JSON file. Use it as ``typer.Option(parser=FiniteFloat(0, 1))``.

    Args:
        minimum, maximum: The bounds (``None``: unbounded on that side).
        min_open, max_open: Whether the bound itself is excluded (``FiniteFloat(0, min_open=True)``: > 0).
    """

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        *,
        min_open: bool = False,
        max_open: bool = False,
    ):
        self.minimum, self.maximum = minimum, maximum
        self.min_open, self.max_open = min_open, max_open

    def __call__(self, value: str | float) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"{value!r} is not a number; give {self.describe()}") from None
        if not math.isfinite(number):
            raise typer.BadParameter(f"{value!r} is not a finite number; give {self.describe()}")
        if not self._within(number):
            raise typer.BadParameter(f"{value!r} is out of range; give {self.describe()}")
        return number

    def _within(self, number: float) -> bool:
        low, high = self.minimum, self.maximum
        if low is not None and (number < low or (self.min_open and number == low)):
            return False
        return high is None or not (number > high or (self.max_open and number == high))

    def describe(self) -> str:
        """The accepted values in words, e.g. ``'a number from 0 to 1'`` or ``'a number > 0'``."""
        if self.minimum is not None and self.maximum is not None and not (self.min_open or self.max_open):
            return f"a number from {self.minimum:g} to {self.maximum:g}"
        bounds = [f"{'>' if self.min_open else '>='} {self.minimum:g}"] if self.minimum is not None else []
        if self.maximum is not None:
            bounds.append(f"{'<' if self.max_open else '<='} {self.maximum:g}")
        return f"a number {' and '.join(bounds)}" if bounds else "a finite number"


class BoundedInt:
    """Parser of an integer option, optionally within bounds: ``typer.Option(parser=BoundedInt(1))`` for >= 1."""

    def __init__(self, minimum: int | None = None, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, value: str | int) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"{value!r} is not a whole number; give {self.describe()}") from None
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise typer.BadParameter(f"{value!r} is out of range; give {self.describe()}")
        return number

    def describe(self) -> str:
        """The accepted values in words, e.g. ``'a whole number >= 1'``."""
        if self.minimum is not None and self.maximum is not None:
            return f"a whole number from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"a whole number >= {self.minimum}"
        return f"a whole number <= {self.maximum}" if self.maximum is not None else "a whole number"


#: Parsers of the usual cases: counts (workers, threads, epochs ...) and quantities that must be above zero.
PositiveInt = BoundedInt(1)
NonNegativeInt = BoundedInt(0)
PositiveFloat = FiniteFloat(0, min_open=True)
Probability = FiniteFloat(0, 1)


def nifti_output(path: Path | None) -> Path | None:
    """Callback of an ``-o`` option naming an image: :func:`btk.io.require_nifti_name`, imported only when it runs.

    Args:
        path: The option's value (``None`` when not given).

    Returns:
        ``path`` unchanged.

    Raises:
        BtkError: For a name that does not end in ``.nii.gz`` or ``.nii``.
    """
    from btk.io import require_nifti_name  # numpy and nibabel: not needed to read the command line

    return require_nifti_name(path)


_state = {"verbose": False}


def set_verbose(verbose: bool) -> None:
    """Turn verbose logging on (it stays on once any level of the command line asked for it)."""
    if verbose and not _state["verbose"]:
        _state["verbose"] = True
        configure_logging(verbose=True)


def is_verbose() -> bool:
    """Whether ``--verbose`` was given."""
    return _state["verbose"]


def parse_take(items: list[str]) -> dict[str, list[str]]:
    """``['WT=a', 'TC=b+c']`` -> ``{'WT': ['a'], 'TC': ['b', 'c']}``; a region given twice is an error."""
    take: dict[str, list[str]] = {}
    for item in items:
        region, _, sources = item.partition("=")
        names = [name.strip() for name in sources.split("+")]
        if not region.strip() or not all(names):
            raise InputError(f"cannot read --take {item!r}", hint="write REGION=SOURCE, e.g. --take WT=isen-20")
        if region.strip() in take:
            raise InputError(f"--take names the region {region.strip()} twice", hint="give each region once")
        take[region.strip()] = names
    return take
