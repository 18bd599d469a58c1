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

from btk.errors import BtkError
from btk.evaluation.metrics import dice, hd95
from btk.io import save_json
from btk.labels import REGIONS, LabelConvention

#: Default ``alpha`` of the alarm threshold ``median - alpha * MAD``.
DEFAULT_ALPHA = 3.0
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
    def from_dict(cls, payload: dict) -> AgreementReport:
        return cls(payload["case"], payload["convention"], [CandidateAgreement(**c) for c in payload["candidates"]])

    def save(self, path: str | Path) -> None:
        """Write the report as JSON, atomically."""
        save_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> AgreementReport:
        """Read a report written by :meth:`save`."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise BtkError("file not found", path=path) from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise BtkError(f"not an agreement report written by btk fuse ({error})", path=path) from None


def agreement_report(
    candidates: list[np.ndarray],
    names: list[str],
    consensus: np.ndarray,
    convention: LabelConvention,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    case: str = "case",
) -> AgreementReport:
    """Score each candidate against the consensus per region (Dice, HD95 in mm)."""
    consensus_regions = {region: convention.region_mask(consensus, region) for region in REGIONS}
    scores = []
    for name, candidate in zip(names, candidates):
        regions = {region: convention.region_mask(candidate, region) for region in REGIONS}
        scores.append(
            CandidateAgreement(
                name,
                {r: dice(regions[r], consensus_regions[r]) for r in REGIONS},
                {r: hd95(regions[r], consensus_regions[r], spacing) for r in REGIONS},
            )
        )
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
        raise BtkError(
            f"alarms need the agreement reports of at least 3 cases, got {len(reports)}",
            hint="a threshold from the median and MAD of fewer cases means nothing",
        )
    if alpha < 0:
        raise BtkError(f"alpha must not be negative, got {alpha}")
    cases = [report.case for report in reports]
    if len(set(cases)) != len(cases):
        raise BtkError("two agreement reports are for the same case: " + ", ".join(sorted({c for c in cases if cases.count(c) > 1})))
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
                Alarm(case, algorithm, region, value, threshold) for case, value in per_case.items() if value < threshold
            )
    counts = {case: sum(1 for alarm in alarms if alarm.case == case) for case in cases}
    return AlarmReport(alpha, thresholds, alarms, counts)
