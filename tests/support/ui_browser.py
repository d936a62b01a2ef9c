"""The web dashboard under test: `modelyzer ui` in a subprocess on a free port, and a headless Debian Chromium.

Shared by tests/frontends/web and bench/ui.py. The browser is Debian's chromium driven through Selenium with
Debian's chromedriver (no browser download), started with the flags this machine's closed network needs.
"""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import modelyzer_cmd

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


class UiServer:
    """`modelyzer ui --port 0 …` running; `url` is the address it printed (with its token, if any)."""

    def __init__(self, db: Path, *args: str, timeout: float = 30) -> None:
        self.proc = subprocess.Popen([*modelyzer_cmd(), "ui", "--results-db", str(db), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            found = re.search(r"(http://\S+)", line)
            if found:
                self.url = found.group(1)
                self.base = self.url.split("?")[0].rstrip("/")
                return
        self.stop()
        raise AssertionError(f"modelyzer ui did not start: {self.lines} {self.proc.stderr.read() if self.proc.stderr else ''}")

    def get(self, path: str, token: str | None = None, host: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if host:
            request.add_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def chromium() -> Any:
    """A headless Chromium WebDriver (Selenium, Debian's chromium and chromedriver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='modelyzer-ui-chromium-')}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def pixel_stddev(png: Path) -> float:
    """The standard deviation of a screenshot's grey levels: near 0 for a blank page."""
    from PIL import Image, ImageStat

    with Image.open(png) as image:
        return float(ImageStat.Stat(image.convert("L")).stddev[0])
