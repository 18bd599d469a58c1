"""Proof that btk's U-Net learns, and that its container image segments exactly like btk in-process.

A short CPU training run (tests.support.unet.tiny_config) on synthetic lesions inserted into real brains
(tests/support/lesions.py) must reach a whole-tumour Dice >= 0.80 on held-out generated cases. The image built from
containers/unet/Dockerfile, run through the Segmentor with the trained weights mounted, must return the
label map in-process inference gives for the same input, voxel for voxel: same torch build (the same CPU
wheel), same thread count (both pin btk.unet.inference.default_threads()), same numpy release.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.evaluation.metrics import dice
from btk.labels import BRATS_2023, REGIONS
from btk.unet.cases import find_cases, load_images
from btk.unet.inference import Predictor
from btk.unet.training import Trainer, TrainResult
from tests.support.lesions import write_dataset
from tests.support.unet import THREADS, build_unet_image, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, TrainResult]:
    root = tmp_path_factory.mktemp("unet")
    write_dataset(root / "train", 16, seed=1)
    write_dataset(root / "held_out", 6, seed=2)
    result = Trainer(tiny_config(epochs=8, steps_per_epoch=75), device="cpu").train(root / "train", root / "run")
    return root, result


def test_short_cpu_training_reaches_wt_dice_080_on_held_out_cases(trained):
    root, result = trained
    predictor = Predictor([result.best_checkpoint], tta=True, patch=(32, 32, 32), threads=THREADS, device="cpu")
    scores = []
    for case in find_cases(root / "held_out"):
        images, _ = load_images(case)
        labels = predictor.segment(images, BRATS_2023)
        reference = np.asarray(nib.load(str(case.segmentation)).dataobj)
        scores.append([dice(BRATS_2023.region_mask(labels, r), BRATS_2023.region_mask(reference, r)) for r in REGIONS])
    mean = dict(zip(REGIONS, np.mean(scores, axis=0)))
    print("held-out Dice:", {r: round(float(v), 3) for r, v in mean.items()})
    assert mean["WT"] >= 0.80, f"held-out Dice {mean} (per case {np.round(scores, 3).tolist()})"


def test_image_through_the_segmentor_gives_the_in_process_label_map(trained, docker_engine, tmp_path):
    from btk.segment import Segmentor

    root, result = trained
    build_unet_image(tmp_path / "context")
    case = find_cases(root / "held_out")[0]
    exam = tmp_path / "exam"
    exam.mkdir()
    for path in case.images:
        shutil.copy2(path, exam / path.name)
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy2(result.best_checkpoint, weights / "best.pt")
    report = Segmentor(cpu=True, pull=False).run(exam, ["btk-unet"], tmp_path / "seg", weights={"btk-unet": weights})
    assert report.ok, report.runs[0].message
    from_image = nib.load(str(report.outputs["btk-unet"]))
    in_process, reference = Predictor([weights], device="cpu").segment_files(case.images, BRATS_2023)
    assert np.allclose(from_image.affine, reference.affine)
    assert np.asarray(from_image.dataobj).any()
    assert np.array_equal(np.asarray(from_image.dataobj), in_process)
