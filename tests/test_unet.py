"""Unit and CLI tests of btk's U-Net (fast: tiny models, synthetic cases, a few optimiser steps)."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from btk.arrays import bounding_box
from btk.cli import main
from btk.errors import BtkError
from btk.labels import BRATS_2021, BRATS_2023
from btk.unet.cases import find_cases, load_images, load_regions, read_case
from btk.unet.checkpoints import find_checkpoints, load_model, read_checkpoint, save_checkpoint
from btk.unet.inference import predict_probabilities, regions_to_labels, window_starts
from btk.unet.losses import deep_supervision_loss, dice_focal_loss, focal_loss, soft_dice_loss
from btk.unet.model import ModelConfig, UNet3D
from btk.unet.normalise import CLIP_PERCENTILES, normalise
from btk.unet.sampling import extract, patch_start
from btk.unet.training import Trainer, learning_rate_factor, split_cases
from tests.support.lesions import write_dataset
from tests.support.unet import tiny_config


@pytest.fixture(scope="module")
def cases_2023(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cases2023")
    write_dataset(folder, 4, seed=11)
    return folder


@pytest.mark.parametrize("norm,residual", [("group", False), ("instance", True)])
def test_model_shapes_and_deep_supervision(norm, residual):
    model = UNet3D(ModelConfig(width=4, norm=norm, residual=residual))
    x = torch.randn(1, 4, 32, 24, 16)
    outputs = model.train()(x)
    assert [tuple(o.shape) for o in outputs] == [(1, 3, 32, 24, 16), (1, 3, 16, 12, 8), (1, 3, 8, 6, 4)]
    assert tuple(model.eval()(x).shape) == (1, 3, 32, 24, 16)
    plain = UNet3D(ModelConfig(width=4, deep_supervision=False)).train()
    assert isinstance(plain(x), torch.Tensor)


def test_losses_reward_agreement():
    target = torch.zeros(1, 3, 8, 8, 8)
    target[:, :, 2:6, 2:6, 2:6] = 1
    good, bad = (target * 20 - 10), -(target * 20 - 10)
    assert soft_dice_loss(good, target) < 0.01 < 0.9 < soft_dice_loss(bad, target)
    assert focal_loss(good, target) < 1e-4 < focal_loss(bad, target)
    # deep supervision: coarser outputs are compared with the averaged-down target
    coarse = [torch.nn.functional.interpolate(target, scale_factor=f, mode="area") * 20 - 10 for f in (0.5, 0.25)]
    assert deep_supervision_loss([good, *coarse], target) < 0.25 < 1.5 < deep_supervision_loss([bad, bad], target)
    assert deep_supervision_loss(good, target) == dice_focal_loss(good, target)


def test_normalise_clips_and_zscores_inside_the_brain():
    rng = np.random.default_rng(0)
    images = np.zeros((2, 20, 20, 20), dtype=np.float32)
    images[:, 5:15, 5:15, 5:15] = rng.normal(100, 10, size=(2, 10, 10, 10))
    images[0, 10, 10, 10] = 1e6  # an outlier is clipped, not allowed to squash the scale
    result = normalise(images)
    inside = images[0] != 0
    assert np.allclose([result[c][inside].mean() for c in range(2)], 0, atol=1e-4)
    assert np.allclose([result[c][inside].std() for c in range(2)], 1, atol=1e-3)
    assert result[0][10, 10, 10] < 4 and (result[:, ~inside] == 0).all()
    assert CLIP_PERCENTILES == (0.5, 99.5)
    assert bounding_box(inside, margin=1) == (slice(4, 16),) * 3


def test_sampling_pads_small_volumes_and_stays_inside_large_ones():
    rng = np.random.default_rng(0)
    volume = np.arange(2 * 10 * 40 * 40, dtype=np.float32).reshape(2, 10, 40, 40)
    start = patch_start((10, 40, 40), np.array([5, 39, 0]), (16, 16, 16), rng)
    assert start[0] == -3 and 0 <= start[1] <= 24 and start[2] == 0
    patch = extract(volume, start, (16, 16, 16))
    assert patch.shape == (2, 16, 16, 16) and (patch[:, :3] == 0).all() and (patch[:, 13:] == 0).all()
    assert np.array_equal(patch[:, 3:13], volume[:, :, start[1] : start[1] + 16, :16])


def test_sliding_windows_cover_the_volume():
    assert window_starts(100, 128, 0.5) == [0]
    starts = window_starts(240, 128, 0.5)
    assert starts[0] == 0 and starts[-1] == 112 and all(b - a <= 64 for a, b in zip(starts, starts[1:]))


def test_regions_to_labels_nests_regions_in_any_convention():
    probabilities = np.zeros((3, 4, 1, 1), dtype=np.float32)
    probabilities[:, 0, 0, 0] = [0.9, 0.1, 0.1]  # oedema
    probabilities[:, 1, 0, 0] = [0.9, 0.9, 0.1]  # necrosis
    probabilities[:, 2, 0, 0] = [0.9, 0.9, 0.9]  # enhancing
    probabilities[:, 3, 0, 0] = [0.1, 0.9, 0.9]  # core outside WT: background
    assert regions_to_labels(probabilities, "brats2023")[:, 0, 0].tolist() == [2, 1, 3, 0]
    assert regions_to_labels(probabilities, BRATS_2021)[:, 0, 0].tolist() == [2, 1, 4, 0]


def test_flip_tta_is_exact_for_a_mirror_symmetric_model():
    model = UNet3D(ModelConfig(width=4)).eval()
    images = np.random.default_rng(1).normal(size=(4, 16, 16, 16)).astype(np.float32)
    plain = predict_probabilities([model], images, (16, 16, 16), tta=False)
    tta = predict_probabilities([model], images, (16, 16, 16), tta=True)
    assert plain.shape == tta.shape == (3, 16, 16, 16)
    assert not np.allclose(plain, tta)  # the flips are really applied
    # two identical checkpoints average to the single one
    assert np.allclose(predict_probabilities([model, model], images, (16, 16, 16), tta=False), plain, atol=1e-6)


def test_both_namings_are_detected_and_labels_converted(tmp_path, cases_2023):
    write_dataset(tmp_path, 1, seed=11, naming="2020", prefix="BraTS20")
    case_2020 = find_cases(tmp_path)[0]
    case_2023 = find_cases(cases_2023)[0]
    assert (case_2020.naming, case_2023.naming) == ("2020", "2023")
    assert case_2020.convention is BRATS_2021 and case_2023.convention is BRATS_2023
    images, _ = load_images(case_2020)
    assert np.array_equal(load_regions(case_2020, images.shape[1:]), load_regions(case_2023, images.shape[1:]))
    assert [p.name.split("_")[-1] for p in case_2020.images] == [
        "t1.nii.gz",
        "t1ce.nii.gz",
        "t2.nii.gz",
        "flair.nii.gz",
    ]


def test_incomplete_case_folder_is_a_clear_error(tmp_path, cases_2023):
    case = find_cases(cases_2023)[0]
    broken = tmp_path / case.name
    broken.mkdir()
    for path in case.images[:3]:
        (broken / path.name).symlink_to(path)
    with pytest.raises(BtkError, match=r"missing .*-t2f\.nii\.gz"):
        read_case(broken, need_segmentation=False)
    with pytest.raises(BtkError, match="no BraTS case folders"):
        find_cases(tmp_path / case.name)


def test_schedule_and_kfold_split(cases_2023):
    factors = [learning_rate_factor(step, 10, 100) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1 and factors[-1] < 0.02
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    cases = find_cases(cases_2023)
    held_out = [split_cases(cases, 4, fold, seed=0)[1] for fold in range(4)]
    assert sorted(c.name for fold in held_out for c in fold) == [c.name for c in cases]
    with pytest.raises(BtkError, match="needs at least 5 cases"):
        split_cases(cases, 5, 0, seed=0)


def test_checkpoint_round_trip_and_foreign_files(tmp_path):
    model = UNet3D(ModelConfig(width=4, norm="instance", residual=True))
    save_checkpoint(tmp_path / "m.pt", model, {"epoch": 3})
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.config == model.config and read_checkpoint(tmp_path / "m.pt")["epoch"] == 3
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BtkError, match="cannot read the checkpoint"):
        read_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(BtkError, match="no U-Net weights"):
        find_checkpoints(tmp_path / "empty")


@pytest.mark.slow
def test_training_validates_logs_plots_and_resumes(tmp_path, cases_2023):
    config = tiny_config(epochs=1, steps_per_epoch=2, folds=2)
    run = tmp_path / "run"
    first = Trainer(config, device="cpu").train(cases_2023, run)
    assert first.epochs_run == 1 and set(first.best_dice) == {"WT", "TC", "ET"}
    with pytest.raises(BtkError, match="holds a run already"):
        Trainer(config, device="cpu").train(cases_2023, run)
    longer = tiny_config(epochs=2, steps_per_epoch=2, folds=2)
    resumed = Trainer(longer, device="cpu").train(cases_2023, run, resume=True)
    assert resumed.epochs_run == 0  # the run's own config (1 epoch) wins: nothing left to do
    with open(run / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1"] and rows[0]["dice_WT"] != ""
    assert (run / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert read_checkpoint(run / "last.pt")["epoch"] == 0 and (run / "best.pt").exists()


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, cases_2023):
    config = tiny_config(epochs=2, steps_per_epoch=2, folds=2)
    straight = Trainer(config, device="cpu").train(cases_2023, tmp_path / "straight")
    interrupted = Trainer(config, device="cpu").train(cases_2023, tmp_path / "run", on_epoch=lambda row: False)
    resumed = Trainer(config, device="cpu").train(cases_2023, tmp_path / "run", resume=True)
    assert (straight.epochs_run, interrupted.epochs_run, resumed.epochs_run) == (2, 1, 1)
    expected = read_checkpoint(tmp_path / "straight" / "last.pt")["state_dict"]
    actual = read_checkpoint(tmp_path / "run" / "last.pt")["state_dict"]
    assert all(torch.allclose(expected[key], actual[key], atol=1e-6) for key in expected)
    with open(tmp_path / "run" / "log.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]


@pytest.mark.slow
def test_cli_train_and_predict(tmp_path, cases_2023, capsys):
    run = tmp_path / "run"
    code = main(
        [
            "train",
            str(cases_2023),
            "-o",
            str(run),
            "--width",
            "4",
            "--patch",
            "32",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--folds",
            "1",
            "--threads",
            "1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    case = find_cases(cases_2023)[0]
    output = tmp_path / "seg.nii.gz"
    code = main(
        [
            "unet-predict",
            str(case.images[0].parent),
            "-o",
            str(output),
            "-w",
            str(run / "best.pt"),
            "--no-tta",
            "--patch",
            "32",
            "--labels",
            "brats2021",
            "--threads",
            "1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    written = nib.load(str(output))
    reference = nib.load(str(case.images[0]))
    assert written.shape == reference.shape and np.allclose(written.affine, reference.affine)
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2, 4}
    assert main(["unet-predict", str(case.images[0].parent), "-o", str(output), "-w", str(run)]) == 2
    assert "exists already" in capsys.readouterr().err


def test_cli_user_mistakes_exit_2_without_traceback(tmp_path, cases_2023, capsys):
    assert main(["train", str(tmp_path / "nowhere"), "-o", str(tmp_path / "run")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", str(cases_2023), "-o", str(tmp_path / "run"), "--patch", "30"]) == 2
    assert "multiples of 8" in capsys.readouterr().err
    case_folder = find_cases(cases_2023)[0].images[0].parent
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    assert main(["unet-predict", str(case_folder), "-o", str(tmp_path / "s.nii.gz"), "-w", str(no_weights)]) == 2
    error = capsys.readouterr().err
    assert "no U-Net weights" in error and "Traceback" not in error
    # an output inside an input (here: the weights folder) is refused before anything else
    assert main(["unet-predict", str(case_folder), "-o", str(no_weights / "s.nii.gz"), "-w", str(no_weights)]) == 2
    assert "inside the input" in capsys.readouterr().err


def test_contract_entry_point_writes_case_named_outputs(tmp_path, cases_2023, monkeypatch, capsys):
    from btk.unet.contract import main as contract_main

    case = find_cases(cases_2023)[0]
    inputs, outputs, weights = tmp_path / "input", tmp_path / "output", tmp_path / "weights"
    (inputs / case.name).mkdir(parents=True)
    for path in case.images:
        (inputs / case.name / path.name).symlink_to(path)
    weights.mkdir()
    assert contract_main([str(inputs), str(outputs), str(weights)]) == 1
    assert "no U-Net weights" in capsys.readouterr().err and not outputs.exists()
    save_checkpoint(weights / "w.pt", UNet3D(ModelConfig(width=4)))
    monkeypatch.setenv("BTK_UNET_TTA", "0")
    monkeypatch.setenv("BTK_UNET_THREADS", "1")
    assert contract_main([str(inputs), str(outputs), str(weights)]) == 0
    written = nib.load(str(outputs / f"{case.name}.nii.gz"))
    assert written.shape == nib.load(str(case.images[0])).shape
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2, 3}


def test_contract_refuses_a_crafted_checkpoint_and_a_bad_environment(tmp_path, cases_2023, monkeypatch, capsys):
    """The container's entry point loads weights through the same safe loader as btk unet-predict."""
    import os

    from btk.unet.contract import main as contract_main

    class RunsACommand:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'MARKER'}",)

    case = find_cases(cases_2023)[0]
    inputs, outputs, weights = tmp_path / "input", tmp_path / "output", tmp_path / "weights"
    (inputs / case.name).mkdir(parents=True)
    for path in case.images:
        (inputs / case.name / path.name).symlink_to(path)
    weights.mkdir()
    torch.save({"format": "btk-unet-1", "model": RunsACommand()}, weights / "w.pt")
    assert contract_main([str(inputs), str(outputs), str(weights)]) == 1
    assert "refused" in capsys.readouterr().err
    assert not (tmp_path / "MARKER").exists() and not outputs.exists()
    torch.load(weights / "w.pt", weights_only=False)  # the payload is live: unsafe loading runs it
    assert (tmp_path / "MARKER").exists()
    monkeypatch.setenv("BTK_UNET_OVERLAP", "half")
    assert contract_main([str(inputs), str(outputs), str(weights)]) == 1
    assert "BTK_UNET_OVERLAP is 'half', not a float" in capsys.readouterr().err
