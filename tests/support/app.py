"""Helpers for the app's tests: real HTTP requests to a running app, and headless Chromium driven by Selenium."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.pipeline import ROOT, chromium

#: Where browser tests leave their screenshots (CI keeps this folder as an artefact).
ARTEFACTS = Path(os.environ.get("BTK_TEST_ARTEFACTS", ROOT / "test-artefacts")) / "app"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One real HTTP request (no redirects followed): status, headers, body."""
    opener = urllib.request.build_opener(NoRedirect)
    call = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(call, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api(app: Any, path: str, method: str = "GET", payload: Any = None, **headers: str) -> tuple[int, Any]:
    """A request to the app with its token cookie; the JSON answer."""
    body = json.dumps(payload).encode() if payload is not None else None
    status, _, data = request(
        app.url.split("?")[0].rstrip("/") + path,
        method,
        body,
        {"Cookie": f"btk_app_token={app.token}", "Content-Type": "application/json", **headers},
    )
    return status, json.loads(data) if data else None


def chrome(width: int = 1400, height: int = 900):
    """Headless Chromium (Debian's, with its chromedriver) with software WebGL (SwiftShader) for NiiVue."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager must not phone home
    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--disable-background-networking",
        "--disable-component-update",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    driver_binary = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(options=options, service=Service(driver_binary))
    driver.set_script_timeout(180)
    return driver


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_overlay(driver: Any, segmentation: str, images: str = "one") -> float:
    """Wait until the viewer has drawn ``segmentation`` (its first frame) in the ``one`` or ``four`` image view;
    returns the page's time of it (ms)."""
    return driver.execute_async_script(
        """const [key, images, done] = arguments;
        const check = () => { const v = window.btkViewer;
          if (v && v.overlayShown && v.segmentation === key && v.images === images) done(v.overlayShown);
          else setTimeout(check, 50); };
        check();""",
        segmentation,
        images,
    )


def canvas_pixels(driver: Any, name: str, canvas: str = "gl") -> np.ndarray:
    """A viewer canvas (element id ``canvas``) as the browser shows it (RGB array); saved as ``name``.png."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    png = driver.find_element(By.ID, canvas).screenshot_as_png
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / f"{name}.png").write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def green_mask(pixels: np.ndarray, margin: int = 50) -> np.ndarray:
    """Where green clearly dominates: the oedema label's colour (the crosshair is red, the images grey)."""
    return pixels[..., 1] - np.maximum(pixels[..., 0], pixels[..., 2]) > margin


def green_pixels(pixels: np.ndarray, margin: int = 50) -> int:
    """How many pixels show the oedema label's colour (:func:`green_mask`)."""
    return int(np.count_nonzero(green_mask(pixels, margin)))


def lit_share(pixels: np.ndarray) -> float:
    """Share of pixels that are not black (the viewer's background): a blank canvas gives 0."""
    return float(np.mean(pixels.max(axis=-1) > 20))
