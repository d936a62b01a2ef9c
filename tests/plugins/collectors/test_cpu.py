"""The cpu collector samples real processes: a child holding 50 MB, a process tree, a vanished PID."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints
from modelyzer.plugins.collectors import cpu as cc

HOLD_50MB = "import sys, time; x = bytearray(50_000_000); print('ready', flush=True); time.sleep(30)"


def collector(tmp_path: Path, **overrides: Any) -> cc.CpuCollector:
    config = config_from_dict(
        {"profile_models": "m", "collect_cpu_metrics": True, "monitoring_interval": 0.1, **overrides}, check_paths=False
    )
    return cc.CpuCollector(config, RunContext(export_path=tmp_path, output_model_repository=tmp_path))


@pytest.fixture
def spawn() -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def _spawn(code: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield _spawn
    for proc in procs:
        proc.kill()
        proc.wait()


def values(metrics: list[Any]) -> dict[str, float]:
    return {m.tag: m.value for m in metrics}


def test_enabled_follows_collect_cpu_metrics(tmp_path: Path) -> None:
    assert collector(tmp_path).enabled() is True
    assert collector(tmp_path, collect_cpu_metrics=False).enabled() is False
    seen: dict[str, Any] = {}
    cc.register_metric_collectors(lambda name, factory: seen.update({name: factory}))
    assert seen == {"cpu": cc.CpuCollector}


def test_measures_the_server_process(tmp_path: Path, spawn: Any) -> None:
    proc = spawn(HOLD_50MB)
    col = collector(tmp_path)
    col.start(Endpoints(server_pid=proc.pid))
    time.sleep(0.35)
    got = values(col.stop())
    assert got["cpu_used_ram"] >= 40.0
    assert 0 < got["cpu_available_ram"]
    assert col.stop() == []  # already stopped


def test_counts_the_servers_children(tmp_path: Path, spawn: Any) -> None:
    parent = spawn(
        "import subprocess, sys, time\n"
        f"c = subprocess.Popen([sys.executable, '-c', {HOLD_50MB!r}], stdout=subprocess.PIPE, text=True)\n"
        "c.stdout.readline(); print('ready', flush=True); time.sleep(30)"
    )
    assert cc.process_tree_memory(parent.pid) >= 40e6
    col = collector(tmp_path)
    col.start(Endpoints(server_pid=parent.pid))
    assert values(col.stop())["cpu_used_ram"] >= 40.0


def test_vanished_process_keeps_earlier_samples(
    tmp_path: Path, spawn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    proc = spawn(HOLD_50MB)
    col = collector(tmp_path)
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        col.start(Endpoints(server_pid=proc.pid))
        proc.kill()
        proc.wait()
        time.sleep(0.3)
        got = values(col.stop())
    assert got["cpu_used_ram"] >= 40.0 and got["cpu_available_ram"] > 0
    assert sum("is gone" in r.getMessage() for r in caplog.records) == 1


def test_dead_or_missing_pid_reports_only_available_ram(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for endpoints in (Endpoints(server_pid=dead.pid), Endpoints()):
        col = collector(tmp_path)
        col.start(endpoints)
        assert list(values(col.stop())) == ["cpu_available_ram"]
