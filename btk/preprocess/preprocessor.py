"""The Preprocessor: one exam from raw DICOM or NIfTI to atlas-space (or native-space), skull-stripped (or defaced)
images."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.console import logger, progress
from btk.deid import refuse_identifying_name
from btk.errors import InputError
from btk.io import (
    check_replaceable,
    open_nifti,
    refuse_overlap,
    save_float_image,
    save_json,
    save_label_map,
    save_nifti,
    sha256,
)
from btk.modalities import DISPLAY_NAMES, MODALITIES
from btk.preprocess import brain_extraction, orientation
from btk.preprocess.deface import DEFACE_BUFFER_MM, METHOD, deface
from btk.preprocess.exam import (
    ATLAS_TRANSFORM_ROLE,
    NAMINGS,
    PROVENANCE,
    TRANSFORM_ROLES,
    PreprocessedExam,
    output_layout,
)
from btk.preprocess.images import load_checked_image
from btk.preprocess.inputs import ExamInputs, find_exam_inputs, normalise_overrides
from btk.preprocess.output_folder import WORK_PREFIX, built_atomically, remove_abandoned_outputs
from btk.preprocess.provenance import StepTimer, redact, tool_versions, utc_now
from btk.preprocess.qc import write_overview
from btk.preprocess.registration import (
    COREGISTRATION_SAMPLING_RATE,
    BackgroundRegistrations,
    RegistrationJob,
    RegistrationSettings,
    register_all,
    worker_count,
)
from btk.preprocess.resampling import resample
from btk.spaces import DEFAULT_SPACE, MODES, AtlasSpace, NativeSpace, get_space
from btk.staging import OwnedFolder

#: A brain mask outside this range (ml) means the image is not a head MRI (or HD-BET failed on it).
BRAIN_VOLUME_ML = (500.0, 2500.0)
#: Seconds per network pass of HD-BET on 2 CPU cores (measured: 709 s for accurate mode's 5 x 8 passes).
CPU_SECONDS_PER_PASS = 18.0
#: Free space an exam needs beside its output folder (MB), checked before any work: eight float images on the
#: BraTS grid (up to about 20 MB each, compressed), the native images and masks.
REQUIRED_FREE_MB = 150


class Preprocessor:
    """Preprocess exams the BraTS way: co-register to T1, register T1 to an atlas, HD-BET brain masks; or, in a
    native space, only the brain mask and the skull stripping or defacing of the reference image (the T1c).

    Args:
        device: Where HD-BET runs: ``"cpu"``, ``"cuda"`` or ``"auto"`` (GPU when present).
        fast: HD-BET fast mode (1 fold, no mirroring) instead of accurate (5 folds, 8 mirrorings each).
        registration: T1-to-atlas transform: ``"rigid"`` (BraTS default) or ``"affine"``; co-registrations to
            T1 are always rigid.
        mode: ``"skullstrip"`` (BraTS) or ``"deface"`` (remove the face, keep skull and brain: Quickshear,
            :mod:`btk.preprocess.deface`); None: the space's (``deface`` in ``native-t1c``, else ``skullstrip``).
        naming: ``"2023"`` (``<id>-t1n.nii.gz``, ``-t1c``, ``-t2w``, ``-t2f``) or ``"2020"`` (``<id>_t1``,
            ``_t1ce``, ``_t2``, ``_flair``).
        memory_budget_gb: If set and HD-BET's accurate mode is estimated to need more memory, fast mode is used.
        workers: Registrations run in parallel processes (one ITK thread each); default: one per CPU core.
        atlas: The atlas space (:mod:`btk.spaces`): ``"brats-sri24"`` (default; the BraTS SRI24 grid,
            240 x 240 x 155) or ``"brats-mni152"`` (MNI152 1 mm, 182 x 218 x 182: BraTS 2024-2025 adult
            glioma). With a brain-only template (MNI152) the brain-extracted T1 is registered to it. Or
            ``"native-t1c"`` (BraTS 2024-2025 meningioma radiotherapy): the T1c alone, on its own grid, no
            registration; the other modalities are not needed (nor used).

    Example:
        >>> exam = Preprocessor(fast=True).run("exams/patient-01", "out/patient-01")
        >>> exam.outputs["brats/t1c"]
    """

    def __init__(
        self,
        device: str = "auto",
        fast: bool = False,
        registration: str = "rigid",
        mode: str | None = None,
        naming: str = "2023",
        memory_budget_gb: float | None = None,
        workers: int | None = None,
        atlas: str = DEFAULT_SPACE,
    ):
        if naming not in NAMINGS:
            raise InputError(f"unknown naming {naming!r}", hint=f"use one of {', '.join(NAMINGS)}")
        self.space = get_space(atlas)
        mode = mode or self.space.default_mode
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
        self.device = brain_extraction.resolve_device(device)
        self.hdbet_mode = "fast" if fast else "accurate"
        self.atlas_registration = RegistrationSettings(transform=registration)
        self.coregistration = RegistrationSettings(transform="rigid", sampling_rate=COREGISTRATION_SAMPLING_RATE)
        self.mode = mode
        self.naming = naming
        self.memory_budget_gb = memory_budget_gb
        self.workers = workers

    def parameters(self) -> dict:
        """All parameters of this preprocessor (as recorded in the provenance)."""
        parameters: dict = {
            "device": self.device,
            "hdbet_mode": self.hdbet_mode,
            "mode": self.mode,
            "naming": self.naming,
            "atlas": self.space.name,
        }
        if isinstance(self.space, AtlasSpace):
            parameters |= {
                "atlas_registration_input": "brain-extracted T1" if self.space.skull_stripped else "T1 with skull",
                "memory_budget_gb": self.memory_budget_gb,
                "atlas_registration": self.atlas_registration.as_dict(),
                "coregistration": self.coregistration.as_dict(),
                "image_interpolation": "B-spline (order 3), negative values clipped to 0",
                "mask_interpolation": "nearest neighbour",
            }
        else:
            parameters |= {
                "registration": f"none: the {self.space.reference} keeps its own grid",
                "memory_budget_gb": self.memory_budget_gb,
            }
        parameters["brain_volume_ml_accepted"] = list(BRAIN_VOLUME_ML)
        if self.mode == "deface":
            parameters["defacing"] = {"method": METHOD, "buffer_mm": DEFACE_BUFFER_MM}
        return parameters

    def run(
        self,
        exam_path: str | Path,
        output_dir: str | Path,
        force: bool = False,
        modalities: Mapping[str, str | Path | None] | None = None,
        case_id: str | None = None,
    ) -> PreprocessedExam:
        """Preprocess one exam into ``output_dir`` (the exam folder) and return it.

        Args:
            exam_path: Folder of DICOM files (any nesting) or NIfTI files.
            output_dir: The exam output folder; written atomically (a hidden sibling folder is renamed into
                place when everything is done), so it is either absent, the previous result or complete. It
                may not be, hold or lie inside an input.
            force: Redo a finished exam (otherwise it is returned as it is). Only a folder btk wrote (with
                its ``provenance.json``) is ever replaced; a user's folder or file never is.
            modalities: ``{"t1": path, "t1c": path, "t2": path, "flair": path}`` (any subset) overriding recognition.
            case_id: Identifier in the file names (default: the output folder's name).
        """
        exam_path, output_dir = Path(exam_path), Path(output_dir).absolute()
        overrides = normalise_overrides(modalities)
        refuse_overlap(output_dir, [exam_path, *overrides.values()])
        remove_abandoned_outputs(output_dir)
        if output_dir.exists() and not force and PreprocessedExam.is_complete(output_dir):
            logger.info("%s is already preprocessed; nothing to do (use --force to redo it)", output_dir)
            return PreprocessedExam.load(output_dir)
        check_replaceable(output_dir, force, folder=True)
        case_id = _valid_case_id(case_id or output_dir.name)
        with (
            built_atomically(output_dir, REQUIRED_FREE_MB) as staging,
            OwnedFolder(Path(tempfile.gettempdir()), WORK_PREFIX) as work,
        ):
            self._process(exam_path, overrides, case_id, staging, work)
        logger.info("Wrote %s", output_dir)
        return PreprocessedExam.load(output_dir)

    def _process(self, exam_path: Path, overrides: dict[str, Path], case_id: str, folder: Path, work: Path) -> None:
        """Preprocess one exam into ``folder`` (its staging folder), with intermediate files in ``work``."""
        timer = StepTimer()
        layout = output_layout(case_id, self.naming, self.mode, self.space)
        out = {role: folder / relative for role, relative in layout.items()}
        if isinstance(self.space, NativeSpace):
            inputs, extraction, volume = self._process_native(
                self.space, exam_path, overrides, case_id, work, out, timer
            )
        else:
            inputs, extraction, volume = self._process_atlas(
                self.space, exam_path, overrides, case_id, work, out, timer
            )
        provenance = self._provenance(case_id, inputs, extraction, volume, timer, layout)
        save_json(redact(provenance, inputs.patient_names), folder / PROVENANCE)

    def _process_atlas(
        self,
        space: AtlasSpace,
        exam_path: Path,
        overrides: dict[str, Path],
        case_id: str,
        work: Path,
        out: dict[str, Path],
        timer: StepTimer,
    ) -> tuple[ExamInputs, brain_extraction.BrainExtractionResult, float]:
        """Co-registration, atlas registration, brain mask and resampling: the inputs, the brain extraction and
        the brain's volume (ml)."""
        atlas = space.template_path()
        atlas_image = open_nifti(atlas)
        with progress() as bar:
            task = bar.add_task("Finding the modalities", total=6)
            with timer.step("inputs"):
                inputs, images = _read_inputs(exam_path, overrides, case_id, work, MODALITIES)
                working = {m: _write_working_copy(images[m], work / f"{m}.nii.gz") for m in MODALITIES}
            extraction, t1_mask = self._extract_and_register(
                space, atlas, images, inputs, working, work, out, timer, bar, task
            )
            bar.update(task, advance=1, description="Brain masks in native and atlas space")
            with timer.step("masks"):
                native_masks, brats_mask = _write_masks(t1_mask, images, working, atlas, atlas_image, out)
            bar.update(task, advance=1, description=f"Resampling into the {space.name} space")
            with timer.step("resampling_and_masking"):
                brats_images = self._write_images(images, working, native_masks, brats_mask, atlas, atlas_image, out)
            bar.update(task, advance=1, description="Quality-control overviews")
            with timer.step("qc"):
                for modality in MODALITIES:
                    write_overview(
                        brats_images[modality],
                        brats_mask,
                        atlas_image.affine,
                        f"{case_id} {DISPLAY_NAMES[modality]}",
                        out[f"qc/{modality}"],
                    )
            bar.update(task, advance=1)
        return inputs, extraction, _volume_ml(t1_mask, images["t1n"][0])

    def _process_native(
        self,
        space: NativeSpace,
        exam_path: Path,
        overrides: dict[str, Path],
        case_id: str,
        work: Path,
        out: dict[str, Path],
        timer: StepTimer,
    ) -> tuple[ExamInputs, brain_extraction.BrainExtractionResult, float]:
        """The reference image's brain mask, and the image skull-stripped or defaced on its own grid (nothing is
        registered or resampled): the inputs, the brain extraction and the brain's volume (ml)."""
        reference = space.reference
        with progress() as bar:
            task = bar.add_task(f"Finding the {DISPLAY_NAMES[reference]}", total=4)
            with timer.step("inputs"):
                inputs, images = _read_inputs(exam_path, overrides, case_id, work, space.modalities)
            bar.update(task, advance=1, description=f"Brain extraction (HD-BET, {self.hdbet_mode} mode)")
            with timer.step("brain_extraction"):
                extraction, mask = self._extract_brain(images[reference], inputs.images[reference], bar, task)
            doing = "Defacing" if self.mode == "deface" else "Skull stripping"
            bar.update(task, advance=1, description=f"{doing} the {DISPLAY_NAMES[reference]} on its own grid")
            with timer.step("masks"):
                save_label_map(mask, images[reference][0], out["brats/mask"])
            with timer.step("skullstrip_or_deface"):
                for modality in space.modalities:
                    if self.mode == "skullstrip":
                        _save_like_input(images[modality], images[modality][1], out[f"brats_skull/{modality}"])
                    self._write_native(images[modality], mask, modality, out, "brats")
            bar.update(task, advance=1, description="Quality-control overview")
            with timer.step("qc"):
                for modality in space.modalities:
                    shown = open_nifti(out[f"brats/{modality}"])
                    view = nib.as_closest_canonical(shown)  # axial slices, whatever the acquisition
                    view_mask = nib.as_closest_canonical(nib.Nifti1Image(mask, shown.affine))
                    write_overview(
                        np.asanyarray(view.dataobj, dtype=np.float32),
                        np.asanyarray(view_mask.dataobj),
                        view.affine,
                        f"{case_id} {DISPLAY_NAMES[modality]}",
                        out[f"qc/{modality}"],
                    )
            bar.update(task, advance=1)
        return inputs, extraction, _volume_ml(mask, images[reference][0])

    def _extract_and_register(
        self,
        space: AtlasSpace,
        atlas: Path,
        images: dict[str, _Image],
        inputs: ExamInputs,
        working: dict[str, Path],
        work: Path,
        out: dict[str, Path],
        timer: StepTimer,
        bar,
        task,
    ) -> tuple[brain_extraction.BrainExtractionResult, np.ndarray]:
        """The T1's brain mask (HD-BET) and the four registrations, written into the transform files of
        ``out``: the brain extraction and the mask.

        The registrations run in worker processes during the brain extraction, except for a brain-only
        template, whose registration needs the brain mask first. The ``registration`` timing is then the wait
        after the brain extraction (see :meth:`_extract_brain` for the cores HD-BET uses meanwhile).
        """
        if space.skull_stripped:  # the brain-only template is matched by the brain-extracted T1: mask first
            bar.update(task, advance=1, description=f"Brain extraction (HD-BET, {self.hdbet_mode} mode)")
            with timer.step("brain_extraction"):
                extraction, t1_mask = self._extract_brain(images["t1n"], inputs.images["t1n"], bar, task)
            bar.update(task, advance=1, description="Registering T1 to the atlas and T1c, T2, FLAIR to T1")
            with timer.step("registration"):
                register_all(
                    self._registration_jobs(atlas, _brain_only(working["t1n"], t1_mask, work), working, out),
                    self.workers,
                )
        else:  # the registrations run in their worker processes during the brain extraction
            jobs = self._registration_jobs(atlas, working["t1n"], working, out)
            with BackgroundRegistrations(jobs, self.workers) as registrations:
                bar.update(
                    task,
                    advance=1,
                    description=f"Brain extraction (HD-BET, {self.hdbet_mode} mode) and registrations",
                )
                with timer.step("brain_extraction"):
                    extraction, t1_mask = self._extract_brain(
                        images["t1n"], inputs.images["t1n"], bar, task, busy_cores=worker_count(jobs, self.workers)
                    )
                bar.update(task, advance=1, description="Registering T1 to the atlas and T1c, T2, FLAIR to T1")
                with timer.step("registration"):
                    registrations.wait()
        return extraction, t1_mask

    def _registration_jobs(
        self, atlas: Path, t1_for_atlas: Path, working: dict[str, Path], out: dict[str, Path]
    ) -> list[RegistrationJob]:
        """T1 (``t1_for_atlas``: the head, or the brain for a brain-only template) to the atlas, and T1c, T2
        and FLAIR to T1, into the transform files of ``out``; the longest first."""
        jobs = [RegistrationJob(atlas, t1_for_atlas, out[ATLAS_TRANSFORM_ROLE], self.atlas_registration)]
        return jobs + [
            RegistrationJob(working["t1n"], working[m], out[role], self.coregistration)
            for m, role in TRANSFORM_ROLES.items()
        ]

    def _write_images(
        self,
        images: dict[str, _Image],
        working: dict[str, Path],
        native_masks: dict[str, np.ndarray],
        brats_mask: np.ndarray,
        atlas: Path,
        atlas_image: nib.Nifti1Image,
        out: dict[str, Path],
    ) -> dict[str, np.ndarray]:
        """Every modality resampled into atlas space and written in both spaces, skull-stripped or defaced;
        the atlas-space head images, for the QC overviews."""
        brats_images = {}
        for modality in MODALITIES:
            chain = [out[ATLAS_TRANSFORM_ROLE]] + ([out[TRANSFORM_ROLES[modality]]] if modality != "t1n" else [])
            data = np.clip(resample(working[modality], atlas, chain), 0, None)
            brats_images[modality] = self._write_brats(data, brats_mask, atlas_image, modality, out)
            self._write_native(images[modality], native_masks[modality], modality, out)
        return brats_images

    def _provenance(
        self,
        case_id: str,
        inputs: ExamInputs,
        extraction: brain_extraction.BrainExtractionResult,
        brain_volume_ml: float,
        timer: StepTimer,
        layout: dict[str, str],
    ) -> dict:
        """What ``provenance.json`` records: the inputs and how they were recognised, versions, parameters,
        the brain extraction, the atlas, timings and the outputs (before redaction)."""
        return {
            "btk_preprocess": 1,
            "case_id": case_id,
            "created": utc_now(),
            "source": inputs.source,
            "inputs": {m: {"path": str(Path(p).absolute()), "sha256": sha256(p)} for m, p in inputs.images.items()},
            "recognition": {"candidates": _candidate_report(inputs), "ambiguities": inputs.notes},
            "versions": tool_versions(),
            "parameters": self.parameters(),
            "brain_extraction": {
                "mode_used": extraction.mode,
                "device": extraction.device,
                "cpu_threads": extraction.cpu_threads,
                "fallback": extraction.fallback,
                "weights": extraction.weights,
                "brain_volume_ml": brain_volume_ml,
            },
            "atlas": self.space.record(),
            "timings_seconds": timer.seconds,
            "outputs": layout,
        }

    def _extract_brain(
        self, t1, t1_path: Path, bar, task, busy_cores: int = 0
    ) -> tuple[brain_extraction.BrainExtractionResult, np.ndarray]:
        """HD-BET's brain mask of the T1 and how it was made, while ``busy_cores`` cores run other work.

        In fast mode on the CPU, HD-BET then runs on the cores left (at least one): more PyTorch threads than
        free cores wait for each other (on 2 cores beside two registrations: 28 s instead of 37 s, and the
        same mask). Accurate mode (minutes) keeps PyTorch's thread count: the other work ends early in it.
        """
        image, data = t1
        canonical, canonical_data, spacing = orientation.to_hdbet_axes(image, data)
        mode, _ = brain_extraction.planned_mode(self.hdbet_mode, canonical_data.shape, spacing, self.memory_budget_gb)
        cpu_threads = max(1, (os.cpu_count() or 1) - busy_cores) if busy_cores and mode == "fast" else None
        if self.hdbet_mode == "accurate" and self.device == "cpu":
            minutes = CPU_SECONDS_PER_PASS * 5 * 8 / 60
            logger.info(
                "HD-BET accurate mode on CPU takes about %.0f minutes (5 folds x 8 mirrorings); "
                "use --fast for about 1 minute",
                minutes,
            )

        def on_step(done: int, total: int) -> None:
            bar.update(task, description=f"Brain extraction (HD-BET, fold {done}/{total} done)")

        extraction = brain_extraction.extract_brain(
            canonical_data, spacing, self.hdbet_mode, self.device, self.memory_budget_gb, on_step, cpu_threads
        )
        mask = orientation.from_hdbet_axes(extraction.mask, canonical, image)
        volume = _volume_ml(mask, image)
        if not BRAIN_VOLUME_ML[0] <= volume <= BRAIN_VOLUME_ML[1]:
            raise InputError(
                f"this does not look like a brain MRI: HD-BET found {volume:.0f} ml of brain "
                f"(a head MRI gives {BRAIN_VOLUME_ML[0]:.0f} to {BRAIN_VOLUME_ML[1]:.0f} ml)",
                path=t1_path,
                hint="check that the T1 image is a head MRI covering the whole brain",
            )
        return extraction, mask

    def _write_brats(self, data, brats_mask, atlas_image, modality, out) -> np.ndarray:
        """Write the atlas-space outputs of one modality; return the head image to show in the QC overview."""
        if self.mode == "skullstrip":
            save_float_image(data, atlas_image, out[f"brats_skull/{modality}"])
            save_float_image(data * (brats_mask > 0), atlas_image, out[f"brats/{modality}"])
            return data
        defaced = deface(atlas_image, data, brats_mask)
        save_float_image(defaced, atlas_image, out[f"brats/{modality}"])
        return defaced

    def _write_native(self, image_and_data, mask, modality, out, space: str = "native") -> None:
        """Write one image on its own grid, skull-stripped by ``mask`` or defaced, as ``<space>/<modality>``, with
        the input's voxel type and header."""
        image, data = image_and_data
        result = data * (mask > 0) if self.mode == "skullstrip" else deface(image, data, mask)
        _save_like_input(image_and_data, result, out[f"{space}/{modality}"])


#: One input image and its voxels, as :func:`btk.preprocess.images.load_checked_image` reads them.
_Image = tuple[nib.Nifti1Image, np.ndarray]


def _brain_only(t1_path: Path, mask: np.ndarray, work: Path) -> Path:
    """The T1 with everything outside the brain mask set to 0, written into ``work`` (for a brain-only
    template)."""
    t1 = open_nifti(t1_path)
    brain = np.asarray(t1.dataobj, dtype=np.float32) * (mask > 0)
    path = work / "t1n_brain.nii.gz"
    nib.save(nib.Nifti1Image(brain, t1.affine, t1.header), str(path))
    return path


def _read_inputs(
    exam_path: Path, overrides: dict[str, Path], case_id: str, work: Path, modalities: tuple[str, ...]
) -> tuple[ExamInputs, dict[str, _Image]]:
    """The exam's recognised inputs (``modalities`` at least), and each of those images read and checked."""
    inputs = find_exam_inputs(exam_path, overrides, work / "dicom", modalities)
    refuse_identifying_name(case_id, "the case identifier (--case-id, or the output folder's name)")
    for modality, path in inputs.images.items():
        if modality in modalities:
            logger.info("%s: %s", DISPLAY_NAMES[modality], path.name)
    return inputs, {m: load_checked_image(inputs.images[m]) for m in modalities}


def _save_like_input(image_and_data: _Image, result: np.ndarray, path: Path) -> None:
    """Write ``result`` (on the input's grid) with the input image's voxel type and header."""
    image, data = image_and_data
    save_nifti(nib.Nifti1Image(result.astype(data.dtype, copy=False), image.affine, image.header.copy()), path)


def _write_masks(
    t1_mask: np.ndarray,
    images: dict[str, _Image],
    working: dict[str, Path],
    atlas: Path,
    atlas_image: nib.Nifti1Image,
    out: dict[str, Path],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The T1 brain mask carried into every modality's native space and into atlas space, and written;
    the native masks by modality, and the atlas-space mask."""
    t1_mask_image = _mask_image(t1_mask, images["t1n"][0])
    native_masks = {"t1n": t1_mask}
    for modality, role in TRANSFORM_ROLES.items():
        native_masks[modality] = resample(t1_mask_image, working[modality], [out[role]], inverse=True, kind="mask")
    for modality, mask in native_masks.items():
        save_label_map(mask, images[modality][0], out[f"native_mask/{modality}"])
    brats_mask = resample(t1_mask_image, atlas, [out[ATLAS_TRANSFORM_ROLE]], kind="mask")
    save_label_map(brats_mask, atlas_image, out["brats/mask"])
    return native_masks, brats_mask


def _write_working_copy(image_and_data, path: Path) -> Path:
    """A float32, 3-D copy of an input for ANTs (inputs may be scaled, 4-D with one volume, compressed...)."""
    image, data = image_and_data
    copy = nib.Nifti1Image(np.asarray(data, dtype=np.float32), image.affine)
    copy.set_qform(image.affine, 1)
    copy.set_sform(image.affine, 1)
    nib.save(copy, str(path))
    return path


def _mask_image(mask: np.ndarray, reference: nib.Nifti1Image) -> nib.Nifti1Image:
    return nib.Nifti1Image(mask.astype(np.float32), reference.affine)


def _volume_ml(mask: np.ndarray, image: nib.Nifti1Image) -> float:
    return float(np.count_nonzero(mask) * np.prod(image.header.get_zooms()[:3]) / 1000.0)


def _candidate_report(inputs: ExamInputs) -> list[dict]:
    return [
        {
            "file": c.path.name,
            "series_number": c.series_number,
            "name": c.text,
            "modality": c.modality,
            "reason": c.reason,
        }
        for c in inputs.candidates
    ]


def _valid_case_id(case_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", case_id).strip("-.")
    if not cleaned:
        raise InputError(f"cannot make a case identifier from {case_id!r}", hint="pass --case-id")
    return cleaned
