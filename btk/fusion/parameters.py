"""SIMPLE's parameters, checked once where they are made (light: no numpy)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from btk.errors import InputError

DEFAULT_THRESHOLD = 0.05
DEFAULT_INCREMENT = 0.07
DEFAULT_MAX_ITERATIONS = 25


@dataclass(frozen=True)
class SimpleParameters:
    """How SIMPLE drops poor candidates, and when it stops (default flavour only).

    At iteration ``k`` (from 0), a candidate scoring below ``(threshold + k * increment) * best score`` is
    dropped; SIMPLE stops when an iteration changes nothing, or after ``max_iterations``.

    Args:
        threshold: The dropout threshold at the first iteration, a fraction of the best score (0 to 1).
        increment: How much the threshold grows per iteration (0 or more).
        max_iterations: The iteration limit (1 or more).

    Raises:
        BtkError: For a value outside these ranges (or not a finite number).
    """

    threshold: float = DEFAULT_THRESHOLD
    increment: float = DEFAULT_INCREMENT
    max_iterations: int = DEFAULT_MAX_ITERATIONS

    def __post_init__(self) -> None:
        try:
            threshold, increment, iterations = float(self.threshold), float(self.increment), int(self.max_iterations)
        except (TypeError, ValueError):
            raise InputError(f"SIMPLE's parameters must be numbers, got {self.to_dict()}") from None
        if not (0 <= threshold <= 1 and math.isfinite(increment) and increment >= 0 and iterations >= 1):
            raise InputError(
                f"SIMPLE needs 0 <= threshold <= 1, increment >= 0 and max_iterations >= 1, got {self.to_dict()}"
            )
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "increment", increment)
        object.__setattr__(self, "max_iterations", iterations)

    @classmethod
    def from_options(
        cls, threshold: float | None = None, increment: float | None = None, max_iterations: int | None = None
    ) -> SimpleParameters | None:
        """The parameters a user gave (the defaults for those not given), or None if none was given.

        Args:
            threshold: As in the class; None for the default.
            increment: As in the class; None for the default.
            max_iterations: As in the class; None for the default.

        Returns:
            None when all three are None, so that "not given" stays distinguishable from "given the defaults".
        """
        given = {"threshold": threshold, "increment": increment, "max_iterations": max_iterations}
        chosen: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
        return cls(**chosen) if chosen else None

    def to_dict(self) -> dict[str, float | int]:
        """The parameters by name, as the fusion's sidecar records them."""
        return asdict(self)
