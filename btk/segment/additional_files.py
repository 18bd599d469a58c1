"""The additional files some images need (weights in a Zenodo record): fetched once, cached, mounted read-only.

``btk algorithms pull NAME`` fetches them (:func:`fetch`): the record's metadata from Zenodo's API, then its
``.zip`` archives, streamed with a progress bar and checked against Zenodo's MD5 (and the registry's checksums
where it lists the files), unpacked (an archive they hold at their top level too, as the orchestrator does) into
``<cache>/<record>_v<version>/``, which appears complete or not at all. A run never downloads: the Segmentor
mounts the cached folder read-only (:func:`cached_folder`), and without one it stops before anything runs with
what to fetch and where to put it.

Nothing in a downloaded archive can reach outside its folder: members with absolute paths or ``..``, links and
special files are refused, and the archive is refused as a whole.

The cache is ``$BTK_CACHE_DIR/additional-files`` (default ``$XDG_CACHE_HOME/btk`` or ``~/.cache/btk``); the API
is ``$BTK_ZENODO_URL`` (default Zenodo's), for a mirror.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from btk.console import logger, progress
from btk.errors import BtkError, InputError, OutputError
from btk.segment.registry import AdditionalFiles, Algorithm

#: Zenodo's records API (``$BTK_ZENODO_URL`` overrides it).
ZENODO_API = "https://zenodo.org/api/records"
#: The record of a cached folder, written last: its presence means the folder is complete.
RECORD_FILE = ".btk-record.json"
_CHUNK = 1 << 20
_TIMEOUT_S = 60


def cache_root() -> Path:
    """Where additional files are cached: ``$BTK_CACHE_DIR/additional-files`` (default under ``~/.cache/btk``)."""
    base = os.environ.get("BTK_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "btk"
    return Path(base) / "additional-files"


def cached_folder(files: AdditionalFiles) -> Path | None:
    """The newest complete cached folder of the record, or None."""
    root = cache_root()
    found = [p for p in root.glob(f"{files.zenodo_record}_v*") if (p / RECORD_FILE).is_file()] if root.is_dir() else []
    return max(found, key=lambda p: _version_key(p.name.split("_v", 1)[1]), default=None)


def require_cached(algorithm: Algorithm) -> Path:
    """The cached additional files of ``algorithm``; an :class:`InputError` saying how to get them otherwise."""
    files = algorithm.additional_files
    assert files is not None
    folder = cached_folder(files)
    if folder is None:
        raise InputError(
            f"{algorithm.name} needs the additional files of Zenodo record {files.zenodo_record}, which are not "
            f"in the cache ({cache_root()})",
            hint=f"run `btk algorithms pull {algorithm.name}` on a machine with network (the cache folder can be "
            f"copied), or download https://zenodo.org/records/{files.zenodo_record}, unpack it and pass it to "
            f"btk segment with --weights {algorithm.name}=DIR",
        )
    return folder


def fetch(algorithm: Algorithm) -> Path:
    """Fetch and cache the additional files of ``algorithm`` (nothing is fetched when the record's current
    version is cached); returns the cached folder.

    Raises:
        InputError: Zenodo cannot be reached (with what to do instead), the record has no archive, a checksum
            differs, or an archive holds a member that would land outside its folder.
    """
    files = algorithm.additional_files
    if files is None:
        raise InputError(f"{algorithm.name} needs no additional files")
    record = _read_json(f"{zenodo_api()}/{files.zenodo_record}", files)
    version = str((record.get("metadata") or {}).get("version") or "1")
    if not _version_key(version):
        raise InputError(f"Zenodo record {files.zenodo_record} has an unreadable version {version!r}")
    root = cache_root()
    target = root / f"{files.zenodo_record}_v{version}"
    if (target / RECORD_FILE).is_file():
        logger.info(
            "%s: the additional files of record %s (v%s) are cached", algorithm.name, files.zenodo_record, version
        )
        return target
    archives = _archives(record, files)
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    except OSError as error:
        raise OutputError(f"cannot write the cache ({error.strerror or error})", path=root) from None
    try:
        for name, url, md5, size in archives:
            archive = staging.parent / f"{staging.name}-{name}"
            try:
                _download(url, archive, size, md5, name, files)
                _unpack(archive, staging, name)
            finally:
                archive.unlink(missing_ok=True)
        for nested in [p for p in staging.iterdir() if p.is_file() and p.suffix == ".zip"]:  # as the orchestrator
            _unpack(nested, staging, nested.name)
            nested.unlink()
        (staging / RECORD_FILE).write_text(
            json.dumps(
                {"zenodo_record": files.zenodo_record, "version": version, "archives": [a[0] for a in archives]}
            ),
            encoding="utf-8",
        )
        _publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "%s: cached the additional files of record %s (v%s) in %s", algorithm.name, files.zenodo_record, version, target
    )
    return target


def _publish(staging: Path, target: Path) -> None:
    """Rename the complete ``staging`` folder to ``target``; a complete ``target`` (another fetch finished
    first) is kept and ``staging`` dropped, an incomplete one (of a killed fetch) is replaced."""
    if (target / RECORD_FILE).is_file():
        shutil.rmtree(staging, ignore_errors=True)
        return
    try:
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except OSError as error:
        if (target / RECORD_FILE).is_file():  # another fetch published it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
            return
        raise OutputError(f"cannot put the files in the cache ({error.strerror or error})", path=target) from None


def zenodo_api() -> str:
    """Zenodo's records API, or ``$BTK_ZENODO_URL``."""
    return (os.environ.get("BTK_ZENODO_URL") or ZENODO_API).rstrip("/")


def _read_json(url: str, files: AdditionalFiles) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise InputError(
            f"Zenodo has no record {files.zenodo_record} (HTTP {error.code})",
            hint="the registry entry's zenodo_record may be wrong",
        ) from None
    except (urllib.error.URLError, OSError) as error:
        raise _unreachable(files, getattr(error, "reason", error)) from None
    except ValueError:
        raise InputError(f"Zenodo's answer for record {files.zenodo_record} is not JSON") from None
    if not isinstance(payload, dict):
        raise InputError(f"Zenodo's answer for record {files.zenodo_record} is not a record")
    return payload


def _unreachable(files: AdditionalFiles, reason: object) -> InputError:
    return InputError(
        f"cannot reach Zenodo for record {files.zenodo_record} ({reason})",
        hint=f"on a machine with network run the same command and copy {cache_root()}, or download "
        f"https://zenodo.org/records/{files.zenodo_record}, unpack it and pass --weights NAME=DIR",
    )


def _archives(record: dict, files: AdditionalFiles) -> list[tuple[str, str, str | None, int | None]]:
    """The record's ``.zip`` files: (name, URL, Zenodo's MD5, size); the registry's listed files must be among
    them with the same MD5."""
    found = []
    for item in record.get("files") or []:
        name = str(item.get("key", ""))
        url = (item.get("links") or {}).get("self")
        if not name.lower().endswith(".zip") or not isinstance(url, str) or "/" in name or name.startswith("."):
            continue
        checksum = str(item.get("checksum", ""))
        md5 = checksum.removeprefix("md5:") if checksum.startswith("md5:") else None
        size = item.get("size") if isinstance(item.get("size"), int) else None
        found.append((name, url, md5, size))
    if not found:
        raise InputError(f"Zenodo record {files.zenodo_record} has no .zip archive to fetch")
    by_name = {name: md5 for name, _, md5, _ in found}
    for listed in files.files:
        if listed.name not in by_name:
            raise InputError(f"Zenodo record {files.zenodo_record} has no file {listed.name}, which the registry lists")
        if listed.md5 and by_name[listed.name] and listed.md5 != by_name[listed.name]:
            raise InputError(
                f"Zenodo's checksum of {listed.name} differs from the registry's: the record changed",
                hint="update the registry entry, or pass the files you trust with --weights NAME=DIR",
            )
    return found


def _download(url: str, path: Path, size: int | None, md5: str | None, name: str, files: AdditionalFiles) -> None:
    """Stream ``url`` into ``path`` with a progress bar, checking its MD5 (and the registry's SHA-256)."""
    digests = {"md5": hashlib.md5(usedforsecurity=False), "sha256": hashlib.sha256()}
    try:
        response = urllib.request.urlopen(url, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise InputError(f"cannot download {name} of record {files.zenodo_record} (HTTP {error.code})") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _unreachable(files, getattr(error, "reason", error)) from None
    with response, progress() as bar:
        task = bar.add_task(f"Downloading {name}", total=size)
        try:
            out = open(path, "wb")  # noqa: SIM115 (closed below; its errors are told apart from the network's)
        except OSError as error:
            raise OutputError(f"cannot write the download ({error.strerror or error})", path=path) from None
        received = 0
        with out:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as error:
                    raise InputError(
                        f"the download of {name} broke off ({error.__class__.__name__}: {error})",
                        hint="fetch it again (btk algorithms pull)",
                    ) from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as error:
                    raise OutputError(f"cannot write the download ({error.strerror or error})", path=path) from None
                for digest in digests.values():
                    digest.update(chunk)
                received += len(chunk)
                bar.advance(task, len(chunk))
    if size is not None and received != size:
        raise InputError(
            f"the download of {name} broke off after {received} of {size} bytes",
            hint="fetch it again (btk algorithms pull)",
        )
    expected = {"md5": md5}
    for listed in files.files:
        if listed.name == name:
            expected = {"md5": listed.md5 or md5, "sha256": listed.sha256}
    for kind, value in expected.items():
        if value and digests[kind].hexdigest() != value:
            raise InputError(
                f"the download of {name} is damaged: its {kind.upper()} is {digests[kind].hexdigest()}, not {value}",
                hint="fetch it again; if it persists, the record changed",
            )


def _unpack(archive: Path, folder: Path, name: str) -> None:
    """Unpack a zip archive into ``folder``: regular files and folders only, none outside ``folder``."""
    try:
        with zipfile.ZipFile(archive) as opened:
            members = opened.infolist()
            for member in members:
                _check_member(member, name)
            needed = sum(member.file_size for member in members)
            free = shutil.disk_usage(folder).free
            if needed > free:
                raise OutputError(
                    f"{name} unpacks to {needed / 1e9:.1f} GB, and only {free / 1e9:.1f} GB are free",
                    path=folder,
                    hint="free some space, or set BTK_CACHE_DIR to a disk with room",
                )
            for member in members:
                target = folder.joinpath(*PurePosixPath(member.filename).parts)
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with opened.open(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                target.chmod(0o644)
    except zipfile.BadZipFile:
        raise InputError(f"{name} is not a readable zip archive") from None
    except BtkError:  # before OSError: an OutputError is both
        raise
    except NotImplementedError as error:
        raise InputError(f"{name} uses a compression btk cannot unpack ({error})") from None
    except OSError as error:
        raise OutputError(f"cannot unpack {name} ({error.strerror or error})", path=folder) from None


def _check_member(member: zipfile.ZipInfo, name: str) -> None:
    path = PurePosixPath(member.filename.replace("\\", "/"))
    mode = member.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if path.is_absolute() or ".." in path.parts or not path.parts or ":" in path.parts[0]:
        problem = "a path outside its folder"
    elif kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        problem = "a link or special file"
    else:
        return
    raise InputError(
        f"the archive {name} holds {problem} ({member.filename!r}); it was not unpacked",
        hint="the record is not safe to use as it is",
    )


def _version_key(version: str) -> tuple[int, ...]:
    """``"1.2.10"`` -> (1, 2, 10); () for a version that is not dotted numbers."""
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else ()
