"""``btk app``: a local web application that runs the pipeline and shows its results in a 3-D viewer.

>>> from btk.app import App
>>> with App("out/", roots=["studies/"]) as app:   # serves on 127.0.0.1, a free port
...     print(app.url)                              # http://127.0.0.1:PORT/?token=...

The server (:mod:`btk.app.server`) answers only requests that carry its random token, serves files only from
the output folder, the allowed roots and its private upload workspace, and runs the same
:class:`btk.pipeline.Pipeline` as ``btk run`` (:mod:`btk.app.runs`).
"""

from __future__ import annotations

import ipaddress
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from btk.app.security import new_token
from btk.app.server import AppServer, AppState
from btk.app.uploads import DEFAULT_LIMIT, Uploads
from btk.console import logger
from btk.errors import InputError, MissingFileError, OutputError, unwritable_folder

__all__ = ["App"]


class App:
    """The app's server, its state and its lifetime.

    Args:
        output: The output folder: the studies listed, and where new runs write.
        roots: The folders whose exams may be chosen (the server-side folder browser shows only these).
        host: The address to listen on; ``127.0.0.1`` (this machine only) unless a network is wanted.
        port: The port; 0 for a free one.
        upload_limit: The most bytes one upload may hold.
        token: The access token (default: a new random one).

    Raises:
        BtkError: For a root that is not a folder, an output folder that cannot be one, or an address that
            cannot be listened on.
    """

    def __init__(
        self,
        output: str | Path,
        roots: Sequence[str | Path] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        upload_limit: int = DEFAULT_LIMIT,
        token: str | None = None,
    ):
        resolved_roots = [Path(root).resolve() for root in roots] or [Path.cwd().resolve()]
        for root in resolved_roots:
            if not root.is_dir():
                raise MissingFileError("the allowed folder (--root) is not a folder", path=root)
        output_folder = Path(output).resolve()
        if output_folder.exists() and not output_folder.is_dir():
            raise OutputError("the output path is a file, not a folder", path=output_folder, hint="give a folder")
        try:
            output_folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise unwritable_folder(output_folder, error, creating=True) from None
        if upload_limit < 1:
            raise InputError("the upload limit must be above zero")
        self.token = token or new_token()
        self.state = AppState(output_folder, resolved_roots, self.token, Uploads(upload_limit))
        try:
            self.server = AppServer((host, port), self.state)
        except OSError as error:
            self.state.uploads.remove_all()
            raise InputError(
                f"cannot listen on {host}:{port} ({error.strerror})", hint="choose another --port"
            ) from None
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address to open, with the token."""
        host, port = (str(part) for part in self.server.server_address[:2])
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{port}/?token={self.token}"

    @property
    def exposed(self) -> bool:
        """Whether the server listens beyond this machine."""
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"

    def serve_forever(self, open_browser: bool = True) -> None:
        """Serve until Ctrl-C (or :meth:`stop` from another thread), then stop cleanly."""
        if open_browser:
            threading.Timer(0.3, webbrowser.open, args=(self.url,)).start()
        try:
            self.server.serve_forever(poll_interval=0.1)
        except KeyboardInterrupt:
            logger.info("stopping (Ctrl-C): cancelling the run, if any")
        finally:
            self.stop()

    def start(self) -> App:
        """Serve in a background thread (for scripts and tests); returns the app."""
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cancel the run (its finished stages stay marked), delete the uploads."""
        self.server.stopping.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self.server.server_close()
        self.state.runs.stop()
        self.state.uploads.remove_all()

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
