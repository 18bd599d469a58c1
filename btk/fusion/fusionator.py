"""The Fusionator and its result: load the candidates, settle their label convention, fuse, score the agreement."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from btk import __version__
from btk.console import logger
from btk.errors import BtkError, InputError
from btk.fusion.candidates import CandidateLike, Candidates, load_candidates, normalise_weights
from btk.fusion.methods import FusionMethod, fusion_method
from btk.fusion.names import DEFAULT, MAV, flavour_name
from btk.fusion.outputs import check_outputs, publish, sidecar_paths
from btk.fusion.parameters import SimpleParameters
from btk.io import NIFTI_STAMP, save_json, save_label_map
from btk.labels import LabelConvention, common_convention, convert, get_convention
from btk.nifti import NiftiHeader

if TYPE_CHECKING:
    import nibabel as nib

    from btk.fusion.agreement import AgreementReport


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
    sources: dict[str, list[str]] = field(default_factory=dict)
    """Region -> the candidates it was taken from (one) or fused from (several), for the regions chosen with
    ``take``; the other regions were fused from every candidate."""

    def to_nifti(self) -> nib.Nifti1Image:
        """The fused label map as a ``uint8`` NIfTI image with the candidates' affine and header: the image
        :meth:`save` writes."""
        import nibabel as nib

        raw = self._reference().label_map_file(self.segmentation, NIFTI_STAMP.encode())
        image_class = nib.Nifti2Image if self._reference().version == 2 else nib.Nifti1Image
        return image_class.from_bytes(raw)

    def sidecar(self, output_sha256: str | None = None) -> dict:
        """Provenance of the fusion: method, flavour, parameters, candidates with checksums and label
        conventions, conversions, timings, and (given when saving) the written image's checksum."""
        conventions = self.candidate_conventions or [self.convention.name] * len(self.candidates)
        payload = {
            "btk_version": __version__,
            "method": self.method,
            "flavour": self.flavour,
            "mode": "regions" if self.regions else "labels",
            **({"region_sources": self.sources} if self.sources else {}),
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

        Args:
            path: The fused image to write (a NIfTI name).
            force: Replace outputs that btk wrote before.

        Returns:
            ``path``.

        Raises:
            OutputExistsError: For an output that exists and may not be replaced (without ``force``, or not btk's).
            OutputError: For an output in the way of the inputs, or a folder that cannot be written.
        """
        path = check_outputs(path, force, self.candidates.paths)
        sidecar, agreement = sidecar_paths(path)
        reference = self._reference()

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

    def _reference(self) -> NiftiHeader:
        """The header whose geometry the result gets (a unit grid for candidates given as arrays)."""
        return self.candidates.reference or NiftiHeader.unit_grid(self.segmentation.shape)


@dataclass(frozen=True)
class _Settled:
    """The candidates' label convention after conversion, each candidate's own, and the conversions made."""

    convention: LabelConvention
    conventions: list[str]
    conversions: dict[str, str]


class Fusionator:
    """Fuses candidate segmentations of one exam into a consensus.

    Args:
        flavour: ``"default"`` (the methods done right) or ``"brats-toolkit"`` (BraTS Toolkit, voxel for voxel;
            ``"btk"`` is accepted as an alias).
        labels: The label convention of the candidates (``"brats2021"``, ``"brats2023"``,
            ``"brats2024-post"``); when not given, detected for each candidate on its own (see :meth:`fuse`).

    Raises:
        InputError: For an unknown flavour or label convention.
    """

    def __init__(self, flavour: str = DEFAULT, labels: str | LabelConvention | None = None):
        self.flavour = flavour_name(flavour)
        self.labels = get_convention(labels) if labels is not None else None

    def fuse(
        self,
        candidates: Sequence[CandidateLike],
        method: str = MAV,
        weights: Sequence[float] | Mapping[str, float] | None = None,
        regions: bool = False,
        names: Sequence[str] | None = None,
        case: str | None = None,
        parameters: SimpleParameters | None = None,
        agreement: bool = True,
        allow_identical: bool = False,
        take: Mapping[str, str | Sequence[str]] | None = None,
    ) -> FusionResult:
        """Fuse candidates (files, folders of files, nibabel images or arrays) into one label map.

        Without a convention given, each candidate's is detected on its own; candidates in BraTS 2021 and
        BraTS 2023 labels are converted to one of them (logged, and listed in the sidecar), and candidates
        whose conventions cannot be told apart are refused (see :func:`btk.labels.common_convention`).

        Args:
            candidates: Two or more label maps on the same grid.
            method: ``"mav"``, ``"simple"`` or ``"staple"``.
            weights: One non-negative weight per candidate (a list, or a mapping from candidate name);
                not supported by STAPLE.
            regions: Fuse the label convention's regions (WT, TC, ET for gliomas) instead of the labels.
            names: Candidate names for reports (default: file names without suffix).
            case: Case name for the agreement report (default: ``"case"``).
            parameters: SIMPLE's dropout threshold, its growth and the iteration limit (default flavour's
                SIMPLE only); None for the defaults.
            agreement: Score every candidate against the consensus (Dice and HD95 per region).
            allow_identical: Accept candidate files with the same content (see :func:`load_candidates`).
            take: Region -> the candidate (by name) whose mask of that region is taken as it is, or several
                whose masks are fused with ``method``: e.g. ``{"WT": "a", "TC": ["b", "c"]}`` (oedema from one
                pipeline, the core from two others). Implies region-wise fusion; the regions not named are
                fused from every candidate, and the label map is rebuilt nested from them.

        Returns:
            The fused label map with its provenance and, if asked, the candidates' agreement with it.

        Raises:
            MissingFileError: For a candidate file that does not exist.
            InputError: For unreadable or mismatched candidates, bad weights, labels foreign to the convention,
                an unknown method, or a method that refuses the options given.
        """
        timings: dict[str, float] = {}
        regions = regions or bool(take)
        fusion = fusion_method(method, self.flavour, parameters)
        fusion.check_weights(weights is not None)
        started = time.perf_counter()
        loaded = load_candidates(candidates, names, allow_identical)
        timings["load"] = time.perf_counter() - started
        logger.info(
            "Fusing %d candidates with %s (%s flavour, %s)",
            len(loaded),
            fusion.name,
            self.flavour,
            "regions" if regions else "labels",
        )
        user_weights = normalise_weights(weights, loaded.names)
        any_label = np.asarray(loaded.stack.any(axis=0))  # where any candidate holds a label
        settled = self._settle_convention(loaded, any_label)
        sources = _region_sources(take or {}, settled.convention, loaded.names)

        started = time.perf_counter()
        fused, details = _fuse_in_box(
            fusion, loaded.stack, any_label, user_weights, settled.convention, regions, sources
        )
        timings["fuse"] = time.perf_counter() - started

        result = FusionResult(
            fused,
            fusion.name,
            self.flavour,
            regions,
            settled.convention,
            loaded,
            user_weights,
            fusion.recorded_parameters(),
            details,
            timings,
            candidate_conventions=settled.conventions,
            conversions=settled.conversions,
            sources={region: [loaded.names[i] for i in chosen] for region, chosen in sources.items()},
        )
        if agreement:
            started = time.perf_counter()
            result.agreement = _agreement(loaded.stack, any_label, fused, settled.convention, loaded, case)
            timings["agreement"] = time.perf_counter() - started
        return result

    def _settle_convention(self, loaded: Candidates, any_label: np.ndarray) -> _Settled:
        """The convention to fuse in, with every candidate converted to it (in place) and checked against it.

        Only the box around the labelled voxels is looked at: outside it all candidates say 0, which every
        convention knows.
        """
        labelled = _box(any_label, 0)
        labelled_stack = loaded.stack[_all_candidates(labelled)] if labelled else loaded.stack[:, :0]  # a view
        if self.labels is not None:
            settled = _Settled(self.labels, [self.labels.name] * len(loaded), {})
        else:
            settled = _convert_to_common(labelled_stack, loaded)
        _validate_labels(labelled_stack, settled.convention, loaded)
        return settled


def _convert_to_common(labelled_stack: np.ndarray, loaded: Candidates) -> _Settled:
    """Detect each candidate's convention and convert those that differ to the common one (in
    ``labelled_stack``, a view into the candidates' stack)."""
    common = common_convention(list(labelled_stack), loaded.names)
    target = common.target
    conversions = {}
    for index, source in common.conversions.items():
        _validate_labels(labelled_stack[index : index + 1], source, loaded, index)
        labelled_stack[index] = convert(labelled_stack[index], source, target)
        conversions[loaded.names[index]] = f"{source.name} -> {target.name}"
    if conversions:
        logger.warning(
            "The candidates use different label conventions; converted to %s: %s",
            target.name,
            ", ".join(f"{name} ({change.split(' ->')[0]})" for name, change in conversions.items()),
        )
    return _Settled(target, [(detected or target).name for detected in common.detected], conversions)


def _region_sources(
    take: Mapping[str, str | Sequence[str]], convention: LabelConvention, names: Sequence[str]
) -> dict[str, list[int]]:
    """``take`` with each candidate name replaced by its index, checked: regions of the convention,
    candidates that were given, each named once per region."""
    sources = {}
    for region, chosen in take.items():
        convention.region(region)  # an InputError listing the convention's regions
        wanted = [chosen] if isinstance(chosen, str) else list(chosen)
        unknown = [name for name in wanted if name not in names]
        if unknown or not wanted:
            raise InputError(
                f"the region {region} is to be taken from {', '.join(map(repr, unknown)) or 'no candidate'}, "
                "which is not a candidate",
                hint=f"name candidates as they are called: {', '.join(names)}",
            )
        if len(set(wanted)) != len(wanted):
            raise InputError(f"a candidate is named twice for the region {region}: {', '.join(wanted)}")
        sources[region] = [names.index(name) for name in wanted]
    return sources


def _fuse_in_box(
    fusion: FusionMethod,
    stack: np.ndarray,
    any_label: np.ndarray,
    weights: np.ndarray,
    convention: LabelConvention,
    regions: bool,
    sources: Mapping[str, Sequence[int]],
) -> tuple[np.ndarray, dict]:
    """Fuse inside the box around the candidates' labelled voxels (widened by the method's margin); outside
    it every candidate, and so the consensus, says background."""
    fused = np.zeros(stack.shape[1:], dtype=np.uint8, order="F")
    box = _box(any_label, fusion.margin)
    if box is None:
        return fused, {}
    cropped = stack[_all_candidates(box)]
    if regions:
        fused[box], details = fusion.fuse_regions(cropped, weights, convention, sources)
    else:
        fused[box], details = fusion.fuse_labels(cropped, weights, convention)
    return fused, details


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
    from btk.fusion.agreement import agreement_report  # with its metrics, only where a report is asked for

    reference = candidates.reference
    spacing = tuple(reference.zooms[:3]) if reference else (1.0, 1.0, 1.0)
    box = _box(any_label | (fused > 0), 1) or (slice(0, 1),) * fused.ndim
    # compact copies of the box: the metrics' many passes then run over contiguous memory, not the whole volumes'
    cropped = list(np.ascontiguousarray(stack[_all_candidates(box)]))
    consensus = np.ascontiguousarray(fused[box])
    return agreement_report(cropped, candidates.names, consensus, convention, spacing, case or "case")


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
                raise error.replace(hint="pass the right convention with --labels, or fix the file") from None


def _all_candidates(box: tuple[slice, ...]) -> tuple[slice, ...]:
    """The index of ``box`` in every candidate of a stack (candidates along the first axis)."""
    return (slice(None), *box)


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
