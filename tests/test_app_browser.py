"""btk app in a real browser (headless Chromium, Selenium): the example exam run through the page, then viewed.

The exam is the shipped TCIA example, preprocessed once per session (``preprocessed_tcga``); the run through
the page imports its shipped candidates, fuses them and writes the report, as ``btk run`` does. Screenshots
go to ``test-artefacts/app/`` (``BTK_TEST_ARTEFACTS``).
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections import Counter

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from btk.app import App
from btk.app.volumes import study_volumes
from tests.support.app import (
    ARTEFACTS,
    api,
    canvas_pixels,
    chrome,
    green_mask,
    green_pixels,
    lit_share,
    request,
    wait_for,
    wait_overlay,
)
from tests.support.pipeline import EXAMPLE_CANDIDATES
from tests.support.preprocess import RAW as RAW_EXAM

pytestmark = pytest.mark.slow
#: The page has read its config once its folder list has the allowed roots.
PAGE_STARTED = "return document.querySelectorAll('#root-select option').length"


@pytest.fixture(scope="module")
def browser():
    driver = chrome()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def app(preprocessed_tcga, tmp_path_factory):
    """The app with two allowed roots, the preprocessed example exam's folder and the example candidates."""
    root = tmp_path_factory.mktemp("app")
    candidates = root / "candidates"
    shutil.copytree(EXAMPLE_CANDIDATES, candidates / "TCGA-FG-6692")
    with App(root / "out", roots=[preprocessed_tcga.folder.parent, candidates]) as running:
        yield running


@pytest.fixture(scope="module")
def finished_study(app):
    """The example study, finished: run through the page by the first test, or (run alone) through the API."""
    study = app.state.output / "TCGA-FG-6692"
    if not (study / "report" / "report.html").is_file():
        payload = {"input": {"root": "0", "path": "TCGA-FG-6692"}, "candidates": {"root": "1", "path": "TCGA-FG-6692"}}
        assert api(app, "/api/runs", "POST", payload)[0] == 202
        wait_for(lambda: not app.state.runs.busy, 240, "the run to end")
    assert (study / "report" / "report.html").is_file()
    return study


def click(driver, selector: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, selector).click()


def choose_folder(driver, root: str, folder: str, button: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "root-select")).select_by_value(root)
    opened = """const wanted = arguments[0];
        const button = Array.from(document.querySelectorAll('#browse-list button')).find(b => b.textContent === wanted);
        if (button) button.click();
        return Boolean(button);"""
    wait_for(lambda: driver.execute_script(opened, folder + "/"), 10, f"{folder} in the folder browser")
    wait_for(lambda: driver.find_element(By.ID, "browse-path").text == "/" + folder, 10, "the folder to open")
    click(driver, button)


def test_a_run_through_the_page_then_the_viewer_the_candidates_and_the_report(app, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(app.url)
    assert "btk app" in driver.title
    wait_for(lambda: driver.execute_script(PAGE_STARTED) > 1, 20, "the page to start")
    click(driver, "#tab-run")
    choose_folder(driver, "0", "TCGA-FG-6692", "#choose-input")
    choose_folder(driver, "1", "TCGA-FG-6692", "#choose-candidates")
    click(driver, "#start-run")
    badge = driver.find_element(By.ID, "run-badge")
    wait_for(lambda: badge.get_attribute("data-state") in ("done", "failed", "error"), 240, "the run to end")
    driver.save_screenshot(str(ARTEFACTS / "run-done.png"))
    assert badge.get_attribute("data-state") == "done", driver.find_element(By.ID, "run-message").text
    assert "fuse" in driver.find_element(By.CSS_SELECTOR, "#progress-table tr[data-study='TCGA-FG-6692']").text

    click(driver, "#tab-studies")
    row = driver.find_element(By.CSS_SELECTOR, "#studies-table tr[data-study='TCGA-FG-6692']")
    assert "done" in row.text
    row.find_element(By.CSS_SELECTOR, "button").click()
    wait_overlay(driver, "consensus")
    consensus = canvas_pixels(driver, "viewer-consensus")
    assert lit_share(consensus) > 0.05, "the canvas is blank"
    oedema = green_pixels(consensus)
    assert oedema > 200, "no oedema (green) shown over the image"

    driver.find_element(By.CSS_SELECTOR, "#label-toggles input[data-label='2']").click()
    without_oedema = canvas_pixels(driver, "viewer-consensus-without-oedema")
    assert green_pixels(without_oedema) < oedema / 20, "hiding the oedema label left it on the canvas"
    assert lit_share(without_oedema) > 0.05

    Select(driver.find_element(By.ID, "segmentation")).select_by_value("candidate/isen-20")
    wait_overlay(driver, "candidate/isen-20")
    candidate = canvas_pixels(driver, "viewer-candidate-isen-20")
    assert green_pixels(candidate) < oedema / 20, "the hidden label came back with the candidate"
    assert np.abs(candidate - without_oedema).sum() > 0, "switching to the candidate changed nothing"

    click(driver, "#show-report")
    driver.switch_to.frame(driver.find_element(By.ID, "report-frame"))
    wait_for(lambda: "TCGA-FG-6692" in driver.find_element(By.TAG_NAME, "body").text, 20, "the report")
    images = driver.execute_script("return Array.from(document.images, i => i.naturalWidth)")
    driver.switch_to.default_content()
    assert images and all(width > 0 for width in images), "the report's figures did not load"
    driver.save_screenshot(str(ARTEFACTS / "report.png"))

    click(driver, "#show-images")
    laptop = {"width": 1024, "height": 640, "deviceScaleFactor": 1, "mobile": False}  # a small laptop screen
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", laptop)
    try:
        wait_for(lambda: driver.execute_script("return window.innerWidth") == 1024, 10, "the window to shrink")
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a laptop screen"
        canvas = driver.find_element(By.ID, "gl")
        assert canvas.size["width"] > 400 and canvas.size["height"] > 250
        assert lit_share(canvas_pixels(driver, "viewer-laptop")) > 0.05
        driver.save_screenshot(str(ARTEFACTS / "laptop.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


#: The four images' canvases in the 2x2 view, by modality, with the names the page gives them.
QUAD = {"t1c": "T1c", "t1n": "T1", "t2w": "T2", "t2f": "FLAIR"}


def test_the_four_images_with_one_overlay_one_crosshair_and_one_set_of_label_toggles(app, browser, finished_study):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(app.url)  # the token's cookie
    driver.get("about:blank")
    driver.get(app.url.split("?")[0] + "#study=TCGA-FG-6692")
    wait_overlay(driver, "consensus")
    oedema_in_one = green_pixels(canvas_pixels(driver, "one-image-before-four"))
    Select(driver.find_element(By.ID, "images")).select_by_value("four")
    wait_overlay(driver, "consensus", images="four")
    driver.save_screenshot(str(ARTEFACTS / "four-images.png"))
    shown = {modality: canvas_pixels(driver, f"four-{modality}", f"gl-{modality}") for modality in QUAD}
    for modality, pixels in shown.items():
        assert lit_share(pixels) > 0.05, f"the {modality} canvas is blank"
        assert green_pixels(pixels) > 200, f"no oedema (green) over the {modality} image"
    for first, second in itertools.combinations(QUAD, 2):
        assert np.abs(shown[first] - shown[second]).sum() > 0, f"{first} and {second} show the same picture"
    fetched = Counter(
        name.split("/volumes/", 1)[1]
        for name in driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        if "/volumes/" in name
    )
    images = {f"brats/{modality}.nii" for modality in QUAD}
    wanted = images | {f"consensus.nii?grid=brats%2F{modality}" for modality in QUAD}  # on each image's grid
    assert set(fetched) == wanted and set(fetched.values()) == {1}, f"volumes fetched more than once: {fetched}"

    # A click on the oedema in the T2 canvas: every crosshair goes there; the line gives the label and 4 values.
    # The click goes inside the oedema, away from its edge, where a pixel of rounding could put it outside.
    ys, xs = np.nonzero(binary_erosion(green_mask(shown["t2w"]), iterations=2))
    assert len(xs), "no oedema wide enough on the T2 canvas to click into"
    canvas = driver.find_element(By.ID, "gl-t2w")
    before = driver.execute_script("return window.btkViewer.crosshairs()")
    x, y = int(xs[len(xs) // 2] - canvas.size["width"] / 2), int(ys[len(ys) // 2] - canvas.size["height"] / 2)
    ActionChains(driver).move_to_element_with_offset(canvas, x, y).click().perform()
    location = driver.find_element(By.ID, "location")
    wait_for(lambda: "oedema" in location.text, 30, "the line under the controls to name the oedema")
    crosshairs = np.array(driver.execute_script("return window.btkViewer.crosshairs()"))
    assert crosshairs.shape == (4, 3) and np.allclose(crosshairs, crosshairs[0], atol=0.01), crosshairs
    assert not np.allclose(crosshairs[0], before[0]), "the click did not move the crosshair"
    volumes = study_volumes(finished_study)
    for modality, name in QUAD.items():
        found = re.search(rf"\b{name} (-?[0-9.]+)", location.text)
        assert found, f"no {name} intensity in {location.text!r}"
        near = voxel_values(volumes[f"brats/{modality}"], crosshairs[0])
        assert any(abs(float(found[1]) - value) < 0.051 for value in near), (name, location.text, near)

    driver.find_element(By.CSS_SELECTOR, "#label-toggles input[data-label='2']").click()
    for modality, pixels in shown.items():
        hidden = canvas_pixels(driver, f"four-{modality}-without-oedema", f"gl-{modality}")
        assert green_pixels(hidden) < green_pixels(pixels) / 20, f"the oedema stayed over the {modality} image"
        assert lit_share(hidden) > 0.05
    driver.save_screenshot(str(ARTEFACTS / "four-images-without-oedema.png"))

    Select(driver.find_element(By.ID, "images")).select_by_value("one")
    wait_overlay(driver, "consensus")
    carried = driver.execute_script("return window.btkViewer.crosshairs()")
    assert np.allclose(carried, crosshairs[:1], atol=0.01), "the single view lost the crosshair's place"
    single = canvas_pixels(driver, "one-image-after-four")
    assert lit_share(single) > 0.05
    assert green_pixels(single) < oedema_in_one / 20, "the single view missed the label toggle"


def voxel_values(path, mm) -> set[float]:
    """The values of the voxels next to a point in world mm (NiiVue rounds to one of them)."""
    image = nib.load(str(path))
    voxel = (np.linalg.inv(image.affine) @ [*mm, 1])[:3]
    data = np.asanyarray(image.dataobj)
    corners = itertools.product(*({int(np.floor(v + 0.01)), int(np.floor(v + 0.99))} for v in voxel))
    return {float(data[corner]) for corner in corners}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?grid=",
        "?grid=consensus",
        "?grid=candidate/isen-20",
        "?grid=../../../etc/passwd",
        "?grid=/etc/passwd",
        "?grid=brats/../../t1c",
        "?grid=brats/t1c%00",
        "?grid=brats/nan",
        "?grid=native/t1c/../../../etc/passwd",
    ],
)
def test_a_segmentation_on_a_grid_that_is_no_image_of_the_study_is_refused(app, finished_study, query):
    """The viewer's ``?grid=`` names one of the study's images by key; anything else is one clear refusal."""
    cookie = {"Cookie": f"btk_app_token={app.token}"}
    url = app.url.split("?")[0] + f"api/studies/{finished_study.name}/volumes/consensus.nii{query}"
    status, _, body = request(url, headers=cookie)
    assert status in (400, 404), (query, status)
    assert b"root:" not in body and b"Traceback" not in body
    answered, _, drawn = request(url.split("?")[0] + "?grid=brats/t1c", headers=cookie)
    assert answered == 200 and len(drawn) > 348  # the control: a real image's grid is answered


def test_an_exam_folder_dropped_on_the_page_is_uploaded_as_the_input(app, browser, tmp_path):
    """A real drop of a folder: Chromium's own drag-and-drop input (DevTools' Input.dispatchDragEvent, with the
    folder's path as the dragged file), so the page reads it through the browser's directory entries."""
    from selenium.webdriver.common.by import By

    exam = tmp_path / "TCGA-FG-6692"
    shutil.copytree(RAW_EXAM, exam)
    browser.get(app.url)
    wait_for(lambda: browser.execute_script(PAGE_STARTED) > 1, 20, "the page to start")
    click(browser, "#tab-run")
    zone = browser.find_element(By.ID, "drop-zone")
    x, y = browser.execute_script(
        "const box = arguments[0].getBoundingClientRect(); return [box.x + box.width / 2, box.y + box.height / 2];",
        zone,
    )
    dragged = {"items": [], "files": [str(exam)], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        browser.execute_cdp_cmd("Input.dispatchDragEvent", {"type": kind, "x": x, "y": y, "data": dragged})
    status = browser.find_element(By.ID, "upload-status")
    wait_for(lambda: "ready as the input" in status.text, 60, "the upload")
    chosen = browser.find_element(By.ID, "input-chosen").text
    upload = chosen.split("/")[1]
    assert re.fullmatch(r"uploads/[0-9a-f]+/TCGA-FG-6692", chosen)
    received = app.state.uploads.folder(upload) / "TCGA-FG-6692"
    sent = sorted(path.name for path in exam.iterdir())
    assert sorted(path.name for path in received.iterdir()) == sent and len(sent) == 4
    assert all((received / name).read_bytes() == (exam / name).read_bytes() for name in sent)
    assert sorted(path.name for path in exam.iterdir()) == sent  # the dropped folder is left as it was


def test_a_browser_without_the_token_is_refused(app, browser):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    for path in ("", "static/app.js", "api/studies/TCGA-FG-6692/volumes/brats/t1c.nii"):
        browser.get(app.url.split("?")[0] + path)
        assert "needs the token" in browser.find_element(By.TAG_NAME, "body").text
