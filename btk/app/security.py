"""The app's two guards: the access token every request must carry, and paths confined to the allowed folders."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from btk.errors import InputError

#: The cookie that carries the token after the first visit (``?token=...``), as Jupyter does.
TOKEN_COOKIE = "btk_app_token"


def new_token() -> str:
    """A fresh random access token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_matches(expected: str, given: str | None) -> bool:
    """Whether ``given`` is the token, compared in constant time."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def cookie_token(header: str | None) -> str | None:
    """The token in a ``Cookie`` request header, if it carries one."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE:
            return value
    return None


def confine(root: Path, relative: str) -> Path:
    """The path ``relative`` names inside ``root``, refused when it would lead out of ``root``.

    Refused: absolute paths, ``..`` components, and any symbolic link on the way whose target lies outside
    ``root`` (the path is resolved, then checked).

    Args:
        root: An allowed folder (resolved).
        relative: A path relative to it, with ``/`` separators, as the browser sends it.

    Returns:
        The resolved path, inside ``root``.

    Raises:
        InputError: For a path that leads outside ``root``.
    """
    parts = [part for part in relative.replace("\\", "/").split("/") if part not in ("", ".")]
    if relative.startswith(("/", "\\")) or ".." in parts or any("\x00" in part for part in parts):
        raise InputError("the path leads outside the allowed folders", hint="choose a folder inside them")
    candidate = root.joinpath(*parts).resolve()
    if not is_inside(candidate, root):
        raise InputError("the path leads outside the allowed folders (a link?)", hint="choose a folder inside them")
    return candidate


def is_inside(path: Path, root: Path) -> bool:
    """Whether the resolved ``path`` is ``root`` or lies below it (``root`` resolved)."""
    resolved = path.resolve()
    return resolved == root or root in resolved.parents


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) readable by this user only; returns it."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
