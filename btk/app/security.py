"""The app's guards: the host name every request must be addressed to, the access token every request must
carry, and paths confined to the allowed folders."""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from btk.errors import InputError

#: The cookie that carries the token after the first visit (``?token=...``), as Jupyter does.
TOKEN_COOKIE = "btk_app_token"


#: The names of this machine's loopback interface: always accepted in the ``Host`` header.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
#: The addresses that mean "every interface".
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})
#: A ``Host`` header: a name or an IPv4 address, or an IPv6 address in brackets; then an optional port.
_HOST_HEADER = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class AllowedHosts:
    """The host names a request may be addressed to: the defence against DNS rebinding.

    A page of another site whose name the attacker makes resolve to this machine reaches the server with its
    own name in the ``Host`` header; only this machine's names are accepted: ``127.0.0.1``, ``localhost``,
    ``::1`` and the address the server listens on. Listening on every interface (``0.0.0.0``) accepts this
    machine's host names and any IP address (an address cannot be rebound). The port is not checked (an SSH
    tunnel forwards from another port).
    """

    names: frozenset[str]
    any_address: bool = False

    @classmethod
    def listening_on(cls, host: str) -> AllowedHosts:
        """The names accepted by a server listening on ``host``."""
        host = host.strip("[]").lower()
        if host in ANY_ADDRESS:
            machine = {socket.gethostname().lower(), socket.getfqdn().lower()}
            return cls(LOOPBACK_NAMES | machine, any_address=True)
        return cls(LOOPBACK_NAMES | {host})

    def allows(self, header: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (a missing or malformed one does not)."""
        match = _HOST_HEADER.fullmatch(header or "")
        if match is None:
            return False
        name = (match["ipv6"] or match["name"]).lower()
        if name in self.names:
            return True
        return self.any_address and _is_address(name)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


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
