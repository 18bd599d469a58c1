"""Hostile and careless input to btk's U-Net commands: crafted and foreign checkpoints, bad `btk train` options.

Every checkpoint reader (``btk unet-predict``, ensembles, the container, ``btk train --resume``) goes
through one loader that refuses anything but tensors and plain data, so a crafted pickle never runs; a
foreign or damaged file, and every invalid option, gets one message naming the file or option, exit 2,
and nothing written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from btk.errors import BtkError
from btk.unet.augment import Augmentation
from btk.unet.checkpoints import save_checkpoint
from btk.unet.model import ModelConfig, UNet3D
from btk.unet.training import Trainer
from tests.support.hostile import assert_no_leftovers, assert_user_error, files_under, run_btk
from tests.support.lesions import write_dataset
from tests.support.unet import tiny_config


class RunsACommand:
    """Unpickling this runs ``command`` in a shell: what a malicious checkpoint does."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def crafted(marker: Path) -> dict:
    """A checkpoint-looking payload whose unpickling creates ``marker``."""
    return {
        "format": "btk-unet-1",
        "model": ModelConfig(width=4).to_dict(),
        "state_dict": {},
        "epoch": RunsACommand(f"touch {marker}"),
    }


def write_raw_pickle(payload: object, path: Path) -> None:
    path.write_bytes(pickle.dumps(payload))


def write_torch_zip(payload: object, path: Path) -> None:
    torch.save(payload, path)


def write_legacy_torch(payload: object, path: Path) -> None:
    torch.save(payload, path, _use_new_zipfile_serialization=False)


def write_plain_zip(payload: object, path: Path) -> None:
    """A zip archive laid out like torch's, holding only a pickle."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        archive.writestr("archive/version", "3\n")


CRAFTED_WRITERS = [write_raw_pickle, write_torch_zip, write_legacy_torch, write_plain_zip]


def write_crafted(writer, path: Path, marker: Path) -> Path:
    """Write a crafted checkpoint and prove it is live: unsafe unpickling really runs its command."""
    writer(crafted(marker), path)
    with contextlib.suppress(Exception):  # the payload runs before whatever the unsafe loader trips over
        torch.load(path, weights_only=False)
    assert marker.exists(), "the crafted checkpoint should run its command when unpickled unsafely"
    marker.unlink()
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    """The first case folder of a two-case BraTS 2023 data set (synthetic lesions in real brains)."""
    folder = tmp_path_factory.mktemp("unet_cases")
    write_dataset(folder, 2, seed=5)
    return sorted(p for p in folder.iterdir() if p.is_dir())[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory, case) -> Path:
    """A real, resumable run folder: one tiny epoch on the case's data set."""
    folder = tmp_path_factory.mktemp("unet_run") / "run"
    Trainer(tiny_config(epochs=2, steps_per_epoch=1, folds=1), device="cpu").train(
        case.parent, folder, on_epoch=lambda row: False
    )
    return folder


@pytest.fixture(scope="module")
def train_options() -> set[str]:
    """Every option `btk train --help` lists."""
    result = run_btk("train", "--help")
    assert result.code == 0, result.output
    return set(re.findall(r"--[a-z][a-z0-9-]*", result.output))


def assert_only_real_options(result, options: set[str]) -> None:
    """The message suggests no option that `btk train` does not have."""
    suggested = set(re.findall(r"--[a-z][a-z0-9-]*", result.output))
    assert suggested <= options, f"suggests {sorted(suggested - options)}, not options of btk train:\n{result.output}"


# ---------------------------------------------------------------------------------------------- unet-predict


@pytest.mark.parametrize("writer", CRAFTED_WRITERS, ids=lambda w: w.__name__)
@pytest.mark.slow
def test_predict_never_runs_a_crafted_checkpoint(tmp_path, case, writer):
    marker = tmp_path / "MARKER"
    (tmp_path / "weights").mkdir()
    weights = write_crafted(writer, tmp_path / "weights" / "best.pt", marker)
    output = tmp_path / "out" / "seg.nii.gz"
    output.parent.mkdir()
    result = run_btk("unet-predict", case, "-o", output, "-w", weights.parent, "--no-tta", "--patch", "32")
    assert not marker.exists(), "the crafted checkpoint ran its command"
    assert_user_error(result, weights)
    assert_no_leftovers(output.parent)


def _bare_state_dict(path: Path) -> None:
    torch.save(UNet3D(ModelConfig(width=4)).state_dict(), path)


def _foreign_project(path: Path) -> None:  # another project's checkpoint layout (Lightning-style)
    model = torch.nn.Sequential(torch.nn.Conv3d(4, 8, 3), torch.nn.ReLU(), torch.nn.Conv3d(8, 3, 1))
    torch.save({"state_dict": model.state_dict(), "epoch": 3, "hyper_parameters": {"lr": 1e-3}}, path)


def _whole_module(path: Path) -> None:  # torch.save(model): a pickled class, refused
    torch.save(UNet3D(ModelConfig(width=4)), path)


def _numpy_inside(path: Path) -> None:
    torch.save(
        {"format": "btk-unet-1", "model": ModelConfig(width=4).to_dict(), "state_dict": {}, "scores": np.zeros(3)}, path
    )


def _text_file(path: Path) -> None:
    path.write_text("this is not a checkpoint\n")


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    save_checkpoint(path, UNet3D(ModelConfig(width=4)))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _mismatched_shapes(path: Path) -> None:  # settings of a width-8 model, weights of a width-4 one
    save_checkpoint(path, UNet3D(ModelConfig(width=4)))
    payload = torch.load(path, weights_only=True)
    payload["model"]["width"] = 8
    torch.save(payload, path)


def _wrong_inputs(path: Path) -> None:  # a model of two modalities
    save_checkpoint(path, UNet3D(ModelConfig(width=4, in_channels=2)))


def _nan_weights(path: Path) -> None:
    model = UNet3D(ModelConfig(width=4))
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_checkpoint(path, model)


def _other_format(path: Path) -> None:
    save_checkpoint(path, UNet3D(ModelConfig(width=4)))
    payload = torch.load(path, weights_only=True)
    payload["format"] = "btk-unet-99"
    torch.save(payload, path)


FOREIGN = {
    _bare_state_dict: "bare state dict",
    _foreign_project: "not a btk U-Net checkpoint",
    _whole_module: "refused",
    _numpy_inside: "refused",
    _text_file: "cannot read the checkpoint",
    _empty_file: "cannot read the checkpoint",
    _truncated: "cannot read the checkpoint",
    _mismatched_shapes: "needs floating-point",
    _wrong_inputs: "takes 2 inputs",
    _nan_weights: "NaN or infinite",
    _other_format: "unsupported checkpoint format",
}


@pytest.mark.parametrize("write,expected", FOREIGN.items(), ids=lambda v: getattr(v, "__name__", "")[1:])
@pytest.mark.slow
def test_predict_refuses_a_foreign_or_damaged_checkpoint(tmp_path, case, write, expected):
    good = tmp_path / "a-good.pt"
    save_checkpoint(good, UNet3D(ModelConfig(width=4)))
    bad = tmp_path / "b-bad.pt"
    write(bad)
    output = tmp_path / "out" / "seg.nii.gz"
    output.parent.mkdir()
    # an ensemble: the good checkpoint loads, the bad one is named
    result = run_btk("unet-predict", case, "-o", output, "-w", good, "-w", bad, "--no-tta", "--patch", "32")
    assert_user_error(result, bad)
    assert expected in result.output, result.output
    assert "btk train" in result.output  # what to do: use a checkpoint btk train wrote
    assert_no_leftovers(output.parent)


def assert_refused(result, *words: str) -> None:
    """Exit 2 with one message (btk's ``Error:`` or the command-line parser's boxed one) holding ``words``."""
    text = result.output
    assert result.code == 2, f"exit {result.code}:\n{text}"
    assert "Traceback" not in text and "Internal error" not in text, text
    assert text.count("Error:") + text.count("─ Error ─") == 1, f"expected one error message:\n{text}"
    flat = " ".join(text.replace("│", " ").split())
    for word in words:
        assert word in flat, f"{word!r} not in:\n{text}"


@pytest.mark.parametrize(
    "options,expected",
    [
        (["--overlap", "1"], "overlap"),
        (["--threads", "-2"], "threads"),
        (["--device", "tpu9"], "device 'tpu9'"),
        (["--device", "cuda:7"], "cuda:7"),
        (["--patch", "30"], "multiples of 8"),
    ],
    ids=["overlap", "threads", "device", "absent-gpu", "patch"],
)
@pytest.mark.slow
def test_predict_options_are_checked_before_anything_is_written(tmp_path, case, options, expected):
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, UNet3D(ModelConfig(width=4)))
    output = tmp_path / "out" / "seg.nii.gz"
    output.parent.mkdir()
    result = run_btk("unet-predict", case, "-o", output, "-w", weights, *options)
    assert_refused(result, expected)
    assert_no_leftovers(output.parent)


# ------------------------------------------------------------------------------------------------ btk train

TINY = ["--width", "4", "--patch", "32", "--epochs", "1", "--steps-per-epoch", "1", "--folds", "1", "--threads", "1"]


@pytest.mark.parametrize(
    "option,value,expected",
    [
        ("--lr", "-1", "--lr"),
        ("--lr", "0", "--lr"),
        ("--lr", "nan", "--lr"),
        ("--fold", "5", "fold 5"),
        ("--norm", "batch", "unknown norm"),
        ("--device", "tpu9", "device 'tpu9'"),
        ("--patch", "30", "multiples of 8"),
    ],
)
@pytest.mark.slow
def test_train_options_are_checked_before_anything_is_written(tmp_path, case, train_options, option, value, expected):
    output = tmp_path / "run"
    result = run_btk("train", case.parent, "-o", output, *TINY, option, value)
    assert_refused(result, expected)
    assert_only_real_options(result, train_options)
    assert not output.exists(), f"left behind: {sorted(map(str, files_under(output)))}"


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"learning_rate": -1.0}, "learning rate"),
        ({"learning_rate": 0.0}, "learning rate"),
        ({"learning_rate": float("nan")}, "learning rate"),
        ({"learning_rate": float("inf")}, "learning rate"),
        ({"weight_decay": -1e-5}, "weight decay"),
        ({"steps_per_epoch": 0}, "steps per epoch"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch size"),
        ({"warmup_epochs": -1}, "warmup epochs"),
        ({"tumour_probability": 1.5}, "tumour probability"),
        ({"tumour_probability": float("nan")}, "tumour probability"),
        ({"threads": 0}, "threads"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"validation_patch": (30, 32, 32)}, "validation patch"),
        ({"augmentation": Augmentation(flip_probability=2.0)}, "flip probability"),
        ({"augmentation": Augmentation(scale=1.0)}, "augmentation scale"),
        ({"model": ModelConfig(width=0)}, "width"),
        ({"model": ModelConfig(in_channels=3)}, "modalities"),
    ],
    ids=lambda v: "-".join(f"{k}={v}" for k, v in v.items()) if isinstance(v, dict) else None,
)
def test_training_settings_are_checked_before_anything_is_written(tmp_path, case, change, expected):
    """The same checks guard the Python API and a resumed run's own settings, which no option parser sees."""
    output = tmp_path / "run"
    with pytest.raises(BtkError, match=expected):
        Trainer(dataclasses.replace(tiny_config(), **change), device="cpu").train(case.parent, output)
    assert not output.exists()


@pytest.mark.slow
def test_train_hint_for_labels_of_the_other_naming_names_no_missing_option(tmp_path, case, train_options):
    data = tmp_path / "data"
    shutil.copytree(case, data / case.name)
    segmentation = data / case.name / f"{case.name}-seg.nii.gz"
    image = nib.load(segmentation)
    labels = np.asarray(image.dataobj).copy()
    labels[labels == 3] = 4  # BraTS 2020 labels in a BraTS 2023 folder
    nib.save(nib.Nifti1Image(labels, image.affine, image.header), segmentation)
    output = tmp_path / "run"
    result = run_btk("train", data, "-o", output, *TINY)
    assert_user_error(result, segmentation)
    assert "label values 4" in result.output and "naming" in result.output
    assert_only_real_options(result, train_options)
    assert not output.exists(), f"left behind: {sorted(map(str, files_under(output)))}"


def _copy_run(run: Path, tmp_path: Path) -> Path:
    """A copy of the run folder (without its cache, which resuming rebuilds)."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("cache"))
    return copy


def _contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def _tamper_state(path: Path, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def _best_as_last(run: Path) -> None:
    shutil.copy2(run / "best.pt", run / "last.pt")


def _truncated_last(run: Path) -> None:
    last = run / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])


def _epoch_beyond_the_run(run: Path) -> None:
    _tamper_state(run / "last.pt", lambda p: p.update(epoch=99))


def _optimiser_of_another_model(run: Path) -> None:
    def change(payload):
        first = next(iter(payload["optimiser"]["state"].values()))
        first["exp_avg"] = torch.zeros(7, 7)

    _tamper_state(run / "last.pt", change)


def _negative_learning_rate_inside(run: Path) -> None:
    _tamper_state(run / "last.pt", lambda p: p["train_config"].update(learning_rate=-1.0))


def _scheduler_method_replaced(run: Path) -> None:
    _tamper_state(run / "last.pt", lambda p: p["scheduler"].update(step=3))


def _garbage_log(run: Path) -> None:
    (run / "log.csv").write_text("epoch,step\nx,y\n")


RESUME = {
    _best_as_last: ("last.pt", "no training state"),
    _truncated_last: ("last.pt", "cannot read the checkpoint"),
    _epoch_beyond_the_run: ("last.pt", "progress is invalid"),
    _optimiser_of_another_model: ("last.pt", "does not fit its model"),
    _negative_learning_rate_inside: ("last.pt", "learning rate"),
    _scheduler_method_replaced: ("last.pt", "not a setting"),
    _garbage_log: ("log.csv", "training log"),
}


@pytest.mark.slow
def test_train_resume_never_runs_a_crafted_last_checkpoint(tmp_path, case, run, train_options):
    copy = _copy_run(run, tmp_path)
    marker = tmp_path / "MARKER"
    write_crafted(write_torch_zip, copy / "last.pt", marker)
    before = _contents(copy)
    result = run_btk("train", case.parent, "-o", copy, "--resume")
    assert not marker.exists(), "the crafted last.pt ran its command"
    assert_user_error(result, copy / "last.pt")
    assert "refused" in result.output
    assert_only_real_options(result, train_options)
    assert _contents(copy) == before


@pytest.mark.parametrize("damage,expected", RESUME.items(), ids=lambda v: getattr(v, "__name__", "")[1:])
@pytest.mark.slow
def test_train_resume_refuses_a_damaged_run_and_changes_nothing(tmp_path, case, run, train_options, damage, expected):
    copy = _copy_run(run, tmp_path)
    damage(copy)
    before = _contents(copy)
    result = run_btk("train", case.parent, "-o", copy, "--resume")
    name, problem = expected
    assert_user_error(result, copy / name)
    assert problem in result.output, result.output
    assert_only_real_options(result, train_options)
    assert _contents(copy) == before, "the run folder was changed"


@pytest.mark.slow
def test_the_undamaged_run_resumes(tmp_path, case, run):
    """The resume cases above fail because of their damage: the same run, undamaged, resumes."""
    copy = _copy_run(run, tmp_path)
    result = run_btk("train", case.parent, "-o", copy, "--resume")
    assert result.code == 0, result.output
    assert "epoch 2/2" in result.output


def test_a_checkpoint_of_tensors_and_plain_data_round_trips(tmp_path):
    """The refusals above are not of every file: btk's own checkpoints, with numpy and Path extras, load."""
    from btk.unet.checkpoints import load_model, read_checkpoint

    path = tmp_path / "m.pt"
    save_checkpoint(
        path, UNet3D(ModelConfig(width=4)), {"scores": np.float32(0.5), "where": tmp_path, "array": np.arange(3)}
    )
    payload = read_checkpoint(path)
    assert payload["scores"] == 0.5 and payload["where"] == str(tmp_path)
    assert torch.equal(payload["array"], torch.arange(3))
    assert load_model(path).config == ModelConfig(width=4)


@pytest.mark.slow
def test_a_damaged_case_cache_is_prepared_again(tmp_path, case, run):
    """The cache is btk's own scratch space: a truncated array or a garbled stamp there is rebuilt, not trusted."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    first, second = sorted(p for p in (copy / "cache").iterdir())
    images = first / "images.npy"
    images.write_bytes(images.read_bytes()[:200])
    (second / "cache.json").write_text("{not json")
    (second / "tumour.npy").write_bytes(b"\x93NUMPY garbage")
    result = run_btk("train", case.parent, "-o", copy, "--resume")
    assert result.code == 0, result.output
    assert "epoch 2/2" in result.output
    assert images.stat().st_size > 200 and np.load(second / "tumour.npy").dtype == np.int64
