"""``btk fuse`` and ``btk alarms``: consensus of candidate segmentations and cohort failure alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from btk.cli import common
from btk.console import console, logger
from btk.errors import InputError
from btk.fusion.names import DEFAULT_ALPHA, METHODS

if TYPE_CHECKING:
    from btk.fusion import FusionResult
    from btk.fusion.agreement import AlarmReport


def fuse(
    candidates: Annotated[
        list[Path], typer.Argument(help="Candidate segmentations (NIfTI files, or folders holding them).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Fused segmentation to write (.nii.gz).")],
    method: Annotated[str, typer.Option("--method", "-m", help=f"Fusion method: {', '.join(METHODS)}.")] = "mav",
    flavour: Annotated[
        str,
        typer.Option(
            help="'default': the methods done right; 'brats-toolkit' (alias 'btk'): BraTS Toolkit's "
            "results, voxel for voxel."
        ),
    ] = "default",
    regions: Annotated[
        bool,
        typer.Option(
            "--regions", help="Fuse the convention's regions (WT, TC, ET for gliomas) and rebuild a nested label map."
        ),
    ] = False,
    weights: Annotated[
        Optional[str],
        typer.Option(help="Weights in candidate order ('1,2,1') or by name ('isen-20=2,scan-20=0.5')."),
    ] = None,
    take: Annotated[
        Optional[list[str]],
        typer.Option(
            help="REGION=SOURCE: take a region from one candidate ('WT=isen-20'), or fuse it from some "
            "('TC=scan-20+sanet0-20'); the other regions are fused from all. Repeat for several regions; "
            "implies --regions."
        ),
    ] = None,
    labels: Annotated[
        Optional[str],
        typer.Option(
            help="Label convention of all candidates: brats2021, brats2023, brats2024-post, brats2024-ped, "
            "brats2024-men-rt (default: detected per candidate, among the glioma ones)."
        ),
    ] = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(help="SIMPLE: dropout threshold at the first iteration (0.05).", parser=common.Probability),
    ] = None,
    increment: Annotated[
        Optional[float],
        typer.Option(help="SIMPLE: growth of the threshold per iteration (0.07).", parser=common.FiniteFloat(0)),
    ] = None,
    max_iterations: Annotated[
        Optional[int], typer.Option(help="SIMPLE: iteration limit (25).", parser=common.PositiveInt)
    ] = None,
    case: Annotated[
        Optional[str], typer.Option(help="Case name in the agreement report (default: OUTPUT's name).")
    ] = None,
    agreement: Annotated[
        bool,
        typer.Option(
            "--agreement/--no-agreement",
            help="Score every candidate against the consensus (Dice, HD95; needed by btk alarms).",
        ),
    ] = True,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Fuse candidate segmentations of one exam into a consensus.

    Writes OUTPUT, OUTPUT's provenance sidecar (.json) and the agreement of every candidate with the
    consensus (_agreement.json), and shows the agreement as a table (not with --no-agreement).
    """
    common.set_verbose(verbose)
    from btk.fusion import Fusionator, SimpleParameters, sidecar_paths
    from btk.fusion.candidates import expand_candidate_paths
    from btk.fusion.outputs import check_outputs
    from btk.io import strip_nifti_suffix

    files = [Path(item) for item in expand_candidate_paths(list(candidates)) if isinstance(item, (str, Path))]
    check_outputs(output, force, [*candidates, *files])
    fusionator = Fusionator(flavour=flavour, labels=labels)
    result = fusionator.fuse(
        candidates,
        method=method,
        weights=parse_weights(weights),
        regions=regions,
        case=case or strip_nifti_suffix(output),
        parameters=SimpleParameters.from_options(threshold, increment, max_iterations),
        agreement=agreement,
        take=common.parse_take(take or []),
    )
    result.save(output, force=force)
    logger.debug("Timings: %s", {k: round(v, 3) for k, v in result.timings.items()})
    sidecar, report = sidecar_paths(output)
    if result.agreement is None:
        console.print(f"Wrote {output} and {sidecar.name}", highlight=False)
        return
    console.print(agreement_table(result))
    console.print(f"Wrote {output}, {sidecar.name} and {report.name}", highlight=False)


def parse_weights(text: str | None) -> list[float] | dict[str, float] | None:
    """``'1,2,1'`` -> ``[1.0, 2.0, 1.0]``; ``'a=2,b=1'`` -> ``{'a': 2.0, 'b': 1.0}``."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        if all("=" in item for item in items):
            return {name.strip(): float(value) for name, value in (item.split("=", 1) for item in items)}
        return [float(item) for item in items]
    except ValueError:
        raise InputError(
            f"cannot read the weights {text!r}", hint="write numbers like '1,2,1' or 'name=2,other=1'"
        ) from None


def agreement_table(result: FusionResult) -> Table:
    """The candidates' Dice and HD95 against the consensus, per region of the fusion's convention."""
    if result.agreement is None:
        raise ValueError("the fusion was run without agreement=True: it has no agreement to show")
    table = Table(title=f"Agreement with the {result.method} consensus ({result.flavour} flavour)")
    table.add_column("candidate", no_wrap=True)
    table.add_column("weight", justify="right")
    regions = list(result.agreement.candidates[0].dice)
    for region in regions:
        table.add_column(f"{region} Dice", justify="right")
    for region in regions:
        table.add_column(f"{region} HD95", justify="right")
    for weight, candidate in zip(result.weights, result.agreement.candidates):
        table.add_row(
            candidate.name,
            f"{weight:g}",
            *(f"{candidate.dice[r]:.3f}" for r in regions),
            *(f"{candidate.hd95_mm[r]:.1f}" for r in regions),
        )
    return table


def alarms(
    reports: Annotated[
        list[Path], typer.Argument(help="Agreement reports (*_agreement.json) or folders searched for them.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file to write.")] = Path("alarms.json"),
    alpha: Annotated[
        float,
        typer.Option(help="Threshold = median - alpha * MAD of an algorithm's Dice.", parser=common.FiniteFloat(0)),
    ] = DEFAULT_ALPHA,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Ensemble failure alarms over a cohort (Kofler et al. 2021).

    For each algorithm and region, the threshold is the median minus alpha times the MAD of the algorithm's
    Dice with the consensus over all cases; each case below it raises an alarm. Cases with many alarms
    deserve a look.
    """
    common.set_verbose(verbose)
    from btk.fusion.agreement import AgreementReport, ensemble_alarms
    from btk.io import guard_output

    paths = find_agreement_reports(reports)
    guard_output(output, paths, force=force, replaceable=_is_alarm_report)
    loaded: dict[str, tuple[Path, AgreementReport]] = {}
    for path in paths:
        agreement = AgreementReport.load(path)
        if agreement.case in loaded:
            raise InputError(
                f"the report is for case {agreement.case!r}, like {loaded[agreement.case][0]}: "
                "the case would be counted twice",
                path=path,
                hint="pass one report per case",
            )
        loaded[agreement.case] = (path, agreement)
    report = ensemble_alarms([agreement for _, agreement in loaded.values()], alpha)
    report.save(output)
    console.print(alarm_table(report))
    console.print(f"Wrote {output}", highlight=False)


def _is_alarm_report(path: Path) -> bool:
    """Whether ``path`` is an alarm report that ``btk alarms`` wrote (which ``--force`` may replace)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and {"rule", "alarms_per_case", "alarms"} <= content.keys()


def find_agreement_reports(items: list[Path]) -> list[Path]:
    """The agreement reports among ``items``: files as given, folders searched for ``*_agreement.json``.

    A folder without any report, and a report reached twice (given twice, or as a file and through its
    folder), are errors: the first is likely the wrong folder, the second would count a case twice.
    """
    paths: list[Path] = []
    for item in items:
        if item.is_dir():
            found = sorted(item.rglob("*_agreement.json"))
            if not found:
                raise InputError(
                    "no agreement reports (*_agreement.json) in this folder",
                    path=item,
                    hint="run btk fuse first, or pass the folder that holds its outputs",
                )
            paths.extend(found)
        else:
            paths.append(item)
    seen: dict[Path, Path] = {}
    for path in paths:
        first = seen.setdefault(path.resolve(), path)
        if first is not path:
            where = "" if first == path else f" ({first} and {path} are the same file)"
            raise InputError(
                f"the agreement report is given twice{where}: its case would be counted twice",
                path=path,
                hint="pass each report once (a folder already includes every report in it)",
            )
    return paths


def alarm_table(report: AlarmReport) -> Table:
    """Alarms per case, with the algorithms and regions that raised them."""
    table = Table(title=f"Ensemble failure alarms (alpha = {report.alpha:g})")
    table.add_column("case")
    table.add_column("alarms", justify="right")
    table.add_column("algorithm / region (Dice < threshold)")
    for case, count in sorted(report.counts.items(), key=lambda item: (-item[1], item[0])):
        raised = [a for a in report.alarms if a.case == case]
        table.add_row(
            case,
            str(count),
            ", ".join(f"{a.algorithm}/{a.region} ({a.dice:.2f} < {a.threshold:.2f})" for a in raised) or "-",
            style="bold red" if count else None,
        )
    return table
