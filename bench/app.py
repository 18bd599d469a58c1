"""btk app's speed figures: opening a finished study in the viewer (one image, the four images), and what the
app adds to a run.

    python -m bench.app [--output FINISHED_OUTPUT] [--repeat 3]

1. **Viewer**: headless Chromium (Debian's, software WebGL through SwiftShader where there is no GPU) opens
   ``/#study=NAME`` of a finished output; the figure is the time from the navigation's start to the first
   frame with the overlay (``window.btkViewer.overlayShown``, on the page's clock), median of ``--repeat``.
   The same for ``/#study=NAME&images=four`` (four canvases, the four modalities with the consensus): its
   difference from the first is what the four-image view costs. Then, in that view, a label toggle (hiding
   the oedema on all four canvases, until their WebGL has drawn it) and the switch back to one image (its
   canvas loads from the bytes the four-image view fetched), in wall seconds.
2. **Run overhead**: the same ``btk run`` of the shipped example (its imported candidates) once from the
   command line (a fresh process, as a user types it) and once through the app's API (POST /api/runs until
   the run is done); both resume the finished output, so every stage is skipped and the difference is what
   the app adds (its process start, imports and progress polling), not the noise of a 3-minute preprocessing.

Without ``--output`` the example is run once first (about 3 minutes on a 2-core CPU), into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAM = REPO / "examples" / "exams" / "TCGA-FG-6692"
CANDIDATES = REPO / "examples" / "candidates" / "TCGA-FG-6692"


#: Waits until the four canvases have drawn (a pixel read waits for a WebGL's queued work), then for a frame.
DRAWN = """for (const canvas of document.querySelectorAll('#quad-box canvas')) {
  const gl = canvas.getContext('webgl2');
  gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
}
requestAnimationFrame(() => arguments[0]());"""


def cli_run(output: Path) -> float:
    """Wall time of ``btk run`` of the example into ``output`` (a fresh process)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "btk", "run", str(EXAM), "--candidates", str(CANDIDATES), "-o", str(output), "--fast"],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return time.perf_counter() - started


def app_run(app, output: Path) -> float:
    """Wall time of the same run started through the app's API, until the app says it is done."""
    from tests.support.app import api, wait_for

    payload = {
        "input": {"root": "0", "path": "exams/TCGA-FG-6692"},
        "candidates": {"root": "0", "path": "candidates/TCGA-FG-6692"},
        "fast": True,
    }
    started = time.perf_counter()
    status, answer = api(app, "/api/runs", "POST", payload)
    if status != 202:
        raise SystemExit(f"the app refused the run: {answer}")
    wait_for(lambda: not app.state.runs.busy, 1200, "the run", interval=0.02)
    seconds = time.perf_counter() - started
    if app.state.runs.run.state != "done":
        raise SystemExit(f"the app's run ended {app.state.runs.run.state}: {app.state.runs.run.message}")
    return seconds


def viewer_open(app, study: str, repeat: int) -> dict[str, list[float]]:
    """Seconds from navigation to the first overlay frame (one image, four images), a label toggle and the
    switch back to one image in the four-image view, ``repeat`` times in one browser."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.support.app import chrome, wait_overlay

    driver = chrome()
    try:
        driver.get(app.url)
        times: dict[str, list[float]] = {"one": [], "four": [], "toggle": [], "back to one": []}
        for images in ("one", "four") * repeat:
            driver.get("about:blank")
            driver.get(app.url.split("?")[0] + f"#study={study}&images={images}")
            times[images].append(wait_overlay(driver, "consensus", images) / 1000)
            if images == "four":
                started = time.perf_counter()
                driver.find_element(By.CSS_SELECTOR, "#label-toggles input[data-label='2']").click()
                driver.execute_async_script(DRAWN)
                times["toggle"].append(time.perf_counter() - started)
                started = time.perf_counter()
                Select(driver.find_element(By.ID, "images")).select_by_value("one")
                wait_overlay(driver, "consensus", "one")
                times["back to one"].append(time.perf_counter() - started)
        renderer = driver.execute_script(
            "const g = document.createElement('canvas').getContext('webgl2');"
            "const d = g && g.getExtension('WEBGL_debug_renderer_info');"
            "return d ? g.getParameter(d.UNMASKED_RENDERER_WEBGL) : 'unknown';"
        )
        print(f"  WebGL renderer: {renderer}")
        return times
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, help="a finished output of the example (default: made now)")
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    from btk.app import App

    with tempfile.TemporaryDirectory() as temporary:
        output = arguments.output or Path(temporary) / "out"
        if arguments.output is None:
            print(f"running the example once ({EXAM.name}; minutes) ...", flush=True)
            print(f"  btk run, fresh: {cli_run(output):.1f} s")
        with App(output, roots=[REPO / "examples"]) as app:
            print("1. viewer: navigation -> first overlay frame (finished study)")
            times = viewer_open(app, EXAM.name, arguments.repeat)
            for what, seconds in times.items():
                print(
                    f"  {what}: {', '.join(f'{t:.2f}' for t in seconds)} s; median {statistics.median(seconds):.2f} s"
                )
            extra = statistics.median(times["four"]) - statistics.median(times["one"])
            print(f"  the four images cost {extra:+.2f} s more than one (target for one: 2 s)")
            print("2. run overhead: btk run vs the same run through the app (every stage resumed)")
            cli = [cli_run(output) for _ in range(arguments.repeat)]
            through_app = [app_run(app, output) for _ in range(arguments.repeat)]
        added = statistics.median(through_app) - statistics.median(cli)
        print(f"  btk run:  {', '.join(f'{t:.2f}' for t in cli)} s (median {statistics.median(cli):.2f})")
        print(
            f"  app run:  {', '.join(f'{t:.2f}' for t in through_app)} s (median {statistics.median(through_app):.2f})"
        )
        print(f"  the app adds {added:+.2f} s (target at most 1 s)")
        medians = {f"viewer_{what.replace(' ', '_')}_s": round(statistics.median(t), 2) for what, t in times.items()}
        print(json.dumps({**medians, "app_added_s": round(added, 2)}))


if __name__ == "__main__":
    main()
