"""The app's HTTP server: token-guarded pages, JSON API, server-sent events and file downloads.

Every request must be addressed to one of this server's names (the ``Host`` header: ``127.0.0.1``,
``localhost``, ``[::1]`` or the address it listens on; others get 403, against DNS rebinding), and every route
needs the token (``?token=`` once, then the cookie it sets, or ``Authorization: Bearer``):

| route | what |
| --- | --- |
| ``GET /`` | the page |
| ``GET /static/...`` | the page's script, style and the vendored NiiVue |
| ``GET /api/config`` | the allowed folders, the output folder, the run options |
| ``GET /api/browse?root=R&path=P`` | the folders and files at ``P`` inside allowed folder ``R`` |
| ``GET /api/studies``, ``GET /api/studies/<study>`` | the studies of the output folder; one in detail |
| ``GET /api/studies/<study>/volumes/<key>.nii`` | an image for the viewer; a segmentation on one's grid (``?grid=``) |
| ``GET /api/events`` | server-sent events: the run and the studies, whenever they change |
| ``POST /api/runs``, ``POST /api/runs/cancel`` | start a run; cancel it |
| ``POST /api/uploads``, ``PUT /api/uploads/<id>/<path>`` | a new upload; one file of it |
| ``GET /files/<path>`` | a file of the output folder (``?download=1``: as an attachment) |
"""

from __future__ import annotations

import json
import mimetypes
import shutil
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from btk import __version__
from btk.app.runs import RunManager, RunSettings
from btk.app.security import TOKEN_COOKIE, AllowedHosts, confine, cookie_token, is_inside, token_matches
from btk.app.studies import STAGE_ORDER, list_studies
from btk.app.uploads import Uploads
from btk.app.volumes import DISAGREEMENT_LABELS, ViewerVolumes, is_image_key, study_volumes
from btk.errors import BtkError, MissingFileError
from btk.fusion.names import METHODS
from btk.io import is_nifti
from btk.labels import CONVENTIONS, get_convention
from btk.report.colours import label_colours
from btk.report.exam import read_exam_report

STATIC = resources.files("btk.app") / "static"
#: How often the event stream looks at the output folder, in seconds.
EVENT_INTERVAL = 0.5
#: The page's own policy: its scripts, styles and data come from this server only.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self' blob:; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
#: Files of the output folder (reports, CSV) are shown without any script (a sandbox that allows none).
FILE_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox allow-same-origin allow-downloads; "
    "frame-ancestors 'self'"
)


@dataclass
class AppState:
    """What the server serves: the allowed folders, the output folder, the token, the runs and uploads."""

    output: Path
    roots: list[Path]
    token: str
    uploads: Uploads
    runs: RunManager = field(init=False)
    viewer: ViewerVolumes = field(default_factory=ViewerVolumes)

    def __post_init__(self) -> None:
        self.runs = RunManager(self.output)

    def places(self) -> dict[str, Path]:
        """The folders a request may name: each allowed root by its index, and the upload workspace."""
        return {**{str(index): root for index, root in enumerate(self.roots)}, "uploads": self.uploads.root}

    def readable(self, path: Path) -> bool:
        """Whether a file lies inside the output folder, an allowed root or the upload workspace."""
        return any(is_inside(path, folder) for folder in (self.output, *self.places().values()))

    def study_folder(self, name: str) -> Path:
        folder = confine(self.output, name)
        if folder.parent != self.output or name.startswith(".") or not folder.is_dir():
            raise MissingFileError("no such study in the output folder", hint="reload the list of studies")
        return folder


class AppServer(ThreadingHTTPServer):
    """A threading HTTP server holding the app's state; its request threads end with it."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: AppState):
        super().__init__(address, AppHandler)
        self.state = state
        self.hosts = AllowedHosts.listening_on(address[0])
        self.stopping = threading.Event()


class HttpError(Exception):
    """An error answered with an HTTP status and a JSON message."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class AppHandler(BaseHTTPRequestHandler):
    """One request: check the host name and the token, route, answer."""

    server: AppServer
    protocol_version = "HTTP/1.1"
    server_version = "btk-app"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing per request: URLs hold study names and, on the first visit, the token."""

    # -- dispatch ----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        path = unquote(url.path)
        try:
            if not self.server.hosts.allows(self.headers.get("Host")):
                raise HttpError(
                    HTTPStatus.FORBIDDEN,
                    "this server answers only to its own address: open the URL btk app printed",
                )
            if not self._authorised(method, path):
                return
            self._route(method, path)
        except HttpError as error:
            self._json({"error": str(error)}, error.status)
        except MissingFileError as error:
            self._json({"error": error.problem, "hint": error.hint}, HTTPStatus.NOT_FOUND)
        except BtkError as error:
            self._json({"error": error.problem, "hint": error.hint}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _authorised(self, method: str, path: str) -> bool:
        """Check the token (query, cookie or bearer header); set the cookie and strip the token on first use."""
        state = self.server.state
        given = self.query.get("token", [None])[0]
        if method == "GET" and path == "/" and token_matches(state.token, given):
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", "/")
            self.send_header("Set-Cookie", f"{TOKEN_COOKIE}={state.token}; HttpOnly; SameSite=Strict; Path=/")
            self._common_headers()
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        bearer = self.headers.get("Authorization", "")
        presented = cookie_token(self.headers.get("Cookie")) or (bearer[7:] if bearer.startswith("Bearer ") else None)
        if not token_matches(state.token, presented):
            self._json(
                {"error": "this page needs the token: open the URL btk app printed (it ends in ?token=...)"},
                HTTPStatus.UNAUTHORIZED,
            )
            return False
        origin = self.headers.get("Origin")
        if method != "GET" and origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
            self._json({"error": "requests from other sites are refused"}, HTTPStatus.FORBIDDEN)
            return False
        return True

    def _route(self, method: str, path: str) -> None:
        parts = [part for part in path.split("/") if part]
        if method == "GET" and not parts:
            return self._static("index.html", PAGE_POLICY)
        if method == "GET" and parts[0] == "static" and len(parts) > 1:
            return self._static("/".join(parts[1:]), PAGE_POLICY)
        if method == "GET" and parts[0] == "files" and len(parts) > 1:
            return self._output_file("/".join(parts[1:]))
        if parts[0] != "api" or len(parts) < 2:
            raise HttpError(HTTPStatus.NOT_FOUND, "no such page")
        handler = _API.get((method, parts[1]))
        if handler is None:
            raise HttpError(HTTPStatus.NOT_FOUND, "no such request")
        handler(self, parts[2:])

    # -- answers ---------------------------------------------------------------------------------------------
    def _common_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")

    def _json(self, payload: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self._common_headers()
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _bytes(self, body: bytes, content_type: str, policy: str, cache: str = "no-store") -> None:
        self.send_response(HTTPStatus.OK)
        self._common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Security-Policy", policy)
        self.send_header("Cache-Control", cache)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _static(self, name: str, policy: str) -> None:
        if ".." in name.split("/"):
            raise HttpError(HTTPStatus.NOT_FOUND, "no such file")
        resource = STATIC.joinpath(*name.split("/"))
        if not resource.is_file():
            raise HttpError(HTTPStatus.NOT_FOUND, "no such file")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self._bytes(
            resource.read_bytes(), content_type, policy, "private, max-age=3600" if "vendor" in name else "no-cache"
        )

    def _file(self, path: Path, download: bool = False, policy: str = FILE_POLICY) -> None:
        """Send a file (a NIfTI as bytes, never decompressed on the way)."""
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            raise HttpError(HTTPStatus.NOT_FOUND, "no such file") from None
        with handle:
            size = Path(path).stat().st_size
            content_type = "application/octet-stream" if is_nifti(path) else mimetypes.guess_type(path.name)[0]
            self.send_response(HTTPStatus.OK)
            self._common_headers()
            self.send_header("Content-Type", content_type or "application/octet-stream")
            self.send_header("Content-Security-Policy", policy)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(size))
            if download:
                self.send_header("Content-Disposition", f'attachment; filename="{_ascii_name(path.name)}"')
            self.end_headers()
            shutil.copyfileobj(handle, self.wfile, 1024 * 1024)

    def _output_file(self, relative: str) -> None:
        state = self.server.state
        if any(part.startswith(".") for part in relative.split("/")):
            raise HttpError(HTTPStatus.FORBIDDEN, "hidden files of the output folder are not served")
        path = confine(state.output, relative)
        if not path.is_file():
            raise HttpError(HTTPStatus.NOT_FOUND, "no such file")
        self._file(path, download=self.query.get("download", ["0"])[0] == "1")

    # -- API -------------------------------------------------------------------------------------------------
    def api_config(self, rest: list[str]) -> None:
        state = self.server.state
        self._json(
            {
                "version": __version__,
                "output": str(state.output),
                "roots": [{"id": str(i), "path": str(root)} for i, root in enumerate(state.roots)],
                "methods": list(METHODS),
                "labels": ["auto", *CONVENTIONS],
                "tracks": _tracks(),
                "stages": list(STAGE_ORDER),
                "upload_limit": state.uploads.limit,
            }
        )

    def api_browse(self, rest: list[str]) -> None:
        folder = self._place(self.query.get("root", ["0"])[0], self.query.get("path", [""])[0])
        if not folder.is_dir():
            raise MissingFileError("not a folder", hint="choose a folder")
        root = self._place(self.query.get("root", ["0"])[0], "")
        entries = []
        for entry in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
            if entry.name.startswith(".") or not is_inside(entry, root) or entry.resolve() == self.server.state.output:
                continue  # hidden, a link out of the allowed folder, or the app's own output
            entries.append({"name": entry.name, "folder": entry.is_dir(), "nifti": is_nifti(entry)})
        self._json({"path": folder.relative_to(root).as_posix() if folder != root else "", "entries": entries})

    def _place(self, place: str, relative: str) -> Path:
        places = self.server.state.places()
        if place not in places:
            raise HttpError(HTTPStatus.BAD_REQUEST, "no such allowed folder")
        return confine(places[place], relative)

    def api_studies(self, rest: list[str]) -> None:
        state = self.server.state
        if not rest:
            return self._json([study.to_dict() for study in self._studies()])
        folder = state.study_folder(rest[0])
        if len(rest) >= 3 and rest[1] == "volumes":
            return self._volume(folder, "/".join(rest[2:]))
        if len(rest) != 1:
            raise HttpError(HTTPStatus.NOT_FOUND, "no such request")
        self._json(study_detail(folder))

    def _studies(self) -> list:
        runs = self.server.state.runs
        return list_studies(self.server.state.output, runs.run.started if runs.busy and runs.run else None)

    def _volume(self, folder: Path, name: str) -> None:
        """An image (cut: :class:`ViewerVolumes`) or a segmentation on the grid of the image ``?grid=`` names."""
        if not name.endswith(".nii"):
            raise HttpError(HTTPStatus.NOT_FOUND, "no such volume")
        key, grid = name[: -len(".nii")], self.query.get("grid", [""])[0]
        volumes = study_volumes(folder)
        state = self.server.state
        segmentations = sorted(
            path for other, path in volumes.items() if not is_image_key(other) and state.readable(path)
        )
        viewer = state.viewer
        if is_image_key(key):
            body = viewer.image(self._readable(volumes, key), segmentations)
        elif not is_image_key(grid):
            raise HttpError(HTTPStatus.BAD_REQUEST, "a segmentation is drawn on an image's grid: name it (?grid=)")
        else:
            disagrees = key.startswith("disagreement/")
            source = self._readable(volumes, "candidate/" + key.split("/", 1)[1] if disagrees else key)
            consensus = self._readable(volumes, "consensus") if disagrees else None
            body = viewer.labels(self._readable(volumes, grid), source, consensus, segmentations)
        self._bytes(body, "application/octet-stream", FILE_POLICY)

    def _readable(self, volumes: dict[str, Path], key: str) -> Path:
        if key not in volumes:
            raise HttpError(HTTPStatus.NOT_FOUND, "no such volume")
        if not self.server.state.readable(volumes[key]):
            raise HttpError(HTTPStatus.FORBIDDEN, "the file lies outside the allowed folders")
        return volumes[key]

    def api_events(self, rest: list[str]) -> None:
        """Server-sent events: ``{"run": ..., "studies": [...]}`` whenever it changes, until the client leaves."""
        self.send_response(HTTPStatus.OK)
        self._common_headers()
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.close_connection = True
        last, quiet = "", 0.0
        while not self.server.stopping.is_set():
            runs = self.server.state.runs
            payload = json.dumps(
                {"run": runs.run.to_dict() if runs.run else None, "studies": [s.to_dict() for s in self._studies()]}
            )
            if payload != last:
                self.wfile.write(f"data: {payload}\n\n".encode())
                last, quiet = payload, 0.0
            elif quiet > 15:
                self.wfile.write(b": keep-alive\n\n")
                quiet = 0.0
            self.wfile.flush()
            time.sleep(EVENT_INTERVAL)
            quiet += EVENT_INTERVAL

    def api_runs(self, rest: list[str]) -> None:
        state = self.server.state
        if rest == ["cancel"]:
            run = state.runs.cancel()
            return self._json({"run": run.to_dict() if run else None})
        if rest:
            raise HttpError(HTTPStatus.NOT_FOUND, "no such request")
        request = self._read_json()
        source = request.pop("input", None)
        candidates = request.pop("candidates", None)
        if not isinstance(source, dict):
            raise HttpError(HTTPStatus.BAD_REQUEST, "choose an exam or a folder of studies")
        input_path = self._place(str(source.get("root", "")), str(source.get("path", "")))
        candidates_path = (
            self._place(str(candidates.get("root", "")), str(candidates.get("path", "")))
            if isinstance(candidates, dict)
            else None
        )
        if not input_path.exists():
            raise MissingFileError("the chosen input does not exist", hint="choose another folder")
        pipeline = RunSettings.from_json(request).pipeline(state.output, candidates_path)
        label = source.get("path") or "(the whole folder)"
        run = state.runs.start(pipeline, input_path, str(label))
        self._json({"run": run.to_dict()}, HTTPStatus.ACCEPTED)

    def api_uploads(self, rest: list[str]) -> None:
        uploads = self.server.state.uploads
        if self.command == "POST" and not rest:
            self._discard_body()
            return self._json({"upload": uploads.new(), "root": "uploads"}, HTTPStatus.CREATED)
        if self.command != "PUT" or len(rest) < 2:
            raise HttpError(HTTPStatus.NOT_FOUND, "no such request")
        length = self._content_length()
        if length > uploads.limit:
            self.close_connection = True
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the file is larger than the upload limit")
        try:
            uploads.receive(rest[0], "/".join(rest[1:]), self.rfile, length)
        except BtkError:
            self.close_connection = True  # the body may be left unread
            raise
        self._json({"stored": "/".join(rest[1:])}, HTTPStatus.CREATED)

    # -- request bodies ----------------------------------------------------------------------------------------
    def _content_length(self) -> int:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length") from None
        if length < 0:
            raise HttpError(HTTPStatus.BAD_REQUEST, "a negative Content-Length")
        return length

    def _read_json(self, limit: int = 64 * 1024) -> dict[str, Any]:
        length = self._content_length()
        if length > limit:
            self.close_connection = True
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the request is too large")
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "the request is not JSON") from None
        if not isinstance(payload, dict):
            raise HttpError(HTTPStatus.BAD_REQUEST, "the request is not a JSON object")
        return payload

    def _discard_body(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length:
            self.rfile.read(min(length, 64 * 1024))


_API = {
    ("GET", "config"): AppHandler.api_config,
    ("GET", "browse"): AppHandler.api_browse,
    ("GET", "studies"): AppHandler.api_studies,
    ("GET", "events"): AppHandler.api_events,
    ("POST", "runs"): AppHandler.api_runs,
    ("POST", "uploads"): AppHandler.api_uploads,
    ("PUT", "uploads"): AppHandler.api_uploads,
}


def study_detail(folder: Path) -> dict[str, Any]:
    """One study for the viewer: its volumes (keys), labels with their colours, candidates and files."""
    volumes = study_volumes(folder)
    report = read_exam_report(folder / "report")
    convention = get_convention(report.labels) if report else None
    labels = (
        [
            {"value": value, "name": name, "colour": list(colour)}
            for value, (colour, name) in label_colours(convention).items()
        ]
        if convention
        else []
    )
    files = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    return {
        "name": folder.name,
        "volumes": sorted(volumes),
        "labels": labels,
        "disagreement_labels": [{"value": v, "name": n} for v, n in DISAGREEMENT_LABELS.items()],
        "candidates": [key.split("/", 1)[1] for key in sorted(volumes) if key.startswith("candidate/")],
        "volumes_ml": report.volumes_ml if report else {},
        "report": "report/report.html" if (folder / "report" / "report.html").is_file() else None,
        "files": [{"path": name, "bytes": (folder / name).stat().st_size} for name in files],
    }


def _tracks() -> list[str]:
    """The BraTS tracks whose top algorithm a run may choose (none without the segment extra's registry)."""
    try:
        from btk.segment.registry import TRACKS
    except ImportError:  # pydantic (the segment extra) is not installed: algorithms cannot be run either
        return []
    return list(TRACKS)


def _ascii_name(name: str) -> str:
    """A file name safe inside a quoted HTTP header value."""
    return "".join(char if char.isascii() and char.isprintable() and char not in '"\\' else "_" for char in name)
