"""The algorithm registry: which images exist, how to run them and how to read their results.

The registry is a versioned JSON file validated with pydantic. btk ships one: ``btk/data/algorithms.json``
in the package, kept identical to ``algorithms.json`` at the repository root (a test checks it). Users add
their own with ``--registry PATH`` or the ``BTK_ALGORITHMS`` environment variable (several files separated
by ``os.pathsep``). A user entry with the name of a shipped one replaces it.

An entry may carry a ``build`` section (how to build its image from a Dockerfile; paths relative to the
repository root for the shipped registry, to the registry file's folder for a user's file) and a
``weights_mount`` (where the image reads a weights folder the user may bind read-only).

The shipped entries of the BraTS 2023-2025 challenges describe the algorithms of the BrainLesion orchestrator
(PyPI ``brats``) exactly: image and tag, root, CPU compatibility, shared memory, parameters file, file naming,
additional files, plus the facts to cite (authors, paper, rank, year, challenge);
``tests/test_registry_orchestrator.py`` checks them against the orchestrator's own metadata.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, Literal, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from btk.console import logger
from btk.errors import BtkError, InputError, MissingFileError
from btk.labels import get_convention
from btk.spaces import DEFAULT_SPACE, get_space

#: The registry format this btk reads.
SCHEMA_VERSION: Final = 1
#: Environment variable naming extra registry files.
REGISTRY_ENV = "BTK_ALGORITHMS"

#: BraTS Toolkit's six file-naming schemes of the 2017-2020 algorithmic repository: modality -> file name.
LEGACY_NAMING: dict[str, dict[str, str]] = {
    "gz-b17": {"t1": "t1.nii.gz", "t1c": "t1c.nii.gz", "t2": "t2.nii.gz", "flair": "flair.nii.gz"},
    "gz-b17-t1": {"t1": "t1.nii.gz", "t1c": "t1ce.nii.gz", "t2": "t2.nii.gz", "flair": "flair.nii.gz"},
    "gz-b17-f": {"t1": "t1.nii.gz", "t1c": "t1c.nii.gz", "t2": "t2.nii.gz", "flair": "fla.nii.gz"},
    "b17": {"t1": "t1.nii", "t1c": "t1c.nii", "t2": "t2.nii", "flair": "flair.nii"},
    "b17-t1": {"t1": "t1.nii", "t1c": "t1ce.nii", "t2": "t2.nii", "flair": "flair.nii"},
    "gz-b18": {"t1": "pat_t1.nii.gz", "t1c": "pat_t1ce.nii.gz", "t2": "pat_t2.nii.gz", "flair": "pat_flair.nii.gz"},
}

_Strict = ConfigDict(extra="forbid", frozen=True)
_CASE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
#: The case name of BraTS 2023+ images whose entry names none.
DEFAULT_CASE: Final = "BraTS-GLI-00000-000"

#: The challenge tracks, as users know them (the orchestrator's tracks, inpainting aside).
Track = Literal[
    "glioma", "glioma-post", "ssa", "pediatric", "meningioma", "meningioma-rt", "metastases", "goat", "missing-mri"
]
TRACKS: Final[tuple[str, ...]] = get_args(Track)


def check_track(track: str) -> str:
    """``track`` if it names a challenge track, else an :class:`InputError` listing them."""
    if track not in TRACKS:
        raise InputError(f"unknown track {track!r}", hint=f"choose one of {', '.join(TRACKS)}")
    return track


#: The tracks ``btk segment --all`` runs when no track is named: adult glioma, before and after treatment.
DEFAULT_TRACKS: Final[tuple[str, ...]] = ("glioma", "glioma-post")
#: The atlas space of each track whose data are not in the BraTS SRI24 space (:data:`btk.spaces.DEFAULT_SPACE`):
#: the orchestrator preprocesses adult glioma pre & post treatment (BraTS 2024-2025) to MNI152.
TRACK_SPACES: Final[dict[str, str]] = {"glioma-post": "brats-mni152", "meningioma-rt": "native-t1c"}
#: The tracks whose exams the orchestrator defaces rather than skull-strips in an atlas space (paediatric: SRI24,
#: defaced); the others follow their space's default (:attr:`btk.spaces.AtlasSpace.default_mode`: skull-stripped,
#: the native-t1c space of meningioma radiotherapy defaced).
TRACK_MODES: Final[dict[str, str]] = {"pediatric": "deface"}
#: A modality by its short name (see :data:`btk.modalities.SHORT_NAMES`).
Modality = Literal["t1", "t1c", "t2", "flair"]
_MODALITIES: tuple[Modality, ...] = ("t1", "t1c", "t2", "flair")


class LegacyContractSpec(BaseModel):
    """BraTS 2017-2020 algorithmic repository: one folder at ``mount`` in, ``<mount>/results/`` out."""

    model_config = _Strict
    kind: Literal["brats-legacy"]
    mount: str = Field(pattern=r"^/", description="Where the image expects the data folder, e.g. /data.")
    naming: Literal["gz-b17", "gz-b17-t1", "gz-b17-f", "b17", "b17-t1", "gz-b18"]


class BratsCaseSpec(BaseModel):
    """The BraTS 2023+ layout: ``<case>/<case>-t1c.nii.gz`` ..., the case named by a fixed name or a schema."""

    model_config = _Strict
    case: str | None = Field(
        default=None,
        pattern=_CASE_PATTERN,
        description="The case name (folder and file prefix) the image reads, default BraTS-GLI-00000-000; "
        "with case_schema, leave it out.",
    )
    case_schema: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._{}:-]*$",
        description="The orchestrator's input_name_schema, e.g. BraTS-GLI-{id:05d}-{timepoint_suffix}: the case "
        "is this schema with id 0 and the suffix of the staged time point.",
    )
    timepoint_suffixes: dict[str, str] | None = Field(
        default=None,
        description="Time point -> the suffix {timepoint_suffix} stands for in case_schema (the orchestrator's "
        "suffix_by_timepoint, e.g. pre 000, post 100).",
    )
    timepoint: str | None = Field(
        default=None, description="The time point staged unless the run names one (a key of timepoint_suffixes)."
    )
    separator: Literal["-", "_"] = Field(
        default="-",
        description="Between the case and the modality in file names: <case>-t1c.nii.gz or <case>_t1c.nii.gz "
        "(the orchestrator's subject_modality_separator).",
    )

    @model_validator(mode="after")
    def _consistent_naming(self) -> BratsCaseSpec:
        if self.case_schema is None:
            if self.timepoint_suffixes is not None or self.timepoint is not None:
                raise ValueError("timepoint_suffixes and timepoint need a case_schema with {timepoint_suffix}")
            return self
        if self.case is not None:
            raise ValueError("give either case or case_schema, not both")
        has_suffix = "{timepoint_suffix}" in self.case_schema
        if has_suffix != (self.timepoint_suffixes is not None):
            raise ValueError("timepoint_suffixes go with a case_schema holding {timepoint_suffix}, and only then")
        if self.timepoint_suffixes is not None:
            if self.timepoint is None:
                raise ValueError("name the timepoint staged by default (a key of timepoint_suffixes)")
            for timepoint in self.timepoint_suffixes:
                self.case_name(timepoint)
        else:
            self.case_name()
        return self

    def case_name(self, timepoint: str | None = None) -> str:
        """The case as staged: ``case``, or ``case_schema`` for id 0 at ``timepoint`` (default: the entry's)."""
        if self.case_schema is None:
            if timepoint is not None:
                raise ValueError(f"the image knows no time points (asked for {timepoint!r})")
            return self.case or DEFAULT_CASE
        values: dict[str, object] = {"id": 0}
        if self.timepoint_suffixes is not None:
            chosen = timepoint or self.timepoint
            if chosen not in self.timepoint_suffixes:
                known = ", ".join(self.timepoint_suffixes)
                raise ValueError(f"unknown time point {chosen!r} (the image knows {known})")
            values["timepoint_suffix"] = self.timepoint_suffixes[chosen]
        elif timepoint is not None:
            raise ValueError(f"the image knows no time points (asked for {timepoint!r})")
        try:
            name = self.case_schema.format(**values)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"case_schema {self.case_schema!r} cannot be filled in ({error})") from None
        if not re.fullmatch(_CASE_PATTERN, name):
            raise ValueError(f"case_schema {self.case_schema!r} gives the unusable case name {name!r}")
        return name


class MlcubeContractSpec(BratsCaseSpec):
    """BraTS 2023-2024 MLCube images: /mlcube_io0 data, io1 weights, io2 output, io3 parameters."""

    kind: Literal["mlcube"]
    parameters_file: bool = Field(default=False, description="Pass --parameters_file=/mlcube_io3/NAME.")
    parameters_name: str = Field(
        default="parameters.yml",
        pattern=_FILE_NAME,
        description="NAME: the orchestrator's parameter file (<image name>.yml, or dummy.yml when it has none).",
    )
    parameters: dict[str, JsonValue] | None = Field(
        default=None,
        description="The parameter file's content (written as YAML); None: an empty mapping.",
    )

    @model_validator(mode="after")
    def _parameters_need_the_file(self) -> MlcubeContractSpec:
        if not self.parameters_file and ({"parameters_name", "parameters"} & self.model_fields_set):
            raise ValueError("parameters_name and parameters need parameters_file: true")
        return self


class Brats2025ContractSpec(BratsCaseSpec):
    """BraTS 2025 images: ``/input/<case>/<case>-t1c.nii.gz`` ... in, ``/output/<case>.nii.gz`` out."""

    kind: Literal["brats2025"]


class BuildSpec(BaseModel):
    """How to build an entry's image: ``docker build -f DOCKERFILE --build-arg K=V CONTEXT``."""

    model_config = _Strict
    dockerfile: str = Field(min_length=1, description="Dockerfile, relative to the registry's source folder.")
    context: str = Field(default=".", min_length=1, description="Build context, relative to the same folder.")
    args: dict[str, str] = Field(default_factory=dict, description="Build arguments (--build-arg K=V).")


class RecordFile(BaseModel):
    """One file of an additional-files record, with its checksum where known."""

    model_config = _Strict
    name: str = Field(min_length=1, description="File name in the record.")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file.")
    md5: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$", description="MD5 of the file (Zenodo's).")


class AdditionalFiles(BaseModel):
    """Files an MLCube image needs besides itself (usually weights), bound read-only at /mlcube_io1.

    ``btk algorithms pull`` downloads them; until then, pass the unpacked record with ``--weights NAME=DIR``.
    """

    model_config = _Strict
    zenodo_record: str = Field(
        pattern=r"^[0-9]+$", description="Zenodo record: https://zenodo.org/records/ID (the orchestrator's record_id)."
    )
    arguments: dict[str, str] = Field(
        default_factory=lambda: {"weights": ""},
        description="Options that point the image at the files: --NAME=/mlcube_io1/PATH (an empty PATH: the "
        "folder itself); the orchestrator's param_name and param_path.",
    )
    files: list[RecordFile] = Field(
        default_factory=list,
        description="The record's files and checksums, where known (empty: its .zip archives, unpacked).",
    )

    @field_validator("arguments")
    @classmethod
    def _plain_arguments(cls, arguments: dict[str, str]) -> dict[str, str]:
        for name, path in arguments.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
                raise ValueError(f"{name!r} is not an option name")
            if path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"{path!r} must be a path inside the files' folder")
        return arguments

    @property
    def url(self) -> str:
        """The record's page."""
        return f"https://zenodo.org/records/{self.zenodo_record}"


ContractSpec = Annotated[
    Union[LegacyContractSpec, MlcubeContractSpec, Brats2025ContractSpec], Field(discriminator="kind")
]


class Algorithm(BaseModel):
    """One containerised segmentation algorithm."""

    model_config = _Strict
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)
    track: Track | None = Field(
        default=None,
        description="Challenge track: glioma (adult, pre-treatment), glioma-post (pre & post treatment), ssa "
        "(BraTS-Africa), pediatric, meningioma, meningioma-rt (radiotherapy), metastases, goat (generalizability "
        "across tumours), missing-mri (BraSyn: synthesis of a missing modality).",
    )
    image: str = Field(min_length=1, description="Image repository, e.g. brainles/brats23_faking_it.")
    tag: str = Field(default="latest", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    authors: str
    citation: str
    paper: str | None = Field(default=None, description="The algorithm's own paper (None: not published).")
    year: int = Field(ge=2012, le=2100, description="Challenge year.")
    challenge: str = ""
    rank: int | None = Field(default=None, ge=1, description="Rank in the challenge (1: winner; ties share one).")
    challenge_paper: str | None = Field(default=None, description="The challenge's paper, to cite with the entry.")
    dataset_paper: str | None = Field(default=None, description="The challenge data's paper, to cite with it.")
    contract: ContractSpec
    command: list[str] | None = Field(default=None, description="Command; None: the contract's or the image's.")
    gpu: Literal["required", "optional", "none"] = "optional"
    min_gpu_memory_gb: float | None = Field(default=None, gt=0)
    output: Literal["segmentation", "image"] = Field(
        default="segmentation",
        description="What the image writes: a label map, or an image (missing-mri: the synthesised modality).",
    )
    labels: str | None = Field(
        default=None, description="Label convention of the image's label map (required for a segmentation)."
    )
    modalities: list[Modality] = Field(
        default_factory=lambda: list(_MODALITIES),
        min_length=1,
        description="The modalities staged for the image (meningioma-rt: t1c only); missing-mri images read "
        "three of them and synthesise the fourth.",
    )
    atlas: str | None = Field(
        default=None,
        description="The space the image expects its inputs in (brats-sri24, brats-mni152, native-t1c); None: "
        "its track's (brats-mni152 for glioma-post, native-t1c for meningioma-rt, brats-sri24 otherwise).",
    )
    timeout_s: float = Field(default=3600, gt=0)
    shm_size: str | None = Field(
        default="4g",
        pattern=r"^[0-9]+[bkmgBKMG]?[bB]?$",
        description="Shared memory (/dev/shm) of the container; the orchestrator's default is 4 GB; "
        "None: Docker's 64 MB.",
    )
    needs_root: bool = Field(default=False, description="The image only works as root inside the container.")
    allow_empty: bool = Field(default=False, description="An all-background result is not an error.")
    writable_inputs: bool = Field(
        default=False,
        description="The image writes into its input folder: its staged inputs (btk's private copy, never the "
        "user's files) are mounted writable.",
    )
    weights_mount: str | None = Field(
        default=None, pattern=r"^/", description="Where the image reads an optional weights folder (read-only)."
    )
    build: BuildSpec | None = Field(default=None, description="How to build the image locally.")
    additional_files: AdditionalFiles | None = Field(
        default=None, description="Files the image needs besides itself (MLCube images only)."
    )
    #: The folder the ``build`` paths are relative to (set when the registry file is loaded).
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("labels")
    @classmethod
    def _known_convention(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            return get_convention(value).name
        except BtkError as error:
            raise ValueError(error.problem) from None

    @field_validator("atlas")
    @classmethod
    def _known_space(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            return get_space(value).name
        except BtkError as error:
            raise ValueError(f"{error.problem} ({error.hint})") from None

    @field_validator("modalities")
    @classmethod
    def _each_modality_once(cls, value: list[Modality]) -> list[Modality]:
        if len(set(value)) != len(value):
            raise ValueError("a modality is listed twice")
        return [m for m in _MODALITIES if m in value]

    @model_validator(mode="after")
    def _output_and_inputs(self) -> Algorithm:
        if self.output == "segmentation" and self.labels is None:
            raise ValueError("a segmentation algorithm needs 'labels' (its label convention)")
        if self.output == "image" and self.labels is not None:
            raise ValueError("an algorithm whose output is an image has no 'labels'")
        if self.output == "image" and len(self.modalities) != 4:
            raise ValueError("a synthesis algorithm lists the four modalities (it reads three of them)")
        if self.additional_files is not None and self.contract.kind != "mlcube":
            raise ValueError("additional_files are passed to MLCube images only")
        return self

    @property
    def track_name(self) -> str:
        """The entry's track; an entry that names none (a user's, say) counts as adult glioma."""
        return self.track or DEFAULT_TRACKS[0]

    @property
    def atlas_space(self) -> str:
        """The atlas space the image expects: its ``atlas``, else its track's (:data:`TRACK_SPACES`)."""
        return self.atlas or TRACK_SPACES.get(self.track_name, DEFAULT_SPACE)

    @property
    def preprocess_mode(self) -> str:
        """What the preprocessing does with the skull for this image: its track's (:data:`TRACK_MODES`), else its
        space's default (``skullstrip``; ``deface`` in native-t1c)."""
        return TRACK_MODES.get(self.track_name) or get_space(self.atlas_space).default_mode

    @property
    def cpu_compatible(self) -> bool:
        """The image runs without a GPU (``gpu`` is not ``"required"``; the orchestrator's cpu_compatible)."""
        return self.gpu != "required"

    def unsupported(self) -> str | None:
        """Why ``btk segment`` cannot run this entry yet; None if it can."""
        if self.output != "segmentation":
            return "it synthesises an image; btk segment runs segmentation algorithms only"
        return None

    @field_validator("image")
    @classmethod
    def _no_tag_in_image(cls, value: str) -> str:
        last = value.rsplit("/", 1)[-1]
        if ":" in last or "@" in value:
            raise ValueError("give the tag and digest in 'tag' and 'digest', not in 'image'")
        return value

    @property
    def reference(self) -> str:
        """What to pull and run: ``image@digest`` when pinned, else ``image:tag``."""
        return f"{self.image}@{self.digest}" if self.digest else f"{self.image}:{self.tag}"

    @property
    def source(self) -> Path | None:
        """The folder ``build`` paths are relative to: the repository root or a user registry's folder."""
        return self._source


class Registry(BaseModel):
    """A registry file: a schema version and a list of algorithms."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1]
    algorithms: list[Algorithm]

    @field_validator("algorithms")
    @classmethod
    def _unique_names(cls, algorithms: list[Algorithm]) -> list[Algorithm]:
        seen: set[str] = set()
        for algorithm in algorithms:
            if algorithm.name in seen:
                raise ValueError(f"algorithm {algorithm.name!r} is listed twice")
            seen.add(algorithm.name)
        return algorithms

    def names(self) -> list[str]:
        """The algorithms' names in registry order."""
        return [a.name for a in self.algorithms]

    def get(self, name: str) -> Algorithm:
        """The entry called ``name``; a :class:`BtkError` listing the known names otherwise."""
        for algorithm in self.algorithms:
            if algorithm.name == name:
                return algorithm
        similar = [known for known in self.names() if name.lower() in known.lower()]
        similar += difflib.get_close_matches(name, [known for known in self.names() if known not in similar])
        suggestion = f"did you mean {' or '.join(map(repr, similar[:3]))}? " if similar else ""
        raise InputError(
            f"unknown algorithm {name!r}",
            hint=f"{suggestion}known: {', '.join(self.names())}; see `btk algorithms list`",
        )

    def default_for(self, track: str = DEFAULT_TRACKS[0], cpu: bool = False) -> Algorithm:
        """The algorithm to run when none is named: the top-ranked entry of the newest challenge year of
        ``track`` that btk can run (one that runs without a GPU, with ``cpu``); the first listed on a tie.

        Raises:
            InputError: For an unknown track, or a track without such an entry.
        """
        check_track(track)
        ranked = [
            a
            for a in self.algorithms
            if a.track_name == track
            and a.rank is not None
            and a.unsupported() is None
            and (a.cpu_compatible or not cpu)
        ]
        if not ranked:
            raise InputError(
                f"the {track} track has no ranked algorithm that btk can run{' without a GPU' if cpu else ''}",
                hint="name one with -a (see `btk algorithms list --track " + track + "`)",
            )
        return min(ranked, key=lambda a: (-a.year, a.rank))

    def merged(self, other: Registry) -> Registry:
        """This registry with ``other``'s entries added; an entry of the same name is replaced."""
        replaced = {a.name for a in other.algorithms}
        for name in sorted(replaced & set(self.names())):
            logger.info("Registry entry %s replaced by a user entry", name)
        kept = [a for a in self.algorithms if a.name not in replaced]
        return Registry(schema_version=SCHEMA_VERSION, algorithms=[*kept, *other.algorithms])


def common_space(algorithms: Iterable[Algorithm]) -> str | None:
    """The one atlas space ``algorithms`` expect (None for none given).

    Raises:
        InputError: they expect different spaces (one preprocessing cannot serve them all).
    """
    return _common(algorithms, lambda a: a.atlas_space, "atlas spaces", "space", "atlas")


def common_mode(algorithms: Iterable[Algorithm]) -> str | None:
    """The one preprocessing mode (skullstrip or deface) ``algorithms`` expect (None for none given).

    Raises:
        InputError: they expect different ones (one preprocessing cannot serve them all).
    """
    return _common(algorithms, lambda a: a.preprocess_mode, "preprocessing modes", "mode", "track")


def _common(
    algorithms: Iterable[Algorithm], key: Callable[[Algorithm], str], what: str, each: str, column: str
) -> str | None:
    """The one value of ``key`` among ``algorithms`` (None for none given), else an InputError listing them."""
    by_value: dict[str, list[str]] = {}
    for algorithm in algorithms:
        by_value.setdefault(key(algorithm), []).append(algorithm.name)
    if len(by_value) > 1:
        listing = "; ".join(f"{value}: {', '.join(names)}" for value, names in sorted(by_value.items()))
        raise InputError(
            f"the chosen algorithms expect inputs in different {what} ({listing})",
            hint=f"run the algorithms of each {each} separately (see the {column} column of `btk algorithms list`)",
        )
    return next(iter(by_value), None)


def builtin_registry_text() -> str:
    """The text of the registry shipped with btk."""
    return (resources.files("btk") / "data" / "algorithms.json").read_text(encoding="utf-8")


def parse_registry(text: str, source: str | Path, root: Path | None = None) -> Registry:
    """Validate registry JSON; every mistake becomes one :class:`BtkError` naming the entry and field.

    ``root`` is the folder the entries' ``build`` paths are relative to.
    """
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg}, line {error.lineno})", path=source) from None
    if isinstance(payload, dict) and payload.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise InputError(
            f"registry schema version {payload.get('schema_version')!r} is not supported "
            f"(this btk reads version {SCHEMA_VERSION})",
            path=source,
            hint="update btk, or write the file in the documented format",
        )
    try:
        registry = Registry.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(_describe(item, payload) for item in error.errors()[:5])
        raise InputError(
            f"invalid algorithm registry: {problems}",
            path=source,
            hint="see `btk algorithms show NAME` for a valid entry",
        ) from None
    for algorithm in registry.algorithms:
        algorithm._source = root
    return registry


def _describe(item: ErrorDetails, payload: object) -> str:
    location = list(item["loc"])
    where = ".".join(str(part) for part in location)
    if len(location) >= 2 and location[0] == "algorithms" and isinstance(location[1], int):
        try:
            name = payload["algorithms"][location[1]]["name"]  # type: ignore[index]
            where = f"{name}." + ".".join(str(p) for p in location[2:])
        except (KeyError, IndexError, TypeError):
            pass
    return f"{where.rstrip('.')}: {item['msg']}"


def load_registry(extra: Sequence[str | Path] | str | Path | None = None) -> Registry:
    """The shipped registry extended with the files in ``BTK_ALGORITHMS`` and then with ``extra``."""
    registry = parse_registry(builtin_registry_text(), "btk/data/algorithms.json", _source_checkout())
    for path in _user_files(extra):
        if not path.is_file():
            raise MissingFileError("registry file not found", path=path, hint="check --registry or $" + REGISTRY_ENV)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read the registry file ({error})", path=path) from None
        registry = registry.merged(parse_registry(text, path, path.resolve().parent))
    return registry


def _source_checkout() -> Path | None:
    """The repository root when btk runs from a source checkout (it holds containers/), else None."""
    root = Path(str(resources.files("btk"))).resolve().parent
    return root if (root / "containers").is_dir() and (root / "pyproject.toml").is_file() else None


def _user_files(extra: Sequence[str | Path] | str | Path | None) -> Iterable[Path]:
    from_env = [Path(p) for p in os.environ.get(REGISTRY_ENV, "").split(os.pathsep) if p.strip()]
    if extra is None:
        given: list[Path] = []
    elif isinstance(extra, (str, Path)):
        given = [Path(extra)]
    else:
        given = [Path(p) for p in extra]
    return [*from_env, *given]
