"""btk app's server, really started and asked over HTTP: the token, confined paths, uploads, run requests."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from btk.app import App
from btk.cli import main
from tests.support.app import api, request, wait_for


@pytest.fixture
def app(tmp_path):
    """A running app: allowed root ``tmp/root`` (with a link out of it), output ``tmp/out``."""
    root = tmp_path / "root"
    (root / "exam").mkdir(parents=True)
    (root / "exam" / "case_t1.nii.gz").write_bytes(b"not really")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host file")
    os.symlink(outside, root / "link-out")
    output = tmp_path / "out"
    output.mkdir()
    (output / "manifest.csv").write_text("study,kind,status\n")
    (output / ".btk-pseudonym-salt").write_text("salt")
    with App(output, roots=[root], upload_limit=1000) as running:
        yield running


def base(app: App) -> str:
    return app.url.split("?")[0].rstrip("/")


@pytest.mark.parametrize(
    "path", ["/", "/static/app.js", "/static/vendor/niivue/niivue.umd.js", "/api/studies", "/files/manifest.csv"]
)
def test_every_request_needs_the_token(app, path):
    for headers in ({}, {"Cookie": "btk_app_token=wrong"}, {"Authorization": "Bearer wrong"}):
        status, answer, _ = request(base(app) + path, headers=headers)
        assert status == 401
        assert "Access-Control-Allow-Origin" not in answer
    status, answer, _ = request(base(app) + path, headers={"Cookie": f"btk_app_token={app.token}"})
    assert status == 200
    assert "Access-Control-Allow-Origin" not in answer


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}"])
def test_a_request_for_another_host_name_is_refused_before_the_token_is_looked_at(app, host):
    """DNS rebinding: a page of evil.example, its name resolved to 127.0.0.1, sends its own name as the Host."""
    port = app.server.server_address[1]
    for forged in ({"Host": host.format(port=port), "Cookie": f"btk_app_token={app.token}"}, {"Host": host}):
        for path in ("/", f"/?token={app.token}", "/api/studies", "/files/manifest.csv", "/api/nothing"):
            status, headers, body = request(base(app) + path, headers=forged)
            assert status == 403, path  # 403 with or without the token: the answer says nothing about it
            assert "own address" in json.loads(body)["error"]
            assert "Set-Cookie" not in headers and app.token.encode() not in body and b"study" not in body


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "[::1]:{port}", "127.0.0.1:8890"]
)
def test_the_machines_own_names_are_answered(app, host):
    status, _, body = request(
        base(app) + "/files/manifest.csv",
        headers={"Host": host.format(port=app.server.server_address[1]), "Cookie": f"btk_app_token={app.token}"},
    )
    assert (status, body) == (200, b"study,kind,status\n")


def test_an_app_listening_on_an_address_answers_to_it_and_every_interface_to_any_address(tmp_path):
    with App(tmp_path / "out", roots=[tmp_path], host="127.0.0.2") as app:
        assert app.server.hosts.allows("127.0.0.2:1") and not app.server.hosts.allows("10.0.0.5")
        status, _, _ = request(app.url, headers={"Host": "127.0.0.3"})
        assert status == 403
        status, headers, _ = request(app.url)  # urllib sends the URL's own host: 127.0.0.2
        assert status == 303 and "Set-Cookie" in headers
    with App(tmp_path / "out", roots=[tmp_path], host="0.0.0.0") as app:
        hosts = app.server.hosts
        assert hosts.allows("10.0.0.5:8890") and hosts.allows("localhost") and not hosts.allows("evil.example")


def test_the_token_in_the_url_becomes_a_strict_cookie_and_leaves_the_url(app):
    status, headers, _ = request(app.url)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"btk_app_token={app.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, _, _ = request(base(app) + "/?token=wrong")
    assert status == 401
    status, _, _ = request(base(app) + "/api/studies", headers={"Authorization": f"Bearer {app.token}"})
    assert status == 200


def test_the_page_forbids_foreign_scripts(app):
    _, headers, page = request(base(app) + "/", headers={"Cookie": f"btk_app_token={app.token}"})
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b"niivue.umd.js" in page


@pytest.mark.parametrize("path", ["..", "../outside", "exam/../../outside", "/etc", "link-out", "link-out/secret.txt"])
def test_the_folder_browser_stays_inside_the_root(app, path):
    status, answer = api(app, f"/api/browse?root=0&path={path}")
    assert status == 400
    assert "outside the allowed folders" in answer["error"]


def test_the_folder_browser_lists_the_root_without_links_out(app):
    status, answer = api(app, "/api/browse?root=0&path=")
    assert status == 200
    assert [entry["name"] for entry in answer["entries"]] == ["exam"]
    status, answer = api(app, "/api/browse?root=0&path=exam")
    assert answer["entries"] == [{"name": "case_t1.nii.gz", "folder": False, "nifti": True}]
    assert api(app, "/api/browse?root=7&path=")[0] == 400


@pytest.mark.parametrize(
    ("path", "status"),
    [("/files/../outside/secret.txt", 403), ("/files/.btk-pseudonym-salt", 403), ("/files/%2e%2e/outside", 403)],
)
def test_files_come_from_the_output_folder_only(app, path, status):
    code, _, body = request(base(app) + path, headers={"Cookie": f"btk_app_token={app.token}"})
    assert code == status
    assert b"host file" not in body and b"salt" not in body


def test_output_files_are_served_as_downloads_in_a_sandbox(app):
    status, headers, body = request(
        base(app) + "/files/manifest.csv?download=1", headers={"Cookie": f"btk_app_token={app.token}"}
    )
    assert status == 200 and body == b"study,kind,status\n"
    assert headers["Content-Disposition"] == 'attachment; filename="manifest.csv"'
    assert "sandbox" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"


def test_uploads_are_private_confined_and_limited(app):
    status, answer = api(app, "/api/uploads", "POST", {})
    assert status == 201
    upload = answer["upload"]
    cookie = {"Cookie": f"btk_app_token={app.token}"}
    url = f"{base(app)}/api/uploads/{upload}"
    assert request(f"{url}/exam/a_t1.nii.gz", "PUT", b"x" * 10, cookie)[0] == 201
    stored = app.state.uploads.root / upload / "exam" / "a_t1.nii.gz"
    assert stored.read_bytes() == b"x" * 10
    assert stat.S_IMODE(app.state.uploads.root.stat().st_mode) == 0o700
    assert request(f"{url}/..%2F..%2Fescaped", "PUT", b"x", cookie)[0] == 400
    assert request(f"{url}/big.nii.gz", "PUT", b"x" * 2000, cookie)[0] == 413  # the limit is 1000 bytes
    assert request(f"{url}/more.nii.gz", "PUT", b"x" * 995, cookie)[0] == 400  # 10 + 995 > 1000
    assert request(f"{base(app)}/api/uploads/not-an-upload/x.nii.gz", "PUT", b"x", cookie)[0] == 400
    assert not list(app.state.uploads.root.parent.glob("escaped"))
    status, answer = api(app, f"/api/browse?root=uploads&path={upload}/exam")
    assert [entry["name"] for entry in answer["entries"]] == ["a_t1.nii.gz"]


def test_stopping_deletes_the_uploads(tmp_path):
    app = App(tmp_path / "out", roots=[tmp_path]).start()
    workspace = app.state.uploads.root
    assert workspace.is_dir()
    app.stop()
    assert not workspace.exists()


def test_requests_from_other_sites_are_refused(app):
    status, _ = api(app, "/api/uploads", "POST", {}, Origin="http://evil.example")
    assert status == 403


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "choose an exam"),
        ({"input": {"root": "0", "path": "../outside"}}, "outside the allowed folders"),
        ({"input": {"root": "0", "path": "missing"}}, "does not exist"),
        ({"input": {"root": "0", "path": "exam"}, "method": "average"}, "method"),
        ({"input": {"root": "0", "path": "exam"}, "colour": "red"}, "unknown run option"),
        ({"input": {"root": "0", "path": "exam"}, "fast": "yes"}, "true or false"),
    ],
)
def test_bad_run_requests_get_one_clear_message(app, payload, message):
    status, answer = api(app, "/api/runs", "POST", payload)
    assert status in (400, 404)
    assert message in answer["error"]
    assert not app.state.runs.busy


@pytest.mark.slow
def test_a_run_without_candidates_or_algorithms_ends_with_the_pipelines_message(app):
    status, _ = api(app, "/api/runs", "POST", {"input": {"root": "0", "path": "exam"}})
    assert status == 202
    run = app.state.runs
    wait_for(lambda: not run.busy, 60, "the run to end")
    assert run.run is not None and run.run.state == "error"
    assert "nothing to segment with" in run.run.message


def test_the_command_refuses_a_missing_root(tmp_path, capsys):
    assert main(["app", "--root", str(tmp_path / "missing"), "--output", str(tmp_path / "out"), "--no-browser"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_the_studies_list_reads_an_empty_output(app):
    status, answer = api(app, "/api/studies")
    assert status == 200 and answer == []
    status, answer = api(app, "/api/config")
    assert answer["roots"][0]["path"].endswith("root") and "simple" in answer["methods"]
    assert json.dumps(answer)  # JSON all through


def lock_free(path) -> bool:
    """Whether no process holds the study's lock (the pipeline's workers hold it while they work)."""
    import fcntl

    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


@pytest.mark.slow
def test_cancelling_a_run_stops_it_and_leaves_no_half_written_stage(tmp_path):
    from btk.pipeline.markers import read_marker, read_status
    from tests.support.pipeline import ROOT

    output = tmp_path / "out"
    with App(output, roots=[ROOT / "examples"]) as app:
        payload = {
            "input": {"root": "0", "path": "exams/TCGA-FG-6692"},
            "candidates": {"root": "0", "path": "candidates/TCGA-FG-6692"},
        }
        assert api(app, "/api/runs", "POST", payload)[0] == 202
        assert api(app, "/api/runs", "POST", payload)[0] == 400  # one run at a time
        study = output / "TCGA-FG-6692"
        wait_for(lambda: (read_status(study) or {}).get("stage") == "preprocess", 60, "the preprocessing to start")
        _, answer = api(app, "/api/studies")
        assert answer[0]["state"] == "running" and answer[0]["stage"] == "preprocess"
        assert api(app, "/api/runs/cancel", "POST", {})[0] == 200
        wait_for(lambda: not app.state.runs.busy, 30, "the run to stop")
        assert app.state.runs.run is not None and app.state.runs.run.state == "cancelled"
        process = app.state.runs._process
        assert process is not None and not process.is_alive()
        wait_for(lambda: lock_free(study / ".btk" / "lock"), 10, "the worker processes to end (the study's lock)")
        assert read_marker(study, "preprocess") is None
        assert not (study / "preprocess").exists()  # only the hidden partial folder the next run removes
        _, answer = api(app, "/api/studies")
        assert answer[0]["state"] == "incomplete"


def test_a_disagreement_map_marks_where_a_candidate_differs_from_the_consensus():
    from btk.app.volumes import disagreement
    from btk.io import read_label_map
    from tests.support.pipeline import CANDIDATES

    candidate, consensus = sorted(CANDIDATES["TCGA-FG-6692"].glob("*.nii.gz"))[:2]
    _, ours = read_label_map(candidate)
    _, theirs = read_label_map(consensus)
    result = disagreement(ours, theirs)
    assert set(np.unique(result)) <= {0, 1, 2, 3}
    assert np.array_equal(result == 1, (ours > 0) & (theirs == 0))
    assert np.array_equal(result == 2, (ours == 0) & (theirs > 0))
    assert np.array_equal(result == 3, (ours > 0) & (theirs > 0) & (ours != theirs))
    assert np.count_nonzero(result) > 0


@pytest.mark.slow
def test_the_command_prints_the_url_and_stops_cleanly_on_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys

    from tests.support.pipeline import ROOT

    process = subprocess.Popen(
        [sys.executable, "-m", "btk", "app", "--no-browser", "-o", str(tmp_path / "out"), "--root", str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "300", "TMPDIR": str(tmp_path)},
    )
    try:
        line = wait_for(lambda: process.stderr.readline(), 30, "the URL")
        url = line.split("open ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        status, headers, _ = request(url)
        assert status == 303 and headers["Set-Cookie"].startswith("btk_app_token=")
        assert list(tmp_path.glob("btk-app-uploads-*"))
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        assert "stopped" in process.stderr.read()
        assert not list(tmp_path.glob("btk-app-uploads-*"))  # the upload workspace is gone
    finally:
        process.kill()


def synthetic_image(path, affine, shape=(20, 22, 18), dtype=np.float32):
    """A NIfTI image at ``path``: random values in a box inside a zero background."""
    import nibabel as nib

    data = np.zeros(shape, dtype)
    data[3:15, 5:20, 2:17] = np.random.default_rng(0).uniform(1, 500, (12, 15, 15))
    nib.save(nib.Nifti1Image(data, affine), path)
    return data


def test_the_viewer_gets_an_image_cut_to_its_brain_each_voxel_where_it_was(tmp_path):
    import nibabel as nib

    from btk.app.volumes import ViewerVolumes

    affine = np.array([[-1.1, 0.1, 0, 30], [0, -0.9, 0.2, 120], [0.05, 0, 1.3, -5], [0, 0, 0, 1]])
    data = synthetic_image(tmp_path / "t1c.nii.gz", affine)
    cut = nib.Nifti1Image.from_bytes(ViewerVolumes().image(tmp_path / "t1c.nii.gz"))
    assert cut.shape == (12, 15, 15) and cut.get_data_dtype() == np.float32
    assert np.array_equal(cut.get_fdata(), data[3:15, 5:20, 2:17])
    assert np.allclose(cut.affine @ [0, 0, 0, 1], affine @ [3, 5, 2, 1])  # the same corner voxel, the same place
    assert np.allclose(cut.affine[:3, :3], affine[:3, :3])


def test_the_viewer_gets_a_segmentation_on_the_grid_of_the_cut_image_it_is_drawn_over(tmp_path):
    import nibabel as nib

    from btk.app.volumes import ViewerVolumes

    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, 3] = [0, 239, 0]
    synthetic_image(tmp_path / "t2w.nii.gz", affine)
    labels = np.zeros((20, 22, 18), np.uint8)
    labels[4:8, 6:9, 3:5], labels[10, 12, 14] = 2, 3
    flipped = affine @ np.array([[-1, 0, 0, 19], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])  # x stored reversed
    nib.save(nib.Nifti1Image(labels[::-1], flipped), tmp_path / "candidate.nii.gz")
    volumes = ViewerVolumes()
    placed = nib.Nifti1Image.from_bytes(volumes.labels(tmp_path / "t2w.nii.gz", tmp_path / "candidate.nii.gz"))
    assert placed.shape == (12, 15, 15) and placed.get_data_dtype() == np.uint8
    assert np.allclose(placed.affine, nib.Nifti1Image.from_bytes(volumes.image(tmp_path / "t2w.nii.gz")).affine)
    assert np.array_equal(np.asanyarray(placed.dataobj), labels[3:15, 5:20, 2:17])

    # A label outside the brain (a candidate's mistake in the background) widens the image's box: it is drawn too.
    labels[18, 2, 1] = 1
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "consensus.nii.gz")
    study = [tmp_path / "candidate.nii.gz", tmp_path / "consensus.nii.gz"]
    placed = nib.Nifti1Image.from_bytes(volumes.labels(tmp_path / "t2w.nii.gz", study[1], segmentations=study))
    assert placed.shape == (16, 18, 16)
    assert np.array_equal(np.asanyarray(placed.dataobj), labels[3:19, 2:20, 1:17])
