"""How well each candidate agrees with the consensus, and ensemble failure alarms over a cohort.

The alarms follow Kofler et al., "Robust, primitive, and unsupervised quality estimation for segmentation
ensembles" (Front. Neurosci. 2021): the agreement (Dice with the consensus) of an algorithm is unusually low
for a case when it falls below ``median - alpha * MAD`` of that algorithm's agreement over the cohort
(MAD: the median absolute deviation from the median, unscaled, and at least :data:`MIN_MAD`). A case with
many alarms deserves a look.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from btk.errors import InputError, MissingFileError
from btk.evaluation.metrics import dice, empty_hd95_penalty_mm, hd95_against
from btk.fusion.names import DEFAULT_ALPHA
from btk.io import is_nifti, save_json
from btk.labels import LabelConvention, get_convention

#: Floor of the MAD (in Dice): an algorithm that agrees identically on most cases has a MAD of 0, and
#: without a floor any dip below its median, however small, would raise an alarm.
MIN_MAD = 0.01


@dataclass(frozen=True)
class CandidateAgreement:
    """Dice and HD95 (mm) of one candidate against the consensus, per region."""

    name: str
    dice: dict[str, float]
    hd95_mm: dict[str, float]


@dataclass
class AgreementReport:
    """The agreement of every candidate of one case with that case's consensus."""

    case: str
    convention: str
    candidates: list[CandidateAgreement]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: object) -> AgreementReport:
        """Rebuild a report from :meth:`to_dict`'s form; raises ``ValueError`` saying what is wrong."""
        if not isinstance(payload, dict) or not {"case", "convention", "candidates"} <= payload.keys():
            raise ValueError("it lacks the case, convention and candidates of an agreement report")
        case, convention, candidates = payload["case"], payload["convention"], payload["candidates"]
        if not isinstance(case, str) or not case or not isinstance(convention, str):
            raise ValueError("its case and convention must be text")
        if not isinstance(candidates, list) or not candidates:
            raise ValueError("its candidates must be a non-empty list")
        try:
            regions = get_convention(convention).region_names
        except InputError as error:
            raise ValueError(error.problem) from None
        return cls(case, convention, [_candidate_agreement(index, c, regions) for index, c in enumerate(candidates)])

    def save(self, path: str | Path) -> None:
        """Write the report as JSON, atomically."""
        save_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> AgreementReport:
        """Read a report written by :meth:`save`, with one clear error for anything else."""
        path = Path(path)
        hint = "pass the <case>_agreement.json files that btk fuse writes, or folders holding them"
        if not path.exists():
            raise MissingFileError("file not found", path=path, hint="check the path")
        if path.is_dir():
            raise InputError("is a folder where an agreement report was expected", path=path, hint=hint)
        if is_nifti(path):
            raise InputError("is an image, not an agreement report", path=path, hint=hint)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError("not an agreement report: not a text file", path=path, hint=hint) from None
        except OSError as error:
            raise InputError(f"cannot read the file ({error.strerror})", path=path) from None
        try:
            return cls.from_dict(json.loads(text, parse_constant=_refuse_constant))
        except (ValueError, RecursionError) as error:  # json.JSONDecodeError is a ValueError
            detail = "not valid JSON" if isinstance(error, (json.JSONDecodeError, RecursionError)) else str(error)
            if path.with_name(f"{path.stem}_agreement.json").exists():
                hint = f"this looks like a fusion's provenance sidecar; pass {path.stem}_agreement.json"
            raise InputError(f"not an agreement report written by btk fuse: {detail}", path=path, hint=hint) from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid score")


def _candidate_agreement(index: int, payload: object, regions: tuple[str, ...]) -> CandidateAgreement:
    """One candidate's scores, checked: a name, and a number for every region (Dice in [0, 1], HD95 >= 0)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str) or not payload["name"]:
        raise ValueError(f"candidate {index + 1} has no name")
    name = payload["name"]
    scores = {}
    for key, label, upper in (("dice", "Dice", 1.0), ("hd95_mm", "HD95", float("inf"))):
        values = payload.get(key)
        if not isinstance(values, dict):
            raise ValueError(f"candidate {name!r} has no {label} per region")
        checked = {}
        for region in regions:
            value = values.get(region)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"candidate {name!r} has no numeric {label} for {region}")
            if not 0.0 <= value <= upper:
                raise ValueError(f"candidate {name!r} has a {label} for {region} outside [0, {upper:g}]")
            checked[region] = float(value)
        scores[key] = checked
    return CandidateAgreement(name, scores["dice"], scores["hd95_mm"])


def agreement_report(
    candidates: list[np.ndarray],
    names: list[str],
    consensus: np.ndarray,
    convention: LabelConvention,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    case: str = "case",
) -> AgreementReport:
    """Score each candidate against the consensus per region (Dice, HD95 in mm)."""
    names_of_regions = convention.region_names
    penalty = empty_hd95_penalty_mm(consensus.shape, spacing)
    dice_scores: list[dict[str, float]] = [{} for _ in candidates]
    hd95_scores: list[dict[str, float]] = [{} for _ in candidates]
    for region in names_of_regions:
        reference = convention.region_mask(consensus, region)
        masks = [convention.region_mask(candidate, region) for candidate in candidates]
        for index, (mask, distance) in enumerate(zip(masks, hd95_against(reference, masks, spacing, penalty))):
            dice_scores[index][region] = dice(mask, reference)
            hd95_scores[index][region] = distance
    scores = [CandidateAgreement(name, d, h) for name, d, h in zip(names, dice_scores, hd95_scores)]
    return AgreementReport(case, convention.name, scores)


@dataclass(frozen=True)
class Alarm:
    """An algorithm whose agreement on one case and region fell below its cohort threshold."""

    case: str
    algorithm: str
    region: str
    dice: float
    threshold: float


@dataclass
class AlarmReport:
    """Per-algorithm thresholds over a cohort and the alarms they raise, counted per case."""

    alpha: float
    thresholds: dict[str, dict[str, float]]
    alarms: list[Alarm]
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "alpha": self.alpha,
            "rule": "alarm when dice < median - alpha * max(MAD, min_mad) of the algorithm's dice over the cohort",
            "min_mad": MIN_MAD,
            "thresholds": self.thresholds,
            "alarms_per_case": self.counts,
            "alarms": [asdict(alarm) for alarm in self.alarms],
        }

    def save(self, path: str | Path) -> None:
        """Write the report as JSON, atomically."""
        save_json(self.to_dict(), path)


def ensemble_alarms(reports: list[AgreementReport], alpha: float = DEFAULT_ALPHA) -> AlarmReport:
    """Compute each algorithm's threshold per region over the cohort and the alarms of every case."""
    if len(reports) < 3:
        raise InputError(
            f"alarms need the agreement reports of at least 3 cases, got {len(reports)}",
            hint="a threshold from the median and MAD of fewer cases means nothing",
        )
    if not np.isfinite(alpha) or alpha < 0:
        raise InputError(f"alpha must be a finite number, not negative, got {alpha}")
    cases = [report.case for report in reports]
    if len(set(cases)) != len(cases):
        raise InputError(
            "two agreement reports are for the same case: "
            + ", ".join(sorted({c for c in cases if cases.count(c) > 1}))
        )
    scores: dict[str, dict[str, dict[str, float]]] = {}  # algorithm -> region -> case -> dice
    for report in reports:
        for candidate in report.candidates:
            for region, value in candidate.dice.items():
                scores.setdefault(candidate.name, {}).setdefault(region, {})[report.case] = value
    thresholds: dict[str, dict[str, float]] = {}
    alarms: list[Alarm] = []
    for algorithm, regions in sorted(scores.items()):
        for region, per_case in regions.items():
            values = np.fromiter(per_case.values(), dtype=float)
            median = float(np.median(values))
            mad = max(float(np.median(np.abs(values - median))), MIN_MAD)
            threshold = median - alpha * mad
            thresholds.setdefault(algorithm, {})[region] = threshold
            alarms.extend(
                Alarm(case, algorithm, region, value, threshold)
                for case, value in per_case.items()
                if value < threshold
            )
    counts = {case: sum(1 for alarm in alarms if alarm.case == case) for case in cases}
    return AlarmReport(alpha, thresholds, alarms, counts)
