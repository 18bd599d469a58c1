"""Additional files (weights in a Zenodo record): ``btk algorithms pull`` fetches them over real HTTP from a
local server that answers like Zenodo's records API (Zenodo itself cannot be reached from the test machine),
checks them, unpacks them safely and caches them; runs mount the cache read-only and never download."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import zipfile
from typing import ClassVar

import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.segment import Segmentor, load_registry
from btk.segment.additional_files import RECORD_FILE, cached_folder, fetch, require_cached
from tests.support.segment import entry, make_exam, write_registry

RECORD = "7654321"


def _zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symbolic link
            archive.writestr(info, target)
    return buffer.getvalue()


class _Zenodo(http.server.BaseHTTPRequestHandler):
    """Answers GET /api/records/<id> and /files/<name> from the class attributes (set per test)."""

    records: ClassVar[dict[str, dict]] = {}
    files: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[str]] = []
    truncated: ClassVar[set[str]] = set()  # files sent with a Content-Length longer than what follows

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path.startswith("/api/records/") and self.path.rsplit("/", 1)[1] in self.records:
            body = json.dumps(self.records[self.path.rsplit("/", 1)[1]]).encode()
        elif self.path.startswith("/files/") and self.path[7:] in self.files:
            body = self.files[self.path[7:]]
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path[7:] in self.truncated else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def zenodo(tmp_path, monkeypatch):
    """A local Zenodo-like server; the cache goes to the test's folder."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Zenodo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("BTK_ZENODO_URL", f"{base}/api/records")
    monkeypatch.setenv("BTK_CACHE_DIR", str(tmp_path / "cache"))
    _Zenodo.records, _Zenodo.files, _Zenodo.requests, _Zenodo.truncated = {}, {}, [], set()

    def publish(archives: dict[str, bytes], version: str = "1.0.0", md5: dict[str, str] | None = None) -> None:
        _Zenodo.files = archives
        _Zenodo.records = {
            RECORD: {
                "metadata": {"version": version},
                "files": [
                    {
                        "key": name,
                        "size": len(data),
                        "checksum": f"md5:{(md5 or {}).get(name) or hashlib.md5(data).hexdigest()}",
                        "links": {"self": f"{base}/files/{name}"},
                    }
                    for name, data in archives.items()
                ],
            }
        }

    yield publish
    server.shutdown()


def _algorithm(tmp_path, image="btk-test/fakeseg:1", **files):
    fields = {"additional_files": {"zenodo_record": RECORD, "arguments": {"weights": "model"}, **files}}
    registry = write_registry(tmp_path / "registry.json", entry("extra", image, {"kind": "mlcube"}, **fields))
    return registry, load_registry(registry).get("extra")


def test_fetch_checks_unpacks_and_caches_once(tmp_path, zenodo):
    inner = _zip({"model/model.txt": b"-1.0\n"})
    zenodo({"weights.zip": _zip({"README.txt": b"weights", "inner.zip": inner})})
    _, algorithm = _algorithm(tmp_path)
    folder = fetch(algorithm)
    assert folder == tmp_path / "cache" / "additional-files" / f"{RECORD}_v1.0.0"
    assert (folder / "model" / "model.txt").read_text() == "-1.0\n" and not (folder / "inner.zip").exists()
    assert json.loads((folder / RECORD_FILE).read_text())["archives"] == ["weights.zip"]
    assert cached_folder(algorithm.additional_files) == folder == require_cached(algorithm)
    downloads = len(_Zenodo.requests)
    assert fetch(algorithm) == folder and len(_Zenodo.requests) == downloads + 1  # the metadata only
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no leftovers


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (_zip({"../escaped.txt": b"x"}), "a path outside its folder"),
        (_zip({"/etc/cron.d/evil": b"x"}), "a path outside its folder"),
        (_zip({"ok.txt": b"x"}, links={"passwd": "/etc/passwd"}), "a link or special file"),
        (b"not a zip at all", "not a readable zip archive"),
    ],
)
def test_hostile_archives_are_refused_and_nothing_is_cached(tmp_path, zenodo, archive, message):
    zenodo({"weights.zip": archive})
    _, algorithm = _algorithm(tmp_path)
    with pytest.raises(BtkError, match=message):
        fetch(algorithm)
    root = tmp_path / "cache" / "additional-files"
    assert list(root.iterdir()) == [] and not (tmp_path / "escaped.txt").exists()


def test_checksums_are_checked_against_zenodo_and_the_registry(tmp_path, zenodo):
    data = _zip({"model/model.txt": b"1\n"})
    zenodo({"weights.zip": data}, md5={"weights.zip": "0" * 32})
    _, algorithm = _algorithm(tmp_path)
    with pytest.raises(BtkError, match=r"the download of weights\.zip is damaged: its MD5"):
        fetch(algorithm)
    zenodo({"weights.zip": data})
    _, pinned = _algorithm(tmp_path, files=[{"name": "weights.zip", "sha256": "f" * 64}])
    with pytest.raises(BtkError, match="its SHA256 is"):
        fetch(pinned)
    _, unknown = _algorithm(tmp_path, files=[{"name": "other.zip"}])
    with pytest.raises(BtkError, match=r"has no file other\.zip, which the registry lists"):
        fetch(unknown)
    _, good = _algorithm(tmp_path, files=[{"name": "weights.zip", "sha256": hashlib.sha256(data).hexdigest()}])
    assert (fetch(good) / "model" / "model.txt").is_file()


def test_a_download_that_breaks_off_is_one_clear_error_and_nothing_is_cached(tmp_path, zenodo):
    zenodo({"weights.zip": _zip({"model/model.txt": b"1\n" * 1000})})
    _Zenodo.truncated = {"weights.zip"}
    _, algorithm = _algorithm(tmp_path)
    with pytest.raises(BtkError, match=r"the download of weights\.zip broke off after"):
        fetch(algorithm)
    assert list((tmp_path / "cache" / "additional-files").iterdir()) == []


def test_without_network_or_record_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BTK_ZENODO_URL", "http://127.0.0.1:9/api/records")  # nothing listens on port 9
    monkeypatch.setenv("BTK_CACHE_DIR", str(tmp_path / "cache"))
    _, algorithm = _algorithm(tmp_path)
    with pytest.raises(BtkError, match=f"cannot reach Zenodo for record {RECORD}") as error:
        fetch(algorithm)
    assert f"https://zenodo.org/records/{RECORD}" in error.value.hint and "--weights" in error.value.hint
    with pytest.raises(BtkError, match="not in the cache") as error:
        require_cached(algorithm)
    assert "btk algorithms pull extra" in error.value.hint


@pytest.mark.slow
def test_pull_then_segment_mounts_the_cached_files_read_only(tmp_path, zenodo, fakeseg_image, capsys):
    zenodo({"weights.zip": _zip({"model/model.txt": b"-1.0\n"})}, version="2.1.0")
    registry, _ = _algorithm(tmp_path, image=fakeseg_image)
    exam = make_exam(tmp_path / "exam")
    assert main(["segment", str(exam), "-o", str(tmp_path / "early"), "-a", "extra", "--registry", str(registry)]) == 2
    assert "btk algorithms pull extra" in capsys.readouterr().err
    assert not (tmp_path / "early").exists()
    assert main(["algorithms", "pull", "extra", "--registry", str(registry)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "is present" in err and f"additional files in {tmp_path / 'cache'}" in err
    report = Segmentor(load_registry(registry)).run(exam, ["extra"], tmp_path / "seg")
    assert report.ok, report.runs[0].message
    log = (tmp_path / "seg" / "logs" / "extra.log").read_text()
    assert "--weights=/mlcube_io1/model" in log and "weights: threshold -1.0" in log and "weights: read-only" in log
    cached = tmp_path / "cache" / "additional-files" / f"{RECORD}_v2.1.0"
    assert sorted(p.name for p in (cached / "model").iterdir()) == ["model.txt"]
    requests = len(_Zenodo.requests)
    Segmentor(load_registry(registry), force=True).run(exam, ["extra"], tmp_path / "seg")
    assert len(_Zenodo.requests) == requests  # a run never downloads
