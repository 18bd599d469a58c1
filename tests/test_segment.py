"""The Segmentor's parts that need no Docker engine: registry, exam discovery, contracts, lanes, checks, CLI."""

from __future__ import annotations

import gzip
import json
import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.segment.contracts import contract_for
from btk.segment.exam import Exam
from btk.segment.gpus import Gpu, GpuPool, assign_lane, select_gpus
from btk.segment.outputs import checked_result
from btk.segment.registry import LEGACY_NAMING, REGISTRY_ENV, builtin_registry_text, load_registry, parse_registry
from btk.segment.runner import Segmentor, _last_words
from tests.support.segment import AFFINE, SHAPE, entry, make_exam, write_registry

ROOT = Path(__file__).resolve().parents[1]


# --- registry ---------------------------------------------------------------------------------------------


def test_shipped_registry_is_the_repository_file_and_valid():
    """btk/data/algorithms.json (in the wheel) is a real file, identical to algorithms.json at the root."""
    packaged = ROOT / "btk" / "data" / "algorithms.json"
    assert not packaged.is_symlink() and not (ROOT / "algorithms.json").is_symlink()
    assert builtin_registry_text() == packaged.read_text(encoding="utf-8")
    assert packaged.read_bytes() == (ROOT / "algorithms.json").read_bytes()
    registry = load_registry()
    kinds = {a.contract.kind for a in registry.algorithms}
    assert kinds == {"brats-legacy", "mlcube", "brats2025"}
    unet = registry.get("btk-unet")
    assert unet.contract.kind == "brats2025" and unet.gpu == "optional" and not unet.needs_root
    assert unet.weights_mount == "/weights" and unet.labels == "brats2023"
    assert unet.build.dockerfile == "containers/unet/Dockerfile" and unet.build.context == "."
    assert unet.source == ROOT  # build paths of shipped entries are relative to the source checkout
    assert registry.get("isen-20").contract.mount == "/app/data/"
    assert registry.get("yixinmpl-20").needs_root
    assert {a.contract.naming for a in registry.algorithms if a.contract.kind == "brats-legacy"} <= set(LEGACY_NAMING)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contract": {"kind": "ftp"}}, "contract"),
        ({"labels": "brats1999"}, "unknown label convention"),
        ({"image": "repo/x:1"}, "not in 'image'"),
        ({"digest": "sha256:abc"}, "digest"),
        ({"name": "Has Spaces"}, "name"),
        ({"gpu": "maybe"}, "gpu"),
        ({"weights_mount": "weights"}, "weights_mount"),
        ({"build": {"context": "."}}, "build.dockerfile"),
    ],
)
def test_invalid_entries_are_named_in_one_clear_error(tmp_path, change, message):
    bad = {**entry("mine", "repo/x:1", {"kind": "brats2025"}), **change}
    path = write_registry(tmp_path / "r.json", bad)
    with pytest.raises(BtkError, match=message) as caught:
        load_registry(path)
    assert caught.value.path == path


def test_registry_format_errors(tmp_path):
    with pytest.raises(BtkError, match="not valid JSON"):
        parse_registry("{", "x.json")
    with pytest.raises(BtkError, match="schema version 2"):
        parse_registry(json.dumps({"schema_version": 2, "algorithms": []}), "x.json")
    twice = entry("a", "r/x:1", {"kind": "brats2025"})
    with pytest.raises(BtkError, match="listed twice"):
        parse_registry(json.dumps({"schema_version": 1, "algorithms": [twice, twice]}), "x.json")
    with pytest.raises(BtkError, match="registry file not found"):
        load_registry(tmp_path / "missing.json")


def test_user_registries_extend_and_override_from_option_and_environment(tmp_path, monkeypatch):
    mine = write_registry(tmp_path / "mine.json", entry("mine", "lab/seg:2", {"kind": "brats2025"}))
    override = write_registry(tmp_path / "o.json", entry("btk-unet", "lab/unet:9", {"kind": "brats2025"}))
    monkeypatch.setenv(REGISTRY_ENV, str(mine))
    registry = load_registry(override)
    assert registry.get("mine").reference == "lab/seg:2"
    assert registry.get("btk-unet").reference == "lab/unet:9"
    assert registry.names().count("btk-unet") == 1
    assert registry.get("mine").source == tmp_path  # a user entry builds relative to its registry file
    with pytest.raises(BtkError, match="unknown algorithm 'nope'"):
        registry.get("nope")


def test_an_unknown_name_suggests_the_entries_it_resembles():
    registry = load_registry()
    with pytest.raises(BtkError) as raised:
        registry.get("unet")
    assert "did you mean 'btk-unet'" in raised.value.hint


def test_digest_pins_the_reference():
    digest = "sha256:" + "a" * 64
    registry = parse_registry(
        json.dumps(
            {"schema_version": 1, "algorithms": [entry("pinned", "r/x:1", {"kind": "brats2025"}, digest=digest)]}
        ),
        "x",
    )
    assert registry.get("pinned").reference == f"r/x@{digest}"


# --- exam -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        {"t1": "a_t1.nii.gz", "t1c": "a_t1c.nii.gz", "t2": "a_t2.nii.gz", "flair": "a_flair.nii.gz"},
        {"t1": "X-t1n.nii.gz", "t1c": "X-t1c.nii.gz", "t2": "X-t2w.nii.gz", "flair": "X-t2f.nii.gz"},
        {"t1": "t1.nii", "t1c": "t1ce.nii", "t2": "t2.nii", "flair": "fla.nii"},
        {
            "t1": "BraTS20_Training_001_t1.nii.gz",
            "t1c": "BraTS20_Training_001_t1ce.nii.gz",
            "t2": "BraTS20_Training_001_t2.nii.gz",
            "flair": "BraTS20_Training_001_flair.nii.gz",
        },
        {
            "t1": "BraTS-GLI-00000-000-t1n.nii.gz",
            "t1c": "BraTS-GLI-00000-000-t1c.nii.gz",
            "t2": "BraTS-GLI-00000-000-t2w.nii.gz",
            "flair": "BraTS-GLI-00000-000-t2f.nii.gz",
        },
    ],
)
def test_exam_finds_the_four_modalities(tmp_path, names):
    folder = make_exam(tmp_path / "exam", names=names)
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.uint8), AFFINE), str(folder / "seg.nii.gz"))
    exam = Exam.from_folder(folder)
    assert {m: p.name for m, p in exam.files().items()} == names
    assert exam.reference().shape == SHAPE


def test_exam_prefers_the_preprocessor_provenance(tmp_path):
    """A `btk preprocess` folder: the BraTS-space images named by provenance.json, not by guessing."""
    folder = tmp_path / "P001"
    make_exam(
        folder / "brats",
        names={"t1": "P001-t1n.nii.gz", "t1c": "P001-t1c.nii.gz", "t2": "P001-t2w.nii.gz", "flair": "P001-t2f.nii.gz"},
    )
    make_exam(folder / "native")  # decoys a name-based search could pick up
    make_exam(folder)
    roles = {"brats/t1n": "t1n", "brats/t1c": "t1c", "brats/t2w": "t2w", "brats/t2f": "t2f"}
    outputs = {role: f"brats/P001-{suffix}.nii.gz" for role, suffix in roles.items()}
    (folder / "provenance.json").write_text(json.dumps({"outputs": {**outputs, "native/t1n": "native/x.nii.gz"}}))
    exam = Exam.from_folder(folder)
    assert exam.name == "P001"
    assert {m: p.relative_to(folder).as_posix() for m, p in exam.files().items()} == {
        "t1": "brats/P001-t1n.nii.gz",
        "t1c": "brats/P001-t1c.nii.gz",
        "t2": "brats/P001-t2w.nii.gz",
        "flair": "brats/P001-t2f.nii.gz",
    }
    del outputs["brats/t2f"]
    (folder / "provenance.json").write_text(json.dumps({"outputs": outputs}))
    with pytest.raises(BtkError, match="lists no brats/t2f image: the preprocessing did not finish"):
        Exam.from_folder(folder)
    (folder / "provenance.json").write_text("{")
    with pytest.raises(BtkError, match="cannot read the exam's provenance"):
        Exam.from_folder(folder)


def test_exam_errors(tmp_path):
    with pytest.raises(BtkError, match="exam folder not found"):
        Exam.from_folder(tmp_path / "nothing")
    folder = make_exam(tmp_path / "e")
    (folder / "exam_t2.nii.gz").unlink()
    with pytest.raises(BtkError, match="no t2 image found"):
        Exam.from_folder(folder)
    make_exam(tmp_path / "e")
    make_exam(
        tmp_path / "e",
        names={"t1": "b_t1.nii.gz", "t1c": "exam_t1c.nii.gz", "t2": "exam_t2.nii.gz", "flair": "exam_flair.nii.gz"},
    )
    with pytest.raises(BtkError, match="more than one image per modality"):
        Exam.from_folder(folder)
    odd = make_exam(tmp_path / "odd", shape_of={"t2": (10, 10, 10)})
    with pytest.raises(BtkError, match="not on one grid"):
        Exam.from_folder(odd)


# --- contracts --------------------------------------------------------------------------------------------


def _algorithm(contract: dict, **fields):
    text = json.dumps({"schema_version": 1, "algorithms": [entry("algo", "r/x:1", contract, **fields)]})
    return parse_registry(text, "test").get("algo")


@pytest.mark.parametrize("naming", sorted(LEGACY_NAMING))
def test_legacy_contract_stages_each_naming_scheme(tmp_path, naming):
    exam = Exam.from_folder(make_exam(tmp_path / "exam"))
    algorithm = _algorithm(
        {"kind": "brats-legacy", "mount": "/workspace/data/", "naming": naming}, command=["python", "run.py"]
    )
    root = tmp_path / "stage"
    root.mkdir()
    staging = contract_for(algorithm).stage(exam, root)
    data = root / "data"
    assert sorted(p.name for p in data.iterdir() if p.is_file()) == sorted(LEGACY_NAMING[naming].values())
    for modality, name in LEGACY_NAMING[naming].items():
        staged = nib.load(str(data / name))
        assert np.array_equal(staged.get_fdata(), nib.load(str(exam.files()[modality])).get_fdata())
        if name.endswith(".gz"):
            with gzip.open(data / name) as stream:
                assert stream.read(4)
        else:
            assert (data / name).read_bytes()[:4]
    assert [(m.target, m.read_only) for m in staging.mounts] == [
        ("/workspace/data", True),
        ("/workspace/data/results", False),
    ]
    assert staging.command == ("python", "run.py")


def test_mlcube_contract_layout_and_command(tmp_path):
    exam = Exam.from_folder(make_exam(tmp_path / "exam"))
    algorithm = _algorithm({"kind": "mlcube", "case": "BraTS-GLI-00000-000", "parameters_file": True})
    staging = contract_for(algorithm).stage(exam, tmp_path)
    case = tmp_path / "data" / "BraTS-GLI-00000-000"
    assert sorted(p.name for p in case.iterdir()) == [
        f"BraTS-GLI-00000-000-{s}.nii.gz" for s in ("t1c", "t1n", "t2f", "t2w")
    ]
    assert {m.target: m.read_only for m in staging.mounts} == {
        "/mlcube_io0": True,
        "/mlcube_io1": True,
        "/mlcube_io2": False,
        "/mlcube_io3": True,
    }
    assert staging.command == (
        "infer",
        "--data_path=/mlcube_io0",
        "--output_path=/mlcube_io2",
        "--parameters_file=/mlcube_io3/parameters.yml",
    )
    assert (tmp_path / "parameters" / "parameters.yml").is_file()


def test_brats2025_contract_and_result_discovery(tmp_path):
    exam = Exam.from_folder(make_exam(tmp_path / "exam"))
    contract = contract_for(_algorithm({"kind": "brats2025", "case": "BraTS-GLI-00001-000"}))
    staging = contract.stage(exam, tmp_path)
    assert (tmp_path / "input" / "BraTS-GLI-00001-000" / "BraTS-GLI-00001-000-t2f.nii.gz").is_file()
    assert {m.target: m.read_only for m in staging.mounts} == {"/input": True, "/output": False}
    assert staging.command is None
    into = tmp_path / "collected"
    into.mkdir()
    with pytest.raises(BtkError, match="output folder is empty"):
        contract.find_result(staging, into)
    (staging.output / "notes.txt").write_text("x")
    with pytest.raises(BtkError, match=r"it wrote: notes\.txt"):
        contract.find_result(staging, into)
    (staging.output / "BraTS-GLI-00001-000.nii.gz").write_bytes(b"result")
    found = contract.find_result(staging, into)
    assert found == into / "BraTS-GLI-00001-000.nii.gz" and found.read_bytes() == b"result"  # btk's own copy


def test_weights_are_bound_read_only_where_the_image_reads_them(tmp_path):
    exam = Exam.from_folder(make_exam(tmp_path / "exam"))
    weights = tmp_path / "weights"
    weights.mkdir()
    mlcube = contract_for(_algorithm({"kind": "mlcube"}))
    (tmp_path / "a").mkdir()
    staged = mlcube.stage_with_weights(exam, tmp_path / "a", weights)
    mounts = {m.target: (m.source, m.read_only) for m in staged.mounts}
    assert mounts["/mlcube_io1"] == (weights, True) and len(mounts) == 4
    unet = contract_for(_algorithm({"kind": "brats2025"}, weights_mount="/weights"))
    (tmp_path / "b").mkdir()
    staged = unet.stage_with_weights(exam, tmp_path / "b", weights)
    mounts = {m.target: (m.source, m.read_only) for m in staged.mounts}
    assert mounts["/weights"] == (weights, True) and set(mounts) == {"/input", "/output", "/weights"}
    (tmp_path / "c").mkdir()
    assert "/weights" not in {m.target for m in unet.stage_with_weights(exam, tmp_path / "c", None).mounts}
    plain = contract_for(_algorithm({"kind": "brats2025"}))
    (tmp_path / "d").mkdir()
    with pytest.raises(BtkError, match="algo takes no weights folder"):
        plain.stage_with_weights(exam, tmp_path / "d", weights)


def test_case_schema_separator_and_modalities_name_the_staged_files(tmp_path):
    """The orchestrator's naming options: input_name_schema, subject_modality_separator, a T1c-only image."""
    exam = Exam.from_folder(make_exam(tmp_path / "exam"))
    menrt = {"kind": "brats2025", "case_schema": "BraTS-MEN-RT-{id:04d}-1", "separator": "_"}
    contract = contract_for(_algorithm(menrt, modalities=["t1c"]))
    (tmp_path / "a").mkdir()
    staging = contract.stage(exam, tmp_path / "a")
    case = tmp_path / "a" / "input" / "BraTS-MEN-RT-0000-1"
    assert [p.name for p in case.iterdir()] == ["BraTS-MEN-RT-0000-1_t1c.nii.gz"]
    assert contract.result_patterns()[0] == "BraTS-MEN-RT-0000-1.nii.gz"
    (staging.output / "BraTS-MEN-RT-0000-1.nii.gz").write_bytes(b"result")
    (tmp_path / "into").mkdir()
    assert contract.find_result(staging, tmp_path / "into").name == "BraTS-MEN-RT-0000-1.nii.gz"
    post = {
        "kind": "mlcube",
        "case_schema": "BraTS-GLI-{id:05d}-{timepoint_suffix}",
        "timepoint_suffixes": {"pre": "000", "post": "100"},
        "timepoint": "pre",
    }
    algorithm = _algorithm(post)
    for timepoint, folder in ((None, "BraTS-GLI-00000-000"), ("post", "BraTS-GLI-00000-100")):
        root = tmp_path / f"tp-{timepoint}"
        root.mkdir()
        contract_for(algorithm, timepoint).stage(exam, root)
        assert sorted(p.name for p in (root / "data" / folder).iterdir()) == [
            f"{folder}-{s}.nii.gz" for s in ("t1c", "t1n", "t2f", "t2w")
        ]
    with pytest.raises(BtkError, match="unknown time point 'later'"):
        contract_for(algorithm, "later")
    with pytest.raises(BtkError, match="knows no time points"):
        contract_for(_algorithm({"kind": "brats-legacy", "mount": "/data", "naming": "b17"}), "pre")


def test_mlcube_additional_files_and_parameters_are_passed_like_the_orchestrator(tmp_path):
    exam = Exam.from_folder(make_exam(tmp_path / "exam"))
    contract = {
        "kind": "mlcube",
        "parameters_file": True,
        "parameters_name": "brats24_x.yml",
        "parameters": {"lr": 1e-05, "tta": True, "name": "gaussian", "sizes": [64, 128], "none": None},
    }
    extra = {"zenodo_record": "14411467", "arguments": {"models": "models", "checkpoint_dir": ""}}
    algorithm = _algorithm(contract, additional_files=extra)
    staging = contract_for(algorithm).stage(exam, tmp_path)
    assert staging.command == (
        "infer",
        "--data_path=/mlcube_io0",
        "--output_path=/mlcube_io2",
        "--models=/mlcube_io1/models",
        "--checkpoint_dir=/mlcube_io1",
        "--parameters_file=/mlcube_io3/brats24_x.yml",
    )
    text = (tmp_path / "parameters" / "brats24_x.yml").read_text(encoding="utf-8")
    assert "1.0e-05" in text  # a YAML 1.1 reader takes 1e-05 for a string
    assert json.loads(text) == contract["parameters"]
    assert algorithm.additional_files.url == "https://zenodo.org/records/14411467"
    default = _algorithm({"kind": "mlcube"}, additional_files={"zenodo_record": "1"})
    (tmp_path / "b").mkdir()
    assert contract_for(default).stage(exam, tmp_path / "b").command[-1] == "--weights=/mlcube_io1"


@pytest.mark.parametrize(
    ("contract", "fields", "message"),
    [
        ({"kind": "brats2025", "case": "A", "case_schema": "B-{id}"}, {}, "either case or case_schema"),
        ({"kind": "brats2025", "case_schema": "B-{id}-{timepoint_suffix}"}, {}, "timepoint_suffixes"),
        ({"kind": "brats2025", "case_schema": "B-{nope}"}, {}, "cannot be filled in"),
        (
            {"kind": "brats2025", "case_schema": "B-{timepoint_suffix}", "timepoint_suffixes": {"pre": "0"}},
            {},
            "name the timepoint",
        ),
        ({"kind": "brats2025", "timepoint": "pre"}, {}, "need a case_schema"),
        ({"kind": "mlcube", "parameters": {"a": 1}}, {}, "need parameters_file"),
        ({"kind": "brats2025"}, {"additional_files": {"zenodo_record": "1"}}, "MLCube images only"),
        ({"kind": "mlcube"}, {"additional_files": {"zenodo_record": "1", "arguments": {"w": "/etc"}}}, "inside"),
        ({"kind": "brats2025"}, {"output": "image"}, "has no 'labels'"),
        ({"kind": "brats2025"}, {"labels": None}, "needs 'labels'"),
        ({"kind": "brats2025"}, {"modalities": ["t1c", "t1c"]}, "listed twice"),
        ({"kind": "brats2025"}, {"modalities": ["pd"]}, "modalities"),
        ({"kind": "brats2025"}, {"track": "lungs"}, "track"),
        ({"kind": "brats2025"}, {"rank": 0}, "rank"),
    ],
)
def test_orchestrator_fields_are_validated(tmp_path, contract, fields, message):
    path = write_registry(tmp_path / "r.json", {**entry("mine", "repo/x:1", contract), **fields})
    with pytest.raises(BtkError, match=message):
        load_registry(path)


def test_synthesis_entries_are_registered_but_refused():
    """Synthesis images are listed, never run by btk segment; every track's segmentation entries run."""
    registry = load_registry()
    synthesis = registry.get("brats24-syn-1")
    assert synthesis.output == "image" and synthesis.labels is None and "synthesises" in synthesis.unsupported()
    menrt = registry.get("brats25-menrt-1")
    assert menrt.labels == "brats2024-men-rt" and menrt.unsupported() is None
    assert menrt.modalities == ["t1c"] and menrt.contract.separator == "_"
    segmentor = Segmentor(registry)
    with pytest.raises(BtkError, match="btk cannot run brats24-syn-1"):
        segmentor._entries(["brats24-syn-1"])
    every = {a.name for a in segmentor._entries(None)}
    assert "brats23-faking-it" in every and "btk-unet" in every
    assert "brats24-syn-1" not in every and "brats25-menrt-1" not in every  # another track
    assert {a.name for a in segmentor._entries(None, track="meningioma-rt")} >= {"brats25-menrt-1"}
    with pytest.raises(BtkError, match="no algorithm chosen"):
        segmentor._entries(None, track="missing-mri")  # synthesis only
    assert registry.get("brats25-ecnu").cpu_compatible and not registry.get("brats25-aia-bots").cpu_compatible
    assert all(a.shm_size for a in registry.algorithms)  # 4g unless an entry says otherwise, never Docker's 64 MB


@pytest.mark.parametrize(
    ("track", "cpu", "expected"),
    [
        ("glioma", False, "brats23-faking-it"),  # the newest pre-treatment glioma year is 2023
        ("glioma-post", False, "brats25-aia-bots"),
        ("glioma-post", True, "brats25-ecnu"),  # the best of 2025 that runs without a GPU (rank 2)
        ("ssa", True, "brats25-ssa-1"),
        ("pediatric", False, "brats25-ped-1"),
        ("meningioma-rt", True, "brats25-menrt-2"),
        ("metastases", False, "brats25-met-1"),
        ("goat", False, "brats25-goat-1a"),
    ],
)
def test_the_default_algorithm_is_the_top_ranked_of_the_newest_year(track, cpu, expected):
    assert load_registry().default_for(track, cpu=cpu).name == expected
    assert Segmentor(load_registry(), cpu=cpu).default_algorithm(track) == expected


def test_a_track_without_a_default_is_a_clear_error():
    with pytest.raises(BtkError, match="the missing-mri track has no ranked algorithm that btk can run"):
        load_registry().default_for("missing-mri")
    with pytest.raises(BtkError, match="the pediatric track has no ranked algorithm that btk can run without a GPU"):
        load_registry().default_for("pediatric", cpu=True)


def test_all_means_the_adult_glioma_tracks_unless_a_track_is_named():
    segmentor = Segmentor(load_registry())
    tracks = {a.track_name for a in segmentor._entries(None)}
    assert tracks == {"glioma", "glioma-post"}
    ssa = segmentor._entries(None, track="ssa")
    assert ssa and {a.track for a in ssa} == {"ssa"}
    with pytest.raises(BtkError, match="unknown track 'brain'"):
        segmentor._entries(None, track="brain")


# --- GPU lanes --------------------------------------------------------------------------------------------


def test_lanes():
    small, big = Gpu("0", 8), Gpu("1", 24)
    required = _algorithm({"kind": "brats2025"}, gpu="required", min_gpu_memory_gb=16)
    optional = _algorithm({"kind": "brats2025"}, gpu="optional")
    cpu_only = _algorithm({"kind": "brats2025"}, gpu="none")
    assert assign_lane(required, [small, big], cpu=False).gpus == (big,)
    assert "no NVIDIA GPU" in assign_lane(required, [], cpu=False).skip
    assert "--cpu" in assign_lane(required, [], cpu=True).skip
    assert "16 GB" in assign_lane(required, [small], cpu=False).skip
    assert assign_lane(optional, [small], cpu=False).gpus == (small,)
    assert assign_lane(optional, [], cpu=False) == assign_lane(cpu_only, [big], cpu=False)
    assert select_gpus([small, big], ["1"], cpu=False) == [big]
    assert select_gpus([small, big], None, cpu=True) == []
    with pytest.raises(BtkError, match="no GPU 7"):
        select_gpus([small, big], ["7"], cpu=False)


def test_gpu_pool_runs_one_algorithm_per_gpu():
    gpus = [Gpu("0", 8), Gpu("1", 8)]
    pool, busy, peak, lock = GpuPool(gpus), set(), [0], threading.Lock()

    def work():
        with pool.take(gpus) as gpu:
            with lock:
                assert gpu.index not in busy
                busy.add(gpu.index)
                peak[0] = max(peak[0], len(busy))
            time.sleep(0.05)
            with lock:
                busy.discard(gpu.index)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 2


# --- result checks ----------------------------------------------------------------------------------------


def _result(tmp_path, data) -> Path:
    path = tmp_path / "result.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(data, np.uint8), np.eye(4)), str(path))
    return path


def test_checked_result_converts_and_rejects(tmp_path):
    reference = nib.Nifti1Image(np.zeros(SHAPE, np.float32), AFFINE)
    legacy = _algorithm({"kind": "brats2025"}, labels="brats2021")
    data = np.zeros(SHAPE, np.uint8)
    data[5:9, 5:9, 5:9], data[6:8, 6:8, 6:8] = 2, 4
    converted = checked_result(_result(tmp_path, data), reference, legacy, "brats2023")
    assert set(np.unique(converted)) == {0, 2, 3}
    with pytest.raises(BtkError, match="not on the input's grid"):
        checked_result(_result(tmp_path, data[:-1]), reference, legacy, "brats2023")
    with pytest.raises(BtkError, match="labels 3, which the declared brats2021"):
        checked_result(_result(tmp_path, np.where(data == 4, 3, data)), reference, legacy, "brats2023")
    with pytest.raises(BtkError, match="all background"):
        checked_result(_result(tmp_path, np.zeros(SHAPE)), reference, legacy, "brats2023")
    tolerant = _algorithm({"kind": "brats2025"}, allow_empty=True)
    assert not checked_result(_result(tmp_path, np.zeros(SHAPE)), reference, tolerant, "brats2021").any()


# --- command line without an engine -----------------------------------------------------------------------


def test_cli_list_and_show(capsys):
    assert main(["algorithms", "list"]) == 0
    listed = capsys.readouterr().err
    assert "btk-unet" in listed and "brats23-faking-it" in listed
    assert main(["algorithms", "list", "--track", "metastases"]) == 0
    listed = capsys.readouterr().err
    assert "brats23-met-1" in listed and "brats23-faking-it" not in listed
    assert main(["algorithms", "show", "brats23-faking-it"]) == 0
    shown = capsys.readouterr().err
    assert "mlcube" in shown and "2402.17317" in shown
    assert main(["algorithms", "show", "nope"]) == 2
    assert "unknown algorithm 'nope'" in capsys.readouterr().err


def test_show_says_whether_the_additional_files_are_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BTK_CACHE_DIR", str(tmp_path))
    assert main(["algorithms", "show", "brats23-gli-3"]) == 0
    assert "not cached: btk algorithms pull brats23-gli-3" in " ".join(capsys.readouterr().err.split())
    cached = tmp_path / "additional-files" / "11573315_v1.0"
    cached.mkdir(parents=True)
    (cached / ".btk-record.json").write_text("{}")
    assert main(["algorithms", "show", "brats23-gli-3"]) == 0
    assert "11573315_v1.0" in "".join(capsys.readouterr().err.replace("│", "").split())


def test_cli_user_mistakes_exit_2(tmp_path, capsys):
    exam = make_exam(tmp_path / "exam")
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "--cpu"]) == 2  # the default needs a GPU
    assert "the glioma track has no ranked algorithm that btk can run without a GPU" in capsys.readouterr().err
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "-a", "nope"]) == 2
    assert "unknown algorithm" in capsys.readouterr().err
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "-a", "btk-unet", "--track", "ssa"]) == 2
    assert "--track chooses the algorithms of --all, or the default one" in capsys.readouterr().err
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "--all", "--track", "lungs"]) == 2
    assert "unknown track 'lungs'" in capsys.readouterr().err
    assert main(["algorithms", "list", "--track", "lungs"]) == 2
    assert "unknown track 'lungs'" in capsys.readouterr().err
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "-a", "btk-unet", "--gpu", "x"]) == 2
    assert "cannot read --gpu" in capsys.readouterr().err
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "-a", "btk-unet", "--memory", "lots"]) == 2
    assert "cannot read the memory limit 'lots'" in capsys.readouterr().err
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "-a", "btk-unet", "--cpus", "0"]) == 2
    assert "--cpus" in capsys.readouterr().err  # refused by the command line's own check of the value
    with pytest.raises(BtkError, match="the CPU limit must be positive"):
        Segmentor(cpus=0)
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "-a", "btk-unet", "--weights", "btk-unet"]) == 2
    assert "write --weights NAME=DIR" in capsys.readouterr().err
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "-a", "btk-unet", "--gpu", "0", "--cpu"]) == 2
    assert "either --gpu or --cpu" in capsys.readouterr().err
    assert not (tmp_path / "seg").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["algorithms", "list", "--registry", str(bad)]) == 2
    assert "invalid algorithm registry" in capsys.readouterr().err


def test_engine_not_running_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    exam = make_exam(tmp_path / "exam")
    assert main(["segment", str(exam), "-o", str(tmp_path / "seg"), "-a", "btk-unet"]) == 2
    error = capsys.readouterr().err
    assert "Docker engine is not running" in error and "systemctl start docker" in error
    assert not (tmp_path / "seg").exists()
    assert main(["algorithms", "pull", "btk-unet"]) == 2
    assert main(["algorithms", "build", "btk-unet"]) == 2
    assert "Docker engine is not running" in capsys.readouterr().err


def test_a_failed_container_is_summed_up_by_its_last_error_line():
    logs = "loading\nError: /weights: no weights found\n  -> train them first\n\n"
    assert _last_words(logs) == "Error: /weights: no weights found"
    assert _last_words("step 1\nsegfault at 0x0\n") == "segfault at 0x0"
    assert _last_words("") == "no output"
    assert _last_words("\x1b[2J\x1b]0;title\x07fatal: bad\n") == "?[2J?]0;title?fatal: bad"  # no escapes


# --- what a container leaves: links and special files, logs, leftovers of killed runs ---------------------


def _special(kind: str, path: Path, elsewhere: Path) -> None:
    """Make ``path`` one of the entries a hostile container can leave (``elsewhere``: a file outside)."""
    if kind == "symlink":
        path.symlink_to(elsewhere)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "hardlink":
        (path.parent / "other.nii.gz").write_bytes(b"other")
        os.link(path.parent / "other.nii.gz", path)
    elif kind == "device":
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("symlink", "a symbolic link"),
        ("fifo", "a FIFO"),
        ("socket", "a socket"),
        ("hardlink", "a hard link"),
        pytest.param(
            "device",
            "a device node",
            marks=pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root"),
        ),
    ],
)
def test_a_result_that_is_not_a_regular_file_is_refused_unread(tmp_path, kind, words):
    contract = contract_for(_algorithm({"kind": "brats2025", "case": "BraTS-GLI-00001-000"}))
    staging = contract.stage(Exam.from_folder(make_exam(tmp_path / "exam")), tmp_path)
    secret = tmp_path / "host-secret.nii.gz"
    secret.write_bytes(b"root:x:0:0")
    _special(kind, staging.output / "BraTS-GLI-00001-000.nii.gz", secret)
    into = tmp_path / "collected"
    into.mkdir()
    started = time.monotonic()
    with pytest.raises(BtkError, match=f"the result BraTS-GLI-00001-000.nii.gz is {words}.*not a regular file"):
        contract.find_result(staging, into)
    assert time.monotonic() - started < 5  # a FIFO was not opened for reading (that would block)
    assert list(into.iterdir()) == []


def test_the_output_listing_never_follows_a_folder_link(tmp_path):
    from btk.segment.collect import list_output

    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "patient-x.nii.gz").write_bytes(b"x")
    output = tmp_path / "output"
    (output / "scratch").mkdir(parents=True)
    (output / "scratch" / "notes.txt").write_text("x")
    (output / "results").symlink_to(outside)
    os.mkfifo(output / "scratch" / "\x1b[31mred")  # a name with a terminal escape
    listing = {e.path: e.kind for e in list_output(output)}
    assert listing == {
        "results": "a symbolic link",
        "scratch": "a folder",
        "scratch/notes.txt": "a regular file",
        "scratch/\x1b[31mred": "a FIFO (named pipe)",
    }
    described = [e.describe() for e in list_output(output)]
    assert described == [
        "results (a symbolic link)",
        "scratch",
        r"'scratch/\x1b[31mred' (a FIFO (named pipe))",
        "scratch/notes.txt",
    ]


def test_bounded_log_keeps_head_and_tail_in_little_memory(tmp_path):
    from btk.segment.logs import BoundedLog

    log = BoundedLog(tmp_path / "out.log", head=100, tail=50)
    log.write(b"FIRST" + b"a" * 200)
    for _ in range(1000):
        log.write(b"b" * 97)
        assert len(log._end) <= 2 * 50 + 97
    log.write(b"c" * 45 + b"LAST")
    log.close()
    text = (tmp_path / "out.log").read_bytes()
    assert text.startswith(b"FIRST") and text.endswith(b"LAST")
    assert log.total == 205 + 97_000 + 49 and log.dropped == log.total - 150
    assert f"[btk: {log.dropped} bytes of the container's output dropped here".encode() in text
    assert log.last_text().endswith("LAST")
    small = BoundedLog(tmp_path / "small.log", head=100, tail=50)
    small.write(b"short\n")
    small.close()
    assert (tmp_path / "small.log").read_bytes() == b"short\n" and small.dropped == 0


def test_leftovers_of_dead_runs_are_removed_those_of_live_ones_kept(tmp_path):
    from btk.segment.leftovers import Owner, remove_abandoned_workdirs

    ended = subprocess.Popen(["true"])
    ended.wait()
    me = Owner.current()
    assert not me.dead() and Owner(me.host, me.pid, "1").dead()  # a reused pid is not the old owner
    assert Owner(me.host, ended.pid, me.started).dead() and not Owner("elsewhere", ended.pid, "1").dead()
    dead = tmp_path / f"btk-segment-{ended.pid}-{me.started}-algo-x1"
    live = tmp_path / f"btk-segment-{me.pid}-{me.started}-algo-x2"
    foreign = tmp_path / "btk-segment-algo-x3"  # no owner in its name: never touched
    for folder in (dead, live, foreign):
        (folder / "input").mkdir(parents=True)
        (folder / "input" / "t1.nii.gz").write_bytes(b"x")
    target = tmp_path / "not-a-workdir"
    target.mkdir()
    (tmp_path / f"btk-segment-{ended.pid}-{me.started}-link-x4").symlink_to(target)
    remove_abandoned_workdirs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, foreign.name, target.name, f"btk-segment-{ended.pid}-{me.started}-link-x4"]
    )
    assert (live / "input" / "t1.nii.gz").exists()
