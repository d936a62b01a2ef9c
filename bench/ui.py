"""bench/ui: how fast the web dashboard (`modelyzer ui`) loads, and how soon a new measurement shows on it.

Run: `.venv/bin/python bench/ui.py [--loads 5] [--measurements 20] [--duration 0.37]`.

Both use the real server (`modelyzer ui` in a subprocess) and a real headless Chromium (Debian's, through Selenium).
1. Page load: a finished replay profile (bench/surfaces/synthetic-sweet-spot, ~50 measurements); the runs page and a
   model page are opened `--loads` times each: DOMContentLoaded and load (the Navigation Timing API) and, on the
   model page, the time until both Plotly figures are drawn (plotly.js is 4.8 MB).
2. Commit → page: a replay profile writes a new DB live (`replay_duration` s per measurement); a MutationObserver
   in the page notes when each new measurement's row appears in the live panel, against the measurement's
   `finished_at` (set just before the engine commits it), for `--measurements` measurements.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import modelyzer_cmd  # noqa: E402
from tests.support.replay_profile import MODEL, modelyzer, replay_config  # noqa: E402
from tests.support.ui_browser import UiServer, chromium  # noqa: E402

OBSERVE = """
window.appeared = []; window.seen = new Set();
const body = document.querySelector('#latest tbody');
new MutationObserver(() => {
  const now = Date.now() / 1000;
  for (const row of body.rows) {
    const at = parseFloat(row.dataset.finishedAt), key = row.textContent;
    if (!window.seen.has(key)) { window.seen.add(key); if (window.primed) window.appeared.push(now - at); }
  }
  window.primed = true;
}).observe(body, {childList: true});
"""


def wait(driver: Any, script: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError(script)


def page_loads(driver: Any, url: str, loads: int, plots: bool) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"DOMContentLoaded": [], "load": [], "plots drawn": []}
    for _ in range(loads):
        driver.get("about:blank")
        start = time.perf_counter()
        driver.get(url)
        if plots:
            wait(driver, "return document.body.dataset.plotted")
            out["plots drawn"].append((time.perf_counter() - start) * 1000)
        nav = driver.execute_script("const n = performance.getEntriesByType('navigation')[0]; "
                                    "return [n.domContentLoadedEventEnd, n.loadEventEnd];")
        out["DOMContentLoaded"].append(nav[0])
        out["load"].append(nav[1])
    return {k: v for k, v in out.items() if v}


def summary(values: list[float], unit: str = "ms") -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return f"median {statistics.median(ordered):.0f} {unit}, p90 {p90:.0f} {unit}, max {ordered[-1]:.0f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5, help="page loads per page")
    parser.add_argument("--measurements", type=int, default=20, help="live measurements to time")
    # not a multiple of the server's 0.25 s poll: commits then fall at every phase of it, not always at the same one
    parser.add_argument("--duration", type=float, default=0.37, help="replay_duration of the live profile (s)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    driver = chromium()
    try:
        finished = tmp / "finished"
        proc = modelyzer("profile", "-f", str(replay_config(finished, constraints={"perf_latency_p99": {"max": 10}})))
        assert proc.returncode == 0, proc.stderr[-2000:]
        ui = UiServer(finished / "out" / "results.db")
        try:
            driver.get(ui.base + "/")  # warm the browser's cache of plotly.js once, as a returning user has it
            for name, path, plots in (("runs page", "/", False), (f"model page ({MODEL})", f"/model/{MODEL}", True)):
                for metric, values in page_loads(driver, ui.base + path, args.loads, plots).items():
                    print(f"page load, {name}, {metric}: {summary(values)}  ({args.loads} loads)")
        finally:
            ui.stop()

        live = tmp / "live"
        config = replay_config(live, replay_duration=args.duration)
        db = live / "out" / "results.db"
        profile = subprocess.Popen([*modelyzer_cmd(), "profile", "-f", str(config), "-q"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not db.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            ui = UiServer(db)
            try:
                driver.get(ui.base + "/")
                wait(driver, "return document.querySelector('#latest tbody')")
                driver.execute_script(OBSERVE)
                wait(driver, f"return window.appeared && window.appeared.length >= {args.measurements}",
                     timeout=args.measurements * args.duration * 4 + 60)
                delays = [d * 1000 for d in driver.execute_script("return window.appeared")]
                print(f"commit → on page ({len(delays)} measurements, replay_duration {args.duration} s): "
                      f"{summary(delays)}")
            finally:
                ui.stop()
        finally:
            profile.terminate()
            profile.wait(timeout=30)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
