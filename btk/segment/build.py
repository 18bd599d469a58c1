"""Building an algorithm's image locally from the ``build`` section of its registry entry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from btk.errors import InputError, MissingFileError
from btk.segment.engine import Engine
from btk.segment.registry import Algorithm

#: The build argument every btk Dockerfile takes for the image it starts ``FROM``.
BASE_IMAGE_ARG = "BASE_IMAGE"


def build_image(
    engine: Engine,
    algorithm: Algorithm,
    *,
    base_image: str | None = None,
    args: Mapping[str, str] | None = None,
    source: str | Path | None = None,
) -> str:
    """Build ``algorithm``'s image and tag it ``image:tag``; returns the tag.

    Args:
        engine: The Docker engine to build on.
        algorithm: A registry entry with a ``build`` section.
        base_image: The image to start from (the ``BASE_IMAGE`` build argument), e.g. ``btk-base:bookworm``.
        args: Build arguments on top of the entry's own.
        source: The folder the entry's ``build`` paths are relative to, instead of the registry's
            (the repository root for btk's own entries, a user registry file's folder for its entries).
    """
    spec = algorithm.build
    if spec is None:
        raise InputError(
            f"{algorithm.name} has no build section in the registry: its image is pulled, not built",
            hint=f"pull it: `btk algorithms pull {algorithm.name}`",
        )
    if algorithm.digest:
        raise InputError(
            f"{algorithm.name} is pinned to a digest, which a local build cannot reproduce",
            hint="remove 'digest' from the entry to build it locally",
        )
    root = Path(source) if source is not None else algorithm.source
    if root is None:
        raise InputError(
            f"building {algorithm.name} needs btk's source tree (its Dockerfile is {spec.dockerfile})",
            hint="run from a clone of btk's repository, or pass --source pointing at one",
        )
    context, dockerfile = (root / spec.context).resolve(), (root / spec.dockerfile).resolve()
    if not context.is_dir():
        raise MissingFileError("the build context folder does not exist", path=context, hint="check --source")
    if not dockerfile.is_file():
        raise MissingFileError("the Dockerfile does not exist", path=dockerfile, hint="check --source")
    build_args = {**spec.args, **(args or {})}
    if base_image:
        build_args[BASE_IMAGE_ARG] = base_image
    engine.build(context, dockerfile, algorithm.reference, build_args, ignore_patterns(context, dockerfile))
    return algorithm.reference


def ignore_patterns(context: Path, dockerfile: Path) -> list[str]:
    """What not to send to the engine: ``<Dockerfile>.dockerignore`` beside the Dockerfile (as BuildKit
    reads it), else the context's ``.dockerignore``; none without either."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            lines = (line.strip() for line in candidate.read_text(encoding="utf-8").splitlines())
            return [line for line in lines if line and not line.startswith("#")]
    return []
