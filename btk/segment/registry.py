"""The algorithm registry: which images exist, how to run them and how to read their results.

The registry is a versioned JSON file validated with pydantic. btk ships one: ``btk/data/algorithms.json``
in the package, kept identical to ``algorithms.json`` at the repository root (a test checks it). Users add
their own with ``--registry PATH`` or the ``BTK_ALGORITHMS`` environment variable (several files separated
by ``os.pathsep``). A user entry with the name of a shipped one replaces it.

An entry may carry a ``build`` section (how to build its image from a Dockerfile; paths relative to the
repository root for the shipped registry, to the registry file's folder for a user's file) and a
``weights_mount`` (where the image reads a weights folder the user may bind read-only).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_core import ErrorDetails

from btk.console import logger
from btk.errors import BtkError, InputError, MissingFileError
from btk.labels import get_convention

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


class LegacyContractSpec(BaseModel):
    """BraTS 2017-2020 algorithmic repository: one folder at ``mount`` in, ``<mount>/results/`` out."""

    model_config = _Strict
    kind: Literal["brats-legacy"]
    mount: str = Field(pattern=r"^/", description="Where the image expects the data folder, e.g. /data.")
    naming: Literal["gz-b17", "gz-b17-t1", "gz-b17-f", "b17", "b17-t1", "gz-b18"]


class MlcubeContractSpec(BaseModel):
    """BraTS 2023-2024 MLCube images: /mlcube_io0 data, io1 weights, io2 output, io3 parameters."""

    model_config = _Strict
    kind: Literal["mlcube"]
    case: str = Field(default="BraTS-GLI-00000-000", pattern=_CASE_PATTERN)
    parameters_file: bool = Field(default=False, description="Pass --parameters_file=/mlcube_io3/parameters.yml.")


class Brats2025ContractSpec(BaseModel):
    """BraTS 2025 images: ``/input/<case>/<case>-t1c.nii.gz`` ... in, ``/output/<case>.nii.gz`` out."""

    model_config = _Strict
    kind: Literal["brats2025"]
    case: str = Field(default="BraTS-GLI-00000-000", pattern=_CASE_PATTERN)


class BuildSpec(BaseModel):
    """How to build an entry's image: ``docker build -f DOCKERFILE --build-arg K=V CONTEXT``."""

    model_config = _Strict
    dockerfile: str = Field(min_length=1, description="Dockerfile, relative to the registry's source folder.")
    context: str = Field(default=".", min_length=1, description="Build context, relative to the same folder.")
    args: dict[str, str] = Field(default_factory=dict, description="Build arguments (--build-arg K=V).")


ContractSpec = Annotated[
    Union[LegacyContractSpec, MlcubeContractSpec, Brats2025ContractSpec], Field(discriminator="kind")
]


class Algorithm(BaseModel):
    """One containerised segmentation algorithm."""

    model_config = _Strict
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)
    image: str = Field(min_length=1, description="Image repository, e.g. brainles/brats23_faking_it.")
    tag: str = Field(default="latest", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    authors: str
    citation: str
    year: int = Field(ge=2012, le=2100, description="Challenge year.")
    challenge: str = ""
    contract: ContractSpec
    command: list[str] | None = Field(default=None, description="Command; None: the contract's or the image's.")
    gpu: Literal["required", "optional", "none"] = "optional"
    min_gpu_memory_gb: float | None = Field(default=None, gt=0)
    labels: str = Field(description="Label convention of the image's output.")
    timeout_s: float = Field(default=3600, gt=0)
    shm_size: str | None = Field(default=None, pattern=r"^[0-9]+[bkmgBKMG]?[bB]?$")
    needs_root: bool = Field(default=False, description="The image only works as root inside the container.")
    allow_empty: bool = Field(default=False, description="An all-background result is not an error.")
    weights_mount: str | None = Field(
        default=None, pattern=r"^/", description="Where the image reads an optional weights folder (read-only)."
    )
    build: BuildSpec | None = Field(default=None, description="How to build the image locally.")
    #: The folder the ``build`` paths are relative to (set when the registry file is loaded).
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("labels")
    @classmethod
    def _known_convention(cls, value: str) -> str:
        try:
            return get_convention(value).name
        except BtkError as error:
            raise ValueError(error.problem) from None

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

    def merged(self, other: Registry) -> Registry:
        """This registry with ``other``'s entries added; an entry of the same name is replaced."""
        replaced = {a.name for a in other.algorithms}
        for name in sorted(replaced & set(self.names())):
            logger.info("Registry entry %s replaced by a user entry", name)
        kept = [a for a in self.algorithms if a.name not in replaced]
        return Registry(schema_version=SCHEMA_VERSION, algorithms=[*kept, *other.algorithms])


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
