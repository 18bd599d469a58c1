"""SIMPLE, the selective and iterative method for performance level estimation (Langerak et al.,
IEEE TMI 2010), as btk's default flavour does it.

1. The first estimate is the weighted plurality vote of all candidates (user weights).
2. Each kept candidate is scored against the estimate: the mean Dice over the labels (two empty masks
   agree: Dice 1).
3. Candidates scoring below ``threshold_k * best score`` are dropped for good, together with their
   weights. The threshold grows every iteration: ``threshold_k = threshold + k * increment``. The best
   candidate is never dropped. (The parameters: :class:`btk.fusion.parameters.SimpleParameters`.)
4. The new estimate is the plurality vote of the kept candidates, each weighted by user weight x score.
5. Stop when an iteration changes neither the estimate nor the kept candidates, or after
   ``max_iterations``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from btk.fusion.parameters import SimpleParameters
from btk.fusion.voting import plurality_vote


@dataclass
class SimpleTrace:
    """What SIMPLE did: per iteration the threshold, each candidate's score, and who was kept."""

    iterations: list[dict] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    converged: bool = False


def performance(candidate: np.ndarray, estimate: np.ndarray, labels: Sequence[int]) -> float:
    """Mean Dice of a candidate against the estimate over ``labels`` (both empty counts as 1)."""
    from btk.evaluation.metrics import dice  # the evaluation package costs a majority vote's start-up 40 ms

    return float(np.mean([dice(candidate == label, estimate == label) for label in labels]))


def simple(
    stack: np.ndarray,
    weights: np.ndarray,
    order: Sequence[int],
    parameters: SimpleParameters = SimpleParameters(),
) -> tuple[np.ndarray, SimpleTrace]:
    """Fuse the candidates stacked along the first axis.

    Args:
        stack: The candidates' label maps (or binary masks), stacked along the first axis.
        weights: One weight per candidate; candidates of weight 0 take no part.
        order: Background first, then the labels (btk's tie rule: see :func:`plurality_vote`).
        parameters: The dropout threshold, its growth and the iteration limit.

    Returns:
        The estimate and what SIMPLE did to reach it.
    """
    scored_labels = list(order[1:])
    kept = [i for i, weight in enumerate(weights) if weight > 0]
    estimate = plurality_vote(stack[kept], weights[kept], order)
    trace = SimpleTrace()
    for iteration in range(parameters.max_iterations):
        scores = {i: performance(stack[i], estimate, scored_labels) for i in kept}
        level = parameters.threshold + iteration * parameters.increment
        best = max(scores.values())
        best_index = max(kept, key=lambda i: scores[i])
        survivors = [i for i in kept if scores[i] >= level * best or i == best_index]
        trace.iterations.append(
            {"threshold": level * best, "scores": {int(i): s for i, s in scores.items()}, "kept": survivors}
        )
        new_weights = np.array([weights[i] * max(scores[i], 1e-12) for i in survivors])
        new_estimate = plurality_vote(stack[survivors], new_weights, order)
        unchanged = survivors == kept and np.array_equal(new_estimate, estimate)
        kept, estimate = survivors, new_estimate
        if unchanged:
            trace.converged = True
            break
    trace.kept = kept
    return estimate, trace
