"""The fusion methods, one class each, behind one lookup (:func:`fusion_method`).

Each class fuses candidates stacked along the first axis, as label maps (:meth:`FusionMethod.fuse_labels`)
or as the label convention's regions (:meth:`FusionMethod.fuse_regions`), and says what it accepts: weights, SIMPLE's
parameters, region-wise fusion. The default flavour's methods share btk's tie rule and its region-wise
fusion; the BraTS Toolkit flavour's reproduce BraTS Toolkit (see :mod:`btk.fusion.compat`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from btk.errors import InputError
from btk.fusion import compat
from btk.fusion.names import BRATS_TOOLKIT, DEFAULT, MAV, SIMPLE, STAPLE, flavour_name, method_name
from btk.fusion.parameters import SimpleParameters
from btk.fusion.simple import simple
from btk.fusion.staple import staple
from btk.fusion.voting import plurality_vote
from btk.labels import REGIONS, LabelConvention

#: STAPLE runs on the box around all candidates' tumour voxels widened by this margin (voxels), so that its
#: estimates do not depend on how much empty field of view surrounds the head.
STAPLE_MARGIN = 10

#: A fused label map and what the method reports about it (iterations, kept candidates, ...).
Fused = tuple[np.ndarray, dict]


class FusionMethod(ABC):
    """One fusion method of one flavour.

    Args:
        parameters: SIMPLE's parameters; only the methods that take them (:attr:`tunable`) accept any.

    Raises:
        BtkError: For parameters given to a method that takes none.
    """

    name: ClassVar[str]
    """The method's name (one of :data:`btk.fusion.names.METHODS`)."""
    flavour: ClassVar[str]
    """The flavour the method belongs to (one of :data:`btk.fusion.names.FLAVOURS`)."""
    tunable: ClassVar[bool] = False
    """Whether it takes :class:`~btk.fusion.parameters.SimpleParameters`."""
    margin: ClassVar[int] = 0
    """Voxels of background kept around the candidates' tumour box when fusing inside it."""

    def __init__(self, parameters: SimpleParameters | None = None):
        if parameters is not None and not self.tunable:
            raise InputError(
                "threshold, increment and max_iterations only apply to SIMPLE in the default flavour",
                hint="drop them, or use --method simple with --flavour default",
            )
        self.parameters = parameters or SimpleParameters()

    def check_weights(self, weighted: bool) -> None:  # noqa: B027 (a hook: only STAPLE refuses weights)
        """Refuse user weights if the method takes none (every method but STAPLE takes them).

        Raises:
            BtkError: When ``weighted`` and the method takes no weights.
        """

    def recorded_parameters(self) -> dict:
        """The parameters the fusion ran with, as its sidecar records them (empty for a method without any)."""
        return self.parameters.to_dict() if self.tunable else {}

    @abstractmethod
    def fuse_labels(self, stack: np.ndarray, weights: np.ndarray, convention: LabelConvention) -> Fused:
        """Fuse label maps label by label.

        Args:
            stack: The candidates' label maps, stacked along the first axis.
            weights: One weight per candidate.
            convention: The candidates' label convention.

        Returns:
            The fused label map and the method's details.
        """

    @abstractmethod
    def fuse_regions(
        self,
        stack: np.ndarray,
        weights: np.ndarray,
        convention: LabelConvention,
        sources: Mapping[str, Sequence[int]] | None = None,
    ) -> Fused:
        """Fuse the convention's regions as binary masks and rebuild a nested label map from them.

        Args:
            stack: The candidates' label maps, stacked along the first axis.
            weights: One weight per candidate.
            convention: The candidates' label convention.
            sources: Region -> the candidates (indices) it is built from: the one candidate's mask, or the
                fusion of several; a region not named is fused from all candidates.

        Returns:
            The fused label map and the method's details, per region.

        Raises:
            BtkError: When the method cannot fuse regions (in this convention).
        """


class DefaultMethod(FusionMethod):
    """A method of the default flavour: btk's tie rule, and region-wise fusion in every convention."""

    flavour = DEFAULT

    @abstractmethod
    def fuse_once(self, stack: np.ndarray, weights: np.ndarray, order: Sequence[int]) -> Fused:
        """One fusion of label maps, or of binary masks with ``order == (0, 1)``.

        ``order`` lists background first, then the labels: ties go to the one that comes first.
        """

    def fuse_labels(self, stack: np.ndarray, weights: np.ndarray, convention: LabelConvention) -> Fused:
        return self.fuse_once(stack, weights, convention.tie_order())

    def fuse_regions(
        self,
        stack: np.ndarray,
        weights: np.ndarray,
        convention: LabelConvention,
        sources: Mapping[str, Sequence[int]] | None = None,
    ) -> Fused:
        fused: dict[str, np.ndarray] = {}
        details: dict[str, dict] = {}
        for region in convention.region_names:
            chosen = list((sources or {}).get(region, range(len(stack))))
            masks = convention.region_mask(stack[chosen], region)
            if len(chosen) == 1:  # taken from one candidate as it is
                fused[region], details[region] = masks[0], {}
                continue
            binary, details[region] = self.fuse_once(masks.astype(np.uint8), weights[chosen], (0, 1))
            fused[region] = binary == 1
        return convention.from_regions(fused), details


class MajorityVoting(DefaultMethod):
    """Weighted plurality voting in which background votes like any label (:func:`btk.fusion.voting.plurality_vote`)."""

    name = MAV

    def fuse_once(self, stack: np.ndarray, weights: np.ndarray, order: Sequence[int]) -> Fused:
        return plurality_vote(stack, weights, order), {}


class Simple(DefaultMethod):
    """SIMPLE with a dropout that works and a growing threshold (:func:`btk.fusion.simple.simple`)."""

    name = SIMPLE
    tunable = True

    def fuse_once(self, stack: np.ndarray, weights: np.ndarray, order: Sequence[int]) -> Fused:
        fused, trace = simple(stack, weights, order, self.parameters)
        return fused, {
            "iterations": len(trace.iterations),
            "converged": trace.converged,
            "kept": trace.kept,
            "history": trace.iterations,
        }


class Staple(DefaultMethod):
    """STAPLE through SimpleITK (:func:`btk.fusion.staple.staple`); it estimates each candidate's reliability."""

    name = STAPLE
    margin = STAPLE_MARGIN

    def check_weights(self, weighted: bool) -> None:
        if weighted:
            raise InputError(
                "STAPLE estimates each candidate's reliability itself and takes no weights",
                hint="drop the weights or use mav or simple",
            )

    def fuse_once(self, stack: np.ndarray, weights: np.ndarray, order: Sequence[int]) -> Fused:
        return staple(stack, order), {}


class BratsToolkitMajorityVoting(FusionMethod):
    """BraTS Toolkit's majority voting (:func:`btk.fusion.compat.majority_vote`); it fuses labels only."""

    name = MAV
    flavour = BRATS_TOOLKIT

    def fuse_labels(self, stack: np.ndarray, weights: np.ndarray, convention: LabelConvention) -> Fused:
        return compat.majority_vote(stack, weights), {}

    def fuse_regions(
        self,
        stack: np.ndarray,
        weights: np.ndarray,
        convention: LabelConvention,
        sources: Mapping[str, Sequence[int]] | None = None,
    ) -> Fused:
        raise InputError(
            "BraTS Toolkit fuses regions with SIMPLE only", hint="use --method simple, or --flavour default"
        )


class BratsToolkitSimple(FusionMethod):
    """BraTS Toolkit's SIMPLE (:func:`btk.fusion.compat.simple`), whose dropout never fires; fixed parameters."""

    name = SIMPLE
    flavour = BRATS_TOOLKIT

    def fuse_labels(self, stack: np.ndarray, weights: np.ndarray, convention: LabelConvention) -> Fused:
        fused, iterations = compat.simple(stack, weights)
        return fused, {"iterations": iterations}

    def fuse_regions(
        self,
        stack: np.ndarray,
        weights: np.ndarray,
        convention: LabelConvention,
        sources: Mapping[str, Sequence[int]] | None = None,
    ) -> Fused:
        if sources:
            raise InputError(
                "BraTS Toolkit cannot take regions from chosen candidates", hint="use --flavour default with --take"
            )
        if convention.region_names != REGIONS:
            raise InputError(
                f"the brats-toolkit flavour's region-wise fusion only knows the 0/1/2/4 convention (BraTS 2017-2021), "
                f"not {convention.name}",
                hint="use the default flavour, which fuses regions in every convention",
            )
        fused, iterations = compat.region_simple(stack, weights)
        return fused, {"iterations": iterations}


#: Every fusion method, by flavour and name.
REGISTRY: dict[tuple[str, str], type[FusionMethod]] = {
    (method.flavour, method.name): method
    for method in (MajorityVoting, Simple, Staple, BratsToolkitMajorityVoting, BratsToolkitSimple)
}


def fusion_method(name: str, flavour: str = DEFAULT, parameters: SimpleParameters | None = None) -> FusionMethod:
    """The fusion method ``name`` of ``flavour``, ready to fuse.

    Args:
        name: ``"mav"``, ``"simple"`` or ``"staple"`` (any case).
        flavour: ``"default"`` or ``"brats-toolkit"`` (alias ``"btk"``).
        parameters: SIMPLE's parameters (the default flavour's SIMPLE only); None for the defaults.

    Returns:
        The method.

    Raises:
        BtkError: For an unknown method or flavour, a method the flavour lacks (BraTS Toolkit has no STAPLE),
            or parameters given to a method that takes none; each message lists the choices.
    """
    method, flavour = method_name(name), flavour_name(flavour)
    if (flavour, method) not in REGISTRY:
        available = [known for known_flavour, known in REGISTRY if known_flavour == flavour]
        raise InputError(
            f"the {flavour} flavour has no {method}",
            hint=f"use --method {' or '.join(available)} with this flavour, or --flavour {DEFAULT}",
        )
    return REGISTRY[flavour, method](parameters)
