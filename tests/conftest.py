"""Shared fixtures: paths to the real tools set up by .ci/setup, and a throw-away plugin registration."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PERF_ANALYZER = ROOT / ".tools" / "bin" / "perf_analyzer"
MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"
QUICK_START = ROOT / "examples" / "quick-start"


def modelyzer_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "modelyzer"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "modelyzer.frontends.cli"]


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def register_plugin() -> Iterator[Any]:
    """Register throw-away plugin objects by name; they are unregistered after the test."""
    from modelyzer.kernel import plugins

    names: list[str] = []

    def _register(plugin: Any, name: str) -> None:
        names.append(name)
        plugins.register_plugin(plugin, name)

    yield _register
    for name in names:
        plugins.unregister_plugin(name)


def real_server_available() -> str | None:
    """None when MLServer and perf_analyzer are installed, else the reason to skip."""
    if not MLSERVER.exists():
        return f"MLServer venv missing ({MLSERVER}); run .ci/setup"
    if not PERF_ANALYZER.exists():
        return f"perf_analyzer missing ({PERF_ANALYZER}); run .ci/setup"
    return None


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


__all__ = ["MLSERVER", "PERF_ANALYZER", "QUICK_START", "ROOT", "modelyzer_cmd", "real_server_available", "shutil", "os"]
