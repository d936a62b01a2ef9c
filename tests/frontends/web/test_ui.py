"""`modelyzer ui` end to end: the real server on a free port, real results DBs made by replay profiles through the
real CLI (one finished, one being written live), a real headless Chromium (Debian's, through Selenium).

Screenshots are checked non-blank; `MODELYZER_SCREENSHOTS=docs` writes them to docs/images/ui-*.png (the README's).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.store import NotAResultsDB, Store
from tests.conftest import ROOT, modelyzer_cmd
from tests.support.replay_profile import MODEL, modelyzer, one_line_error, replay_config
from tests.support.ui_browser import CHROMEDRIVER, CHROMIUM, UiServer, chromium, pixel_stddev

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="Debian chromium and chromium-driver are not installed (.ci/setup installs them)")
#: where screenshots go: docs/images (the README's) with MODELYZER_SCREENSHOTS=docs, else a scratch directory, so a
#: test run leaves the checkout clean
IMAGES = (ROOT / "docs" / "images" if os.environ.get("MODELYZER_SCREENSHOTS") == "docs"
          else Path(tempfile.gettempdir()) / "modelyzer-ui-screenshots")
CONSTRAINTS = {"perf_latency_p99": {"max": 10}, "perf_throughput": {"min": 1000}}


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def screenshot(driver: Any, name: str, height: int | None = None) -> Path:
    """ui-<name>.png of the window in IMAGES (`height` px tall for this one), checked non-blank."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / f"ui-{name}.png"
    size = driver.get_window_size()
    if height:
        driver.set_window_size(size["width"], height)
        time.sleep(0.3)  # Plotly redraws at the new size
    try:
        driver.save_screenshot(str(path))
    finally:
        if height:
            driver.set_window_size(size["width"], size["height"])
    assert pixel_stddev(path) > 20, f"{path} looks blank"
    return path


@pytest.fixture(scope="module")
def finished_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    proc = modelyzer("profile", "-f", str(replay_config(root, constraints=CONSTRAINTS)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "out" / "results.db"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def started(db: Path) -> bool:
    """The profile's results DB exists and holds its run (before that the file may be half made)."""
    try:
        return db.exists() and Store.open_readonly(db).latest_run() is not None
    except NotAResultsDB:
        return False


@pytest.fixture(scope="module")
def server(finished_db: Path) -> Iterator[UiServer]:
    before = digest(finished_db)
    ui = UiServer(finished_db)
    try:
        yield ui
    finally:
        ui.stop()
    assert digest(finished_db) == before, "the dashboard changed the results DB"


def text_of(driver: Any, selector: str) -> str:
    """The text of the first element matching `selector`, read in one step (the live panel replaces its rows)."""
    return str(driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : ''",
                                     selector))


def rows(driver: Any) -> list[Any]:
    return [r for r in driver.find_elements("css selector", "#ranked tbody tr") if r.is_displayed()]


def column(driver: Any, header: str) -> list[float]:
    headers = [h.text.rstrip(" ▲▼") for h in driver.find_elements("css selector", "#ranked thead th")]
    index = headers.index(header)
    return [float(r.find_elements("css selector", "td")[index].get_attribute("data-v")) for r in rows(driver)]


def test_model_page_sorts_filters_hovers_compares_and_downloads(server: UiServer, browser: Any) -> None:
    browser.get(f"{server.base}/model/{MODEL}")
    wait_for(lambda: browser.execute_script("return document.body.dataset.plotted"), what="the plots")
    total = len(rows(browser))
    assert total >= 5
    screenshot(browser, "model", height=1500)

    header = next(h for h in browser.find_elements("css selector", "#ranked thead th") if h.text == "infer/s")
    header.click()
    assert column(browser, "infer/s") == sorted(column(browser, "infer/s"))
    header.click()
    assert column(browser, "infer/s") == sorted(column(browser, "infer/s"), reverse=True)
    assert header.get_attribute("aria-sort") == "descending"

    browser.find_element("id", "only-met").click()
    shown = rows(browser)
    assert 0 < len(shown) < total and all(r.get_attribute("data-passing") == "1" for r in shown)
    assert all(p <= 10 for p in column(browser, "p99 ms")) and all(t >= 1000 for t in column(browser, "infer/s"))
    browser.find_element("id", "only-met").click()

    from selenium.webdriver import ActionChains

    point = browser.find_element("css selector", "#frontier .scatterlayer .trace .points path")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", point)
    ActionChains(browser).move_to_element(point).perform()
    hover = wait_for(lambda: browser.find_elements("css selector", "#frontier .hoverlayer .hovertext"), what="hover")
    text = hover[0].text
    assert "instances" in text and "max batch" in text and "load: concurrency" in text, text
    screenshot(browser, "hover")

    names = [r.get_attribute("data-name") for r in rows(browser)]
    for name in (names[0], names[-1]):
        browser.find_element("css selector", f"input.pick[value='{name}']").click()
    browser.find_element("id", "compare").click()
    wait_for(lambda: browser.find_elements("id", "diff"), what="the compare page")
    assert "compare?" in browser.current_url
    changed = [r.text for r in browser.find_elements("css selector", "#diff tr.changed")]
    assert changed, "two different configs show a config difference"
    metrics = browser.find_element("id", "metrics").text
    assert "Throughput (infer/sec)" in metrics and "%" in metrics
    screenshot(browser, "compare")

    status, body = server.get(f"/model/{MODEL}/best_config.json")
    doc = json.loads(body)
    assert status == 200 and doc["model"] == MODEL and doc["variant"] == names[0] or doc["statistically_tied"]
    status, body = server.get(f"/model/{MODEL}/config.pbtxt")
    assert status == 200 and f'name: "{MODEL}"' in body.decode()
    status, _ = server.get("/export/reports/summaries/" + MODEL + "/result_summary.html")
    assert status == 200
    assert server.get("/export/../results.db")[0] == 404
    assert server.get("/state.json", host="rebound.example:80")[0] == 400  # DNS rebinding: only loopback names
    assert server.get("/state.json", host="localhost")[0] == 200


def test_runs_list(server: UiServer, browser: Any, finished_db: Path) -> None:
    browser.get(server.base + "/")
    wait_for(lambda: "measured" in text_of(browser, "#progress-text"), what="the live panel")
    assert "finished" in browser.find_element("id", "runs").text
    assert browser.find_element("css selector", f"#models a[href='/model/{MODEL}']")
    writer = Store(finished_db)
    try:
        writer.claim()  # the dashboard never holds the profile's lock: a profile can start on this DB now
    finally:
        writer.close()


def test_a_new_measurement_appears_while_a_profile_writes(tmp_path: Path, browser: Any) -> None:
    config = replay_config(tmp_path, constraints=CONSTRAINTS, replay_duration=0.3)
    db = tmp_path / "out" / "results.db"
    profile = subprocess.Popen([*modelyzer_cmd(), "profile", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    ui = None
    try:
        wait_for(lambda: started(db), what="the profile's run in its results DB")
        ui = UiServer(db)
        browser.get(f"{ui.base}/model/{MODEL}")
        browser.execute_script("window.notReloaded = true")
        text = wait_for(lambda: (t := text_of(browser, "#progress-text")) and " of ~" in t and t,
                        what="progress with a total")
        first = int(text.split(": ")[1].split(" ")[0])
        shown = wait_for(lambda: text_of(browser, "#latest tbody tr"), what="latest measurements")

        def advanced() -> bool:
            now = text_of(browser, "#progress-text")
            return int(now.split(": ")[1].split(" ")[0]) > first + 2 and text_of(browser, "#latest tbody tr") != shown

        wait_for(advanced, timeout=30, what="a new measurement on the page")
        assert browser.execute_script("return window.notReloaded") is True  # updated in place, no reload
        assert "ETA" in text_of(browser, "#eta")
        count = "return document.querySelectorAll('#ranked tbody tr[data-name]').length"
        wait_for(lambda: browser.execute_script(count) >= 2, timeout=30, what="the table growing")
        screenshot(browser, "live")
        assert profile.poll() is None or profile.returncode == 0  # the dashboard never stopped the profile
    finally:
        if ui is not None:
            ui.stop()
        profile.terminate()
        profile.wait(timeout=30)


def test_non_loopback_host_needs_the_token_printed_once(finished_db: Path, browser: Any) -> None:
    ui = UiServer(finished_db, "--host", "0.0.0.0")
    try:
        assert any("token" in line and "loopback" in line for line in ui.lines), ui.lines
        token = ui.url.split("token=")[1]
        assert ui.get("/")[0] == 401
        assert ui.get("/state.json", token="wrong")[0] == 401
        assert ui.get("/state.json", token=token)[0] == 200
        assert ui.get(f"/?token={token}")[0] == 200
        browser.get(ui.url)  # the printed URL once: then the cookie carries the token (event stream, data, links)
        wait_for(lambda: "measured" in text_of(browser, "#progress-text"), what="the live panel")
        browser.get(f"{ui.base}/model/{MODEL}")
        wait_for(lambda: browser.execute_script("return document.body.dataset.plotted"), what="the plots")
        browser.delete_all_cookies()
    finally:
        ui.stop()


def test_bad_input_is_one_line_with_exit_code_2(tmp_path: Path, finished_db: Path) -> None:
    not_db = tmp_path / "notes.db"
    not_db.write_text("not a database\n" * 100)
    proc = modelyzer("ui", "--results-db", str(not_db), "--port", "0", timeout=30)
    assert proc.returncode == 2
    one_line_error(proc, "is not a modelyzer results DB")
    proc = modelyzer("ui", "--results-db", str(tmp_path / "missing.db"), "--port", "0", timeout=30)
    assert proc.returncode == 2
    one_line_error(proc, "does not exist")
    with sqlite3.connect(tmp_path / "plain.db") as conn:
        conn.execute("create table t (x)")
    proc = modelyzer("ui", "--results-db", str(tmp_path / "plain.db"), "--port", "0", timeout=30)
    assert proc.returncode == 2
    one_line_error(proc, "is not a modelyzer results DB")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = modelyzer("ui", "--results-db", str(finished_db), "--port", str(port), timeout=30)
    assert proc.returncode == 2
    one_line_error(proc, "already in use")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_agents_and_their_slots_show_while_a_distributed_profile_runs(tmp_path: Path, browser: Any) -> None:
    from modelyzer.plugins.agents.keys import generate_keys

    keys = tmp_path / "keys"
    generate_keys(keys, 1)
    url = f"tcp://127.0.0.1:{free_port()}"
    config = replay_config(tmp_path, replay_duration=0.3)
    db = tmp_path / "out" / "results.db"
    log = (tmp_path / "procs.log").open("ab")
    procs = [subprocess.Popen([*modelyzer_cmd(), "profile", "-f", str(config), "-q", "--agents", url,
                               "--agent-keys", str(keys)], stdout=log, stderr=log),
             subprocess.Popen([*modelyzer_cmd(), "agent", "--controller", url, "--keys", str(keys), "--gpus", "none",
                               "--slots", "2", "--name", "ui-agent", "--workdir", str(tmp_path / "work"),
                               "--max-silence", "30"], stdout=log, stderr=log)]
    ui = None
    try:
        wait_for(lambda: started(db), what="the profile's run in its results DB")
        ui = UiServer(db)
        browser.get(ui.base + "/")
        wait_for(lambda: "ui-agent" in text_of(browser, "#agents-panel"), timeout=30, what="the agent in the panel")
        assert browser.find_element("id", "agents-panel").is_displayed()
        assert "slots 2" in text_of(browser, "#agents-summary")
        cells = text_of(browser, "#agents tbody tr")
        assert "connected" in cells and "CPU" in cells, cells
        screenshot(browser, "agents")
    finally:
        if ui is not None:
            ui.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        log.close()
