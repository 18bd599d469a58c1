"""The error kinds: each is caught by its standard base class from a real call, pickles whole, and the command
line still prints one message and exits with code 2."""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import btk
from btk.errors import (
    BtkError,
    ContainerError,
    EngineError,
    InputError,
    MissingExtraError,
    MissingFileError,
    OutputError,
    OutputExistsError,
)

ROOT = Path(__file__).resolve().parents[1]

#: Each kind, the keyword arguments it needs, and the standard exception it also is.
KINDS = [
    (InputError, {}, ValueError),
    (MissingFileError, {}, FileNotFoundError),
    (OutputError, {"code": errno.ENOSPC}, OSError),
    (OutputExistsError, {}, FileExistsError),
    (EngineError, {}, RuntimeError),
    (ContainerError, {}, RuntimeError),
    (MissingExtraError, {"extra": "segment"}, ImportError),
]


def write_label_map(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.uint8), np.eye(4)), str(path))
    return path


def tumour(shape: tuple[int, ...] = (8, 8, 8)) -> np.ndarray:
    data = np.zeros(shape, np.uint8)
    data[2:5, 2:5, 2:5] = 2
    data[3, 3, 3] = 1
    return data


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, **env}
    )


@pytest.mark.parametrize(("kind", "keywords", "standard"), KINDS, ids=[k[0].__name__ for k in KINDS])
def test_every_kind_is_a_btk_error_and_its_standard_base(kind, keywords, standard):
    error = kind("what is wrong", path="/data/case.nii.gz", hint="what to do", **keywords)
    assert isinstance(error, BtkError)
    assert isinstance(error, standard)
    assert str(error) == "/data/case.nii.gz: what is wrong\n  -> what to do"
    assert getattr(btk, kind.__name__) is kind  # exported by the package


@pytest.mark.parametrize(("kind", "keywords", "standard"), KINDS, ids=[k[0].__name__ for k in KINDS])
@pytest.mark.parametrize("path", ["/data/case.nii.gz", None])
def test_every_kind_pickles_whole(kind, keywords, standard, path):
    error = kind("what is wrong", path=path, hint="what to do", **keywords)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is kind
    assert (str(copy), copy.problem, copy.path, copy.hint, copy.args) == (
        str(error),
        error.problem,
        error.path,
        error.hint,
        error.args,
    )
    if isinstance(error, OSError):
        assert (copy.errno, copy.strerror, copy.filename) == (error.errno, error.strerror, error.filename)
    if isinstance(error, MissingExtraError):
        assert copy.extra == error.extra


def test_a_missing_image_is_a_file_not_found_error(tmp_path):
    from btk.io import load_nifti

    missing = tmp_path / "missing.nii.gz"
    with pytest.raises(FileNotFoundError) as caught:
        load_nifti(missing)
    assert isinstance(caught.value, MissingFileError)
    assert caught.value.errno == errno.ENOENT
    assert caught.value.filename == str(missing)
    assert str(caught.value) == f"{missing}: file not found\n  -> check the path"


def test_a_missing_candidate_stops_a_fusion_with_a_file_not_found_error(tmp_path):
    first = write_label_map(tmp_path / "a.nii.gz", tumour())
    with pytest.raises(FileNotFoundError) as caught:
        btk.Fusionator().fuse([first, tmp_path / "gone.nii.gz"], method="mav")
    assert caught.value.filename == str(tmp_path / "gone.nii.gz")


def test_a_label_map_of_the_wrong_shape_is_a_value_error(tmp_path):
    first = write_label_map(tmp_path / "a.nii.gz", tumour())
    second = write_label_map(tmp_path / "b.nii.gz", tumour((8, 8, 9)))
    with pytest.raises(ValueError, match="differs from the first candidate's") as caught:
        btk.Fusionator().fuse([first, second], method="mav")
    assert isinstance(caught.value, InputError)
    assert caught.value.path == second


def test_a_4d_label_map_is_a_value_error(tmp_path):
    from btk.io import load_label_map

    path = write_label_map(tmp_path / "four.nii.gz", np.zeros((4, 4, 4, 2)))
    with pytest.raises(ValueError, match="must be a 3-D image"):
        load_label_map(path)


def test_an_unknown_label_convention_is_a_value_error():
    with pytest.raises(ValueError, match="unknown label convention"):
        btk.get_convention("brats1999")


def test_a_foreign_label_keeps_its_kind_when_the_fusion_rewords_it(tmp_path):
    first = write_label_map(tmp_path / "a.nii.gz", tumour())
    foreign = tumour()
    foreign[4, 4, 4] = 7
    second = write_label_map(tmp_path / "b.nii.gz", foreign)
    with pytest.raises(ValueError) as caught:
        btk.Fusionator(labels="brats2021").fuse([first, second], method="mav")
    assert isinstance(caught.value, InputError)
    assert caught.value.path == second
    assert "--labels" in caught.value.hint


def test_an_existing_output_is_a_file_exists_error(tmp_path):
    from btk.io import guard_output

    output = tmp_path / "fused.nii.gz"
    output.write_bytes(b"")
    with pytest.raises(FileExistsError) as caught:
        guard_output(output, force=False)
    assert isinstance(caught.value, OutputExistsError)
    assert caught.value.filename == str(output)


def test_an_output_that_cannot_be_written_is_an_os_error(tmp_path):
    from btk.io import save_json

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError) as caught:
        save_json({}, blocker / "report.json")
    assert isinstance(caught.value, OutputError)
    assert caught.value.errno in (errno.EEXIST, errno.ENOTDIR)
    assert "cannot create the output folder" in str(caught.value)


def test_an_unreachable_docker_engine_is_an_engine_error(monkeypatch):
    pytest.importorskip("docker")
    from btk.segment.engine import Engine

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(RuntimeError, match="the Docker engine is not running") as caught:
        Engine.connect()
    assert isinstance(caught.value, EngineError)


def test_an_algorithm_that_finds_nothing_is_a_container_error(tmp_path):
    pytest.importorskip("pydantic")
    from btk.segment import load_registry
    from btk.segment.outputs import checked_result

    algorithm = next(a for a in load_registry().algorithms if not a.allow_empty)
    reference = nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4))
    result = write_label_map(tmp_path / "result.nii.gz", np.zeros((8, 8, 8)))
    with pytest.raises(RuntimeError, match="all background") as caught:
        checked_result(result, reference, algorithm, "brats2021")
    assert isinstance(caught.value, ContainerError)


def test_a_missing_extra_is_an_import_error_naming_the_extra():
    blocked = run_python(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'docker' or name.startswith('docker.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from btk.segment.engine import Engine\n"
        "try:\n"
        "    Engine.connect()\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error.extra)\n"
        "    print(error)\n"
    )
    assert blocked.returncode == 0, blocked.stderr
    lines = blocked.stdout.splitlines()
    assert lines[0] == "MissingExtraError segment"
    assert 'pip install "btk-mri[segment]"' in blocked.stdout


def test_errors_cross_processes_whole(tmp_path):
    """The pipeline's workers send their errors back pickled: a fresh interpreter rebuilds each kind."""
    error = MissingFileError("file not found", path=tmp_path / "a.nii.gz", hint="check the path")
    sent = tmp_path / "error.pickle"
    sent.write_bytes(pickle.dumps(error))
    received = run_python(
        "import json, pickle, sys\n"
        f"error = pickle.loads(open({str(sent)!r}, 'rb').read())\n"
        "print(json.dumps([type(error).__name__, str(error), error.filename, isinstance(error, FileNotFoundError)]))\n"
    )
    assert received.returncode == 0, received.stderr
    assert json.loads(received.stdout) == ["MissingFileError", str(error), str(tmp_path / "a.nii.gz"), True]


def test_the_command_line_prints_one_message_and_exits_with_code_2(tmp_path):
    missing = tmp_path / "missing.nii.gz"
    other = write_label_map(tmp_path / "b.nii.gz", tumour())
    result = subprocess.run(
        [sys.executable, "-m", "btk", "fuse", str(missing), str(other), "-o", str(tmp_path / "fused.nii.gz")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "400"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert output.count("Error:") == 1
    assert " ".join(output.split()) == f"Error: {missing}: file not found -> check the path"
