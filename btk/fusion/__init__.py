"""The Fusionator: a consensus of several candidate segmentations.

>>> from btk.fusion import Fusionator
>>> result = Fusionator().fuse(["a.nii.gz", "b.nii.gz", "c.nii.gz"], method="simple")
>>> result.save("fused.nii.gz")        # also writes fused.json and fused_agreement.json

Methods: ``mav`` (majority voting), ``simple`` (SIMPLE) and ``staple`` (STAPLE); label-wise, or region-wise
(``regions=True``: WT, TC and ET fused as binary masks and rebuilt into a label map that is nested by
construction). Two flavours:

``default``
    The methods done right. Majority voting is a weighted plurality vote in which background votes like
    any label. SIMPLE drops poor candidates with a growing threshold and filters their weights with them;
    two empty masks have Dice 1. One tie rule for every method: a tie goes to background first, then to
    the outer class (ED before NCR before ET), so ties never grow the tumour.
``btk``
    BraTS Toolkit's Fusionator (``brats-toolkit`` 1.0.18) reproduced voxel for voxel, defects included;
    see :mod:`btk.fusion.compat` for every difference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from btk import __version__
from btk.console import logger
from btk.errors import BtkError
from btk.fusion import compat
from btk.fusion.agreement import AgreementReport, agreement_report
from btk.fusion.candidates import CandidateLike, Candidates, load_candidates, normalise_weights
from btk.fusion.outputs import check_outputs, publish, sidecar_paths
from btk.fusion.simple import DEFAULT_INCREMENT, DEFAULT_MAX_ITERATIONS, DEFAULT_THRESHOLD, simple
from btk.fusion.staple import staple
from btk.fusion.voting import plurality_vote
from btk.io import save_json, save_label_map
from btk.labels import REGIONS, LabelConvention, common_convention, convert, get_convention

__all__ = ["FLAVOURS", "METHODS", "FusionResult", "Fusionator", "sidecar_paths"]

METHODS = ("mav", "simple", "staple")
FLAVOURS = ("default", "btk")
_FLAVOUR_ALIASES = {"brats-toolkit": "btk", "bratstoolkit": "btk"}
#: STAPLE runs on the box around all candidates' tumour voxels widened by this margin (voxels), so that its
#: estimates do not depend on how much empty field of view surrounds the head.
STAPLE_MARGIN = 10


@dataclass
class FusionResult:
    """A fused segmentation with everything needed to reproduce and judge it."""

    segmentation: np.ndarray
    method: str
    flavour: str
    regions: bool
    convention: LabelConvention
    candidates: Candidates
    weights: np.ndarray
    parameters: dict
    details: dict
    timings: dict[str, float] = field(default_factory=dict)
    agreement: AgreementReport | None = None
    candidate_conventions: list[str] = field(default_factory=list)
    """The convention each candidate was found in (before any conversion)."""
    conversions: dict[str, str] = field(default_factory=dict)
    """Candidate name -> ``"brats2021 -> brats2023"`` for each candidate renumbered before fusing."""

    def to_nifti(self) -> nib.Nifti1Image:
        """The fused label map as a ``uint8`` NIfTI image with the candidates' affine and header."""
        reference = self.candidates.reference or nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), np.eye(4))
        header = reference.header.copy()
        header.set_data_dtype(np.uint8)
        return nib.Nifti1Image(self.segmentation.astype(np.uint8), reference.affine, header)

    def sidecar(self, output_sha256: str | None = None) -> dict:
        """Provenance of the fusion: method, flavour, parameters, candidates with checksums and label
        conventions, conversions, timings, and (given when saving) the written image's checksum."""
        conventions = self.candidate_conventions or [self.convention.name] * len(self.candidates)
        payload = {
            "btk_version": __version__,
            "method": self.method,
            "flavour": self.flavour,
            "mode": "regions" if self.regions else "labels",
            "label_convention": self.convention.name,
            "label_conversions": self.conversions,
            "parameters": self.parameters,
            "candidates": [
                {**described, "label_convention": convention, "weight": float(weight)}
                for described, convention, weight in zip(self.candidates.describe(), conventions, self.weights)
            ],
            "details": self.details,
            "timings_s": {name: round(seconds, 4) for name, seconds in self.timings.items()},
            "label_volumes_voxels": {
                str(label): int(np.count_nonzero(self.segmentation == label)) for label in self.convention.labels[1:]
            },
        }
        if output_sha256 is not None:
            payload["output"] = {"sha256": output_sha256}
        return payload

    def save(self, path: str | Path, force: bool = False) -> Path:
        """Write the fused image and, beside it, ``<name>.json`` (the sidecar) and ``<name>_agreement.json``.

        All three are published together (see :mod:`btk.fusion.outputs`): a sidecar on disk always
        describes the image beside it, and a full disk leaves nothing. Refuses to replace any of the three
        unless ``force``, and never replaces a candidate.
        """
        path = check_outputs(path, force, self.candidates.paths)
        sidecar, agreement = sidecar_paths(path)
        reference = self.candidates.reference or nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), np.eye(4))

        def sidecars(image_sha256: str) -> list[tuple[Path, Callable[[Path], None]]]:
            written: list[tuple[Path, Callable[[Path], None]]] = []
            if self.agreement is not None:
                written.append((agreement, self.agreement.save))
            written.append((sidecar, lambda target: save_json(self.sidecar(image_sha256), target)))
            return written

        if self.agreement is None:
            agreement.unlink(missing_ok=True)  # a stale report of an earlier fusion (only there with force)
        publish(path, lambda target: save_label_map(self.segmentation, reference, target), sidecars)
        return path


class Fusionator:
    """Fuses candidate segmentations of one case into a consensus.

    Args:
        flavour: ``"default"`` (the methods done right) or ``"btk"`` (BraTS Toolkit, voxel for voxel).
        labels: The label convention of the candidates (``"brats2021"``, ``"brats2023"``,
            ``"brats2024-post"``); when not given, detected for each candidate on its own (see :meth:`fuse`).
    """

    def __init__(self, flavour: str = "default", labels: str | LabelConvention | None = None):
        flavour = _FLAVOUR_ALIASES.get(flavour.lower(), flavour.lower())
        if flavour not in FLAVOURS:
            raise BtkError(f"unknown flavour {flavour!r}", hint=f"use one of {', '.join(FLAVOURS)}")
        self.flavour = flavour
        self.labels = get_convention(labels) if labels is not None else None

    def fuse(
        self,
        candidates: Sequence[CandidateLike],
        method: str = "mav",
        weights: Sequence[float] | Mapping[str, float] | None = None,
        regions: bool = False,
        names: Sequence[str] | None = None,
        case: str | None = None,
        threshold: float | None = None,
        increment: float | None = None,
        max_iterations: int | None = None,
        agreement: bool = True,
        allow_identical: bool = False,
    ) -> FusionResult:
        """Fuse candidates (files, folders of files, nibabel images or arrays) into one label map.

        Args:
            candidates: Two or more label maps on the same grid.
            method: ``"mav"``, ``"simple"`` or ``"staple"``.
            weights: One non-negative weight per candidate (a list, or a mapping from candidate name);
                not supported by STAPLE.
            regions: Fuse the regions WT, TC, ET instead of the labels.
            names: Candidate names for reports (default: file names without suffix).
            case: Case name for the agreement report (default: ``"case"``).
            threshold, increment, max_iterations: SIMPLE's dropout threshold at the first iteration,
                its growth per iteration, and the iteration limit (default flavour only).
            agreement: Score every candidate against the consensus (Dice and HD95 per region).
            allow_identical: Accept candidate files with the same content (see :func:`load_candidates`).

        Without a convention given, each candidate's is detected on its own; candidates in BraTS 2021 and
        BraTS 2023 labels are converted to one of them (logged, and listed in the sidecar), and candidates
        whose conventions cannot be told apart are refused (see :func:`btk.labels.common_convention`).
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        loaded = load_candidates(candidates, names, allow_identical)
        timings["load"] = time.perf_counter() - started
        logger.info("Fusing %d candidates with %s (%s flavour, %s)", len(loaded), method, self.flavour,
                    "regions" if regions else "labels")
        method = method.lower()
        if method not in METHODS:
            raise BtkError(f"unknown fusion method {method!r}", hint=f"use one of {', '.join(METHODS)}")
        user_weights = normalise_weights(weights, loaded.names)
        parameters = self._parameters(method, weights is not None, threshold, increment, max_iterations)
        stack = loaded.stack
        any_label = stack.any(axis=0)
        labelled = _box(any_label, 0)  # outside it all candidates say 0, which every convention knows
        labelled_stack = stack[(slice(None), *labelled)] if labelled else stack[:, :0]  # a view: writes reach stack
        convention, conventions, conversions = self._convention(labelled_stack, loaded)
        _validate_labels(labelled_stack, convention, loaded)

        started = time.perf_counter()
        box = _box(any_label, STAPLE_MARGIN if method == "staple" else 0)
        fused = np.zeros(loaded.shape, dtype=np.uint8, order="F")
        details: dict = {}
        if box is not None:
            cropped = stack[(slice(None), *box)]
            if self.flavour == "btk":
                fused[box], details = self._fuse_btk(cropped, user_weights, method, regions)
            elif regions:
                fused[box], details = self._fuse_regions(cropped, user_weights, method, convention, parameters)
            else:
                fused[box], details = _fuse_once(cropped, user_weights, method, convention.tie_order(), parameters)
        timings["fuse"] = time.perf_counter() - started

        result = FusionResult(
            fused, method, self.flavour, regions, convention, loaded, user_weights, parameters, details, timings,
            candidate_conventions=conventions, conversions=conversions,
        )
        if agreement:
            started = time.perf_counter()
            result.agreement = _agreement(stack, any_label, fused, convention, loaded, case)
            timings["agreement"] = time.perf_counter() - started
        return result

    def _convention(
        self, labelled_stack: np.ndarray, loaded: Candidates
    ) -> tuple[LabelConvention, list[str], dict[str, str]]:
        """The convention to fuse in, each candidate's, and the conversions made (in ``labelled_stack``)."""
        if self.labels is not None:
            return self.labels, [self.labels.name] * len(loaded), {}
        common = common_convention(list(labelled_stack), loaded.names)
        target = common.target
        conversions = {}
        for index, source in common.conversions.items():
            _validate_labels(labelled_stack[index : index + 1], source, loaded, index)
            labelled_stack[index] = convert(labelled_stack[index], source, target)
            conversions[loaded.names[index]] = f"{source.name} -> {target.name}"
        if conversions:
            logger.warning(
                "The candidates use different label conventions; converted to %s: %s", target.name,
                ", ".join(f"{name} ({change.split(' ->')[0]})" for name, change in conversions.items()),
            )
        conventions = [(detected or target).name for detected in common.detected]
        return target, conventions, conversions

    def _parameters(
        self, method: str, weighted: bool, threshold: float | None, increment: float | None, max_iterations: int | None
    ) -> dict:
        given = {k: v for k, v in {"threshold": threshold, "increment": increment, "max_iterations": max_iterations}.items() if v is not None}
        if given and (method != "simple" or self.flavour == "btk"):
            raise BtkError(
                f"{', '.join(given)} only apply to SIMPLE in the default flavour",
                hint="drop them, or use --method simple with --flavour default",
            )
        if method == "staple" and weighted:
            raise BtkError("STAPLE estimates each candidate's reliability itself and takes no weights",
                           hint="drop the weights or use mav or simple")
        if method == "staple" and self.flavour == "btk":
            raise BtkError("BraTS Toolkit has no STAPLE, so the btk flavour has none", hint="use --flavour default")
        if method != "simple" or self.flavour == "btk":
            return {}
        parameters = {
            "threshold": DEFAULT_THRESHOLD if threshold is None else float(threshold),
            "increment": DEFAULT_INCREMENT if increment is None else float(increment),
            "max_iterations": DEFAULT_MAX_ITERATIONS if max_iterations is None else int(max_iterations),
        }
        if not 0 <= parameters["threshold"] <= 1 or parameters["increment"] < 0 or parameters["max_iterations"] < 1:
            raise BtkError(f"SIMPLE needs 0 <= threshold <= 1, increment >= 0 and max_iterations >= 1, got {parameters}")
        return parameters

    @staticmethod
    def _fuse_btk(stack: np.ndarray, weights: np.ndarray, method: str, regions: bool) -> tuple[np.ndarray, dict]:
        if regions and method != "simple":
            raise BtkError("BraTS Toolkit fuses regions with SIMPLE only", hint="use --method simple, or --flavour default")
        if regions:
            fused, iterations = compat.region_simple(stack, weights)
        elif method == "simple":
            fused, iterations = compat.simple(stack, weights)
        else:
            return compat.majority_vote(stack, weights), {}
        return fused, {"iterations": iterations}

    @staticmethod
    def _fuse_regions(
        stack: np.ndarray, weights: np.ndarray, method: str, convention: LabelConvention, parameters: dict
    ) -> tuple[np.ndarray, dict]:
        masks = {region: convention.region_mask(stack, region) for region in REGIONS}
        fused, details = {}, {}
        for region, region_stack in masks.items():
            binary, details[region] = _fuse_once(region_stack.astype(np.uint8), weights, method, (0, 1), parameters)
            fused[region] = binary == 1
        result = convention.from_regions(fused["WT"], fused["TC"], fused["ET"])
        if "RC" in convention.tissues.values():  # the resection cavity is no region: fuse it on its own
            cavity = convention.label_of("RC")
            binary, details["RC"] = _fuse_once((stack == cavity).astype(np.uint8), weights, method, (0, 1), parameters)
            result[(binary == 1) & (result == 0)] = cavity
        return result, details


def _agreement(
    stack: np.ndarray,
    any_label: np.ndarray,
    fused: np.ndarray,
    convention: LabelConvention,
    candidates: Candidates,
    case: str | None,
) -> AgreementReport:
    """Each candidate's agreement with the consensus, computed inside the tumour box only (widened by one
    voxel for the surfaces): Dice and HD95 do not change outside it."""
    reference = candidates.reference
    spacing = tuple(float(s) for s in reference.header.get_zooms()[:3]) if reference else (1.0, 1.0, 1.0)
    box = _box(any_label | (fused > 0), 1) or (slice(0, 1),) * fused.ndim
    return agreement_report(list(stack[(slice(None), *box)]), candidates.names, fused[box], convention, spacing, case or "case")


def _validate_labels(stack: np.ndarray, convention: LabelConvention, candidates: Candidates, first: int = 0) -> None:
    """Check the candidates ``first, first + 1, ...`` in ``stack`` at once; on failure, name the first
    candidate with a foreign label."""
    try:
        convention.validate(stack)
    except BtkError:
        for array, name, path in zip(stack, candidates.names[first:], candidates.paths[first:]):
            try:
                convention.validate(array, path or name)
            except BtkError as error:
                raise BtkError(
                    error.problem, path=error.path, hint="pass the right convention with --labels, or fix the file"
                ) from None


def _fuse_once(
    stack: np.ndarray, weights: np.ndarray, method: str, order: Sequence[int], parameters: dict
) -> tuple[np.ndarray, dict]:
    """One default-flavour fusion of label maps (or binary masks with ``order == (0, 1)``)."""
    if method == "mav":
        return plurality_vote(stack, weights, order), {}
    if method == "staple":
        return staple(stack, order), {}
    fused, trace = simple(stack, weights, order, **parameters)
    return fused, {"iterations": len(trace.iterations), "converged": trace.converged, "kept": trace.kept,
                   "history": trace.iterations}


def _box(any_label: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    """The box around the true voxels of ``any_label`` (plus ``margin``), or None if there are none.

    Given the voxels where any candidate holds a label: outside the box every candidate says background, so
    every method says background there too.
    """
    if not any_label.any():
        return None
    box = []
    for axis in range(any_label.ndim):
        others = tuple(a for a in range(any_label.ndim) if a != axis)
        indices = np.flatnonzero(any_label.any(axis=others))
        box.append(slice(max(int(indices[0]) - margin, 0), int(indices[-1]) + 1 + margin))
    return tuple(box)
