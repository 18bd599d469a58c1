"""Hostile requests to ``btk app``: forged, missing and malformed ``Host`` headers (DNS rebinding), sent as raw
bytes to a really started server, with the right token, so that only the host check can refuse them."""

from __future__ import annotations

import json
import socket

import pytest

from btk.app import App


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-app")
    (root / "out").mkdir()
    (root / "out" / "manifest.csv").write_text("study,kind,status\nsecret-study,nifti,done\n")
    with App(root / "out", roots=[root]) as running:
        yield running


def raw_request(app: App, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers, without the blank line) with the token cookie; status, body."""
    host, port = app.server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(head + f"\r\nCookie: btk_app_token={app.token}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "host",
    [
        b"Host: evil.example",
        b"Host: localhost.evil.example",
        b"Host: 127.0.0.1.nip.io",
        b"Host: localhost.",  # a trailing dot: another name to the browser's origin checks
        b"Host: 127.0.0.1@evil.example",
        b"Host: 127.0.0.1:abc",
        b"Host: 127.0.0.1:1:2",
        b"Host: [::1",
        b"Host: 127.0.0.1 evil.example",
        b"Host: ",
        b"Host: " + b"a" * 5000,
        "Host: lоcalhost".encode(),  # a Cyrillic o
        b"X-Forwarded-Host: 127.0.0.1",  # no Host at all
        b"Host: evil.example\r\nHost: 127.0.0.1",  # two: the first is the one read
    ],
)
def test_a_forged_or_malformed_host_is_refused_with_403_and_nothing_leaks(app, host):
    for path in (b"/", b"/api/studies", b"/files/manifest.csv", b"/api/config", b"/?token=" + app.token.encode()):
        status, body = raw_request(app, b"GET " + path + b" HTTP/1.1\r\n" + host)
        assert status == 403, (host, path)
        assert b"secret-study" not in body and app.token.encode() not in body and b"roots" not in body
        assert "own address" in json.loads(body)["error"]


def test_a_run_or_an_upload_with_a_forged_host_is_refused(app):
    for line in (b"POST /api/uploads HTTP/1.1", b"POST /api/runs HTTP/1.1", b"PUT /api/uploads/x/y HTTP/1.1"):
        status, _ = raw_request(app, line + b"\r\nHost: evil.example\r\nContent-Length: 0")
        assert status == 403
    assert not any(app.state.uploads.root.iterdir())
    assert not app.state.runs.busy


def test_the_same_request_with_the_apps_own_host_is_answered(app):
    """The control: the refusals above come from the Host header, not from the raw request."""
    status, body = raw_request(app, b"GET /files/manifest.csv HTTP/1.1\r\nHost: 127.0.0.1")
    assert status == 200 and b"secret-study" in body
