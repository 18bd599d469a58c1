"""Hostile input across the command line: file names that look like rich markup, numbers that are not finite,
and ``btk run`` options that must fail before any study starts."""

from __future__ import annotations

import os
import typing
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import typer
from rich.table import Table
from rich.text import Text

from btk.cli import app
from btk.cli.common import BoundedInt, FiniteFloat, PositiveInt, Probability
from btk.console import console, progress
from btk.errors import BtkError
from btk.pipeline import Pipeline
from tests.support.hostile import assert_no_leftovers, assert_user_error, files_under, run_btk
from tests.support.pipeline import BRATS_EXAM, CANDIDATES

#: File names a user may well have (``case[1]``) and ones that are rich markup: a style, a closing tag (a
#: folder ``[`` holding ``]y...``: the path reads ``[/]y``, which made the printer crash) and a hyperlink.
MARKUP_NAMES = ["case[1].nii.gz", "[bold]x.nii.gz", "[/]y.nii.gz", "[link=mailto:a@example.org]z.nii.gz"]


def markup_path(folder: Path, name: str) -> Path:
    """``folder/name``; for a name with ``/`` in it the folders it implies are made."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def label_map(path: Path, shift: int = 0) -> Path:
    """A small real label map (BraTS 2023 labels) written to ``path``; ``shift`` (0 to 4) makes candidates differ."""
    seg = np.zeros((12, 12, 12), np.uint8)
    seg[4:8, 4:8, 4 : 8 + shift] = 2
    seg[5:7, 5:7, 5:7] = 3
    nib.save(nib.Nifti1Image(seg, np.eye(4)), str(path))
    return path


# --- file names are printed literally ---------------------------------------------------------------------


def _missing_input_commands(missing: Path, other: Path, out: Path) -> dict[str, list]:
    return {
        "fuse": ["fuse", missing, other, "-o", out / "fused.nii.gz"],
        "evaluate": ["evaluate", missing, other, "-o", out / "evaluation.csv"],
        "run": ["run", missing, "-o", out, "--candidates", other.parent],
    }


@pytest.mark.parametrize("command", ["fuse", "evaluate", "run"])
@pytest.mark.parametrize("name", MARKUP_NAMES)
@pytest.mark.slow
def test_error_names_a_markup_file_literally(tmp_path: Path, name: str, command: str):
    missing = markup_path(tmp_path / "in", name)
    other = label_map(tmp_path / "in" / "other.nii.gz")
    out = tmp_path / "out"
    result = run_btk(*_missing_input_commands(missing, other, out)[command])
    assert_user_error(result, missing)  # the whole name, brackets included: nothing eaten as a style
    assert_no_leftovers(out)


@pytest.mark.slow
def test_error_shows_control_characters_of_a_file_name_escaped(tmp_path: Path):
    missing = tmp_path / "in" / "a\x1b[31mred\x07.nii.gz"  # a terminal escape sequence and a bell in the name
    other = label_map(markup_path(tmp_path / "in", "other.nii.gz"))
    result = run_btk("fuse", missing, other, "-o", tmp_path / "out" / "fused.nii.gz")
    assert_user_error(result, str(missing).replace("\x1b", "\\x1b").replace("\x07", "\\x07"))
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert_no_leftovers(tmp_path / "out")


@pytest.mark.slow
def test_fuse_and_evaluate_show_markup_names_literally(tmp_path: Path):
    candidates = [label_map(markup_path(tmp_path / "in", name), shift=i) for i, name in enumerate(MARKUP_NAMES)]
    fused = markup_path(tmp_path / "out[", "]fused[1].nii.gz")  # OUT[/]fused[1].nii.gz
    result = run_btk("fuse", *candidates, "-o", fused)
    assert result.code == 0, result.output
    assert "Traceback" not in result.output and "Internal error" not in result.output
    for path in candidates:  # the agreement table names every candidate as its file is called
        assert path.name.removesuffix(".nii.gz") in result.stderr, result.stderr
    assert f"Wrote {fused}" in result.stderr
    table = markup_path(tmp_path / "out[", "]evaluation[bold].csv")
    result = run_btk("evaluate", fused, candidates[1], "-o", table)
    assert result.code == 0, result.output
    assert f"Wrote 3 rows to {table}" in result.stderr and table.is_file()


def test_progress_lines_and_tables_show_markup_literally():
    """The shared console and its progress display take strings as text: exam names in descriptions, cells."""
    bar = progress()
    bar.add_task("Segmenting out[/]x [bold]y", total=3)
    table = Table(title="Segmentations of [red]exam")
    table.add_row("[link=mailto:a@example.org]z", Text("ok", style="green"))
    with console.capture() as captured:
        console.print(bar.get_renderable())
        console.print(table)
    shown = captured.get()
    assert "Segmenting out[/]x [bold]y" in shown
    assert "[red]exam" in shown and "[link=mailto:a@example.org]z" in shown and " ok " in shown


@pytest.mark.slow
def test_run_prints_markup_paths_literally(tmp_path: Path):
    exam = tmp_path / "[bold]case[1]"
    exam.mkdir()
    for image in BRATS_EXAM.glob("*.nii.gz"):
        os.symlink(image, exam / image.name)
    candidates = markup_path(tmp_path / "c[", "]andidates")
    candidates.mkdir()
    for source, name in zip(sorted(CANDIDATES["TCGA-FG-6692"].glob("*.nii.gz"))[:2], ["[red]a", "b[1]"], strict=True):
        (candidates / f"{name}.nii.gz").write_bytes(source.read_bytes())
    out = markup_path(tmp_path / "x[", "]out")  # X[/]out: printing "Summary: X[/]out/..." used to crash
    result = run_btk("run", exam, "-o", out, "--candidates", candidates, "-m", "mav", "--workers", "1")
    assert result.code == 0, result.output
    assert "Traceback" not in result.output and "Internal error" not in result.output
    assert f"Summary: {out / 'summary.html'}" in result.stderr


# --- numbers: one validated option type, everywhere -------------------------------------------------------


def _numeric_cases() -> list[tuple[list[str], str, str, str]]:
    """(command, option, value, what the message says)."""
    fuse = ["fuse", "{in}/a.nii.gz", "{in}/b.nii.gz", "-o", "{out}/f.nii.gz"]
    case = ["{in}/case", "-o", "{out}/seg.nii.gz", "-w", "{in}/model.pt"]
    infinite, out_of_range = "is not a finite number", "is out of range"
    return [
        (fuse, "--threshold", "nan", infinite),
        (fuse, "--increment", "nan", infinite),  # wrote invalid JSON (NaN) into the sidecar
        (fuse, "--increment", "-inf", infinite),
        (fuse, "--max-iterations", "0", out_of_range),
        (["alarms", "{in}", "-o", "{out}/alarms.json"], "--alpha", "inf", infinite),
        (["segment", "{in}/exam", "-o", "{out}", "-a", "scan-20"], "--timeout", "nan", infinite),  # failed later
        (["segment", "{in}/exam", "-o", "{out}", "-a", "scan-20"], "--cpus", "1e999", infinite),
        (["preprocess", "{in}/exam", "-o", "{out}/case"], "--memory-budget-gb", "inf", infinite),
        (["train", "{in}", "-o", "{out}"], "--lr", "nan", infinite),
        (["train", "{in}", "-o", "{out}"], "--tumour-probability", "1.5", out_of_range),
        (["unet-predict", *case], "--overlap", "-inf", infinite),
        (["run", "{in}", "-o", "{out}", "--candidates", "{in}"], "--workers", "nan", "is not a whole number"),
    ]


@pytest.mark.parametrize(
    ("command", "option", "value", "message"),
    _numeric_cases(),
    ids=[f"{c[0]}{o}={v}" for c, o, v, _ in _numeric_cases()],
)
def test_bad_numbers_are_refused_when_the_command_line_is_read(
    tmp_path: Path, command: list[str], option: str, value: str, message: str
):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    args = [arg.format(**{"in": inputs, "out": out}) for arg in command]
    result = run_btk(*args, option, value)
    text = result.output
    assert result.code == 2, text
    assert "Traceback" not in text and "Internal error" not in text, text
    flat = " ".join(text.replace("│", " ").split())
    assert f"Invalid value for '{option}': '{value}'" in flat, text  # the option, not a missing input, is named
    assert message in flat, text
    assert_no_leftovers(out)


def _number_options() -> list[tuple[str, str, type, typer.models.OptionInfo]]:
    """(command, parameter, int or float, its option declaration) of every numeric option of every command."""
    groups = [group.typer_instance for group in app.registered_groups]
    commands = [*app.registered_commands, *(command for group in groups for command in group.registered_commands)]
    found = []
    for command in commands:
        for parameter, hint in typing.get_type_hints(command.callback, include_extras=True).items():
            if typing.get_origin(hint) is not typing.Annotated:
                continue
            base, *metadata = typing.get_args(hint)
            kinds = [t for t in typing.get_args(base) or (base,) if t in (int, float)]
            options = [m for m in metadata if isinstance(m, typer.models.OptionInfo)]
            if kinds and options:
                found.append((command.name or command.callback.__name__, parameter, kinds[0], options[0]))
    return found


def test_every_numeric_option_of_every_command_uses_the_validated_type():
    options = _number_options()
    assert len(options) >= 20, options  # the search itself works: train alone has a dozen
    for command, parameter, kind, info in options:
        expected = FiniteFloat if kind is float else BoundedInt
        assert isinstance(info.parser, expected), f"btk {command} --{parameter}: parser {info.parser!r}"


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "", "one", "0x10"])
def test_finite_float_refuses_what_is_not_a_finite_number(value: str):
    with pytest.raises(typer.BadParameter, match=repr(value).replace("[", r"\[")):
        FiniteFloat()(value)


def test_finite_float_and_bounded_int_bounds():
    assert Probability("0") == 0 and Probability("1") == 1 and Probability(" 0.5 ") == 0.5
    with pytest.raises(typer.BadParameter, match="from 0 to 1"):
        Probability("1.0000001")
    half_open = FiniteFloat(0, 1, max_open=True)
    assert half_open("0") == 0
    with pytest.raises(typer.BadParameter, match=">= 0 and < 1"):
        half_open("1")
    with pytest.raises(typer.BadParameter, match="> 0"):
        FiniteFloat(0, min_open=True)("0")
    assert PositiveInt("3") == 3
    for value in ("0", "-2", "1.5", "1e3", "nan"):
        with pytest.raises(typer.BadParameter, match=">= 1"):
            PositiveInt(value)
    with pytest.raises(typer.BadParameter, match="from 0 to 9"):
        BoundedInt(0, 9)("10")


# --- btk run: every option is checked before any study starts ---------------------------------------------


RUN_OPTIONS = [
    (["--method", "majority"], "unknown fusion method 'majority'"),
    (["--labels", "brats1999"], "unknown label convention 'brats1999'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["-a", "no-such-algorithm"], "unknown algorithm 'no-such-algorithm'"),
    (["-a", "scan-20", "--registry", "{tmp}/missing.json"], "registry file not found"),
    (["--scheduler", "localhost:8786"], "not a Dask scheduler address"),  # wrote manifest.csv, then failed
]


@pytest.mark.parametrize(("options", "message"), RUN_OPTIONS, ids=[o[0] for o, _ in RUN_OPTIONS])
@pytest.mark.slow
def test_run_refuses_a_bad_option_before_any_study_starts(tmp_path: Path, options: list[str], message: str):
    out = tmp_path / "out"
    options = [option.format(tmp=tmp_path) for option in options]
    result = run_btk("run", BRATS_EXAM, "-o", out, "--candidates", CANDIDATES["TCGA-FG-6692"], *options)
    assert_user_error(result)
    assert message in result.stderr, result.stderr
    assert not out.exists(), files_under(out)  # no study folder, no manifest: nothing started


def test_run_checks_options_before_looking_at_the_input(tmp_path: Path):
    result = run_btk(
        "run", tmp_path / "no-such-input", "-o", tmp_path / "out", "--candidates", tmp_path, "--labels", "brats1999"
    )
    assert_user_error(result)
    assert "unknown label convention" in result.stderr and "no-such-input" not in result.stderr


@pytest.mark.slow
def test_run_candidates_must_be_a_folder(tmp_path: Path):
    single = sorted(CANDIDATES["TCGA-FG-6692"].glob("*.nii.gz"))[0]  # a file where a folder belongs: was exit 70
    out = tmp_path / "out"
    result = run_btk("run", BRATS_EXAM, "-o", out, "--candidates", single)
    assert_user_error(result, single)
    assert "not a folder" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("below", ["", "sub"])
@pytest.mark.slow
def test_run_output_that_cannot_be_a_folder(tmp_path: Path, below: str):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    out = blocker / below if below else blocker  # a file, or a folder that would have to be made inside one
    result = run_btk("run", BRATS_EXAM, "-o", out, "--candidates", CANDIDATES["TCGA-FG-6692"], "-m", "mav")
    assert_user_error(result, out)  # was "Internal error: FileExistsError"
    assert blocker.read_text() == "not a folder" and files_under(tmp_path) == {Path("taken")}


@pytest.mark.parametrize("settings", [{"method": "vote"}, {"labels": "x"}, {"device": "gpu"}, {"gpus": ("a",)}])
def test_pipeline_refuses_bad_settings_when_made(tmp_path: Path, settings: dict):
    with pytest.raises(BtkError):
        Pipeline(tmp_path / "out", candidates=tmp_path, **settings)
    assert not (tmp_path / "out").exists()
