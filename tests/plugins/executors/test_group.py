"""Concurrent multi-model measurement: the real Triton serving two models at once, their two real perf_analyzers
started together with lined-up windows; and the rules that need no server (overlap, combining, one-line errors)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyzer.kernel.models import LoadSpec, Metric, RunConfig
from modelyzer.kernel.store import Store
from modelyzer.plugins.executors.group import OVERLAP, combine_group, overlap_percent
from modelyzer.plugins.setup_tools import setup_tool
from tests.conftest import PERF_ANALYZER, ROOT, modelyzer_cmd

PIPELINES = ROOT / "examples" / "triton-cpu" / "pipelines"


def test_overlap_is_intersection_over_union() -> None:
    assert overlap_percent([(0.0, 10.0), (0.0, 10.0)]) == 100.0
    assert overlap_percent([(0.0, 10.0), (1.0, 11.0)]) == pytest.approx(900 / 11)
    assert overlap_percent([(0.0, 1.0), (2.0, 3.0)]) == 0.0


def test_each_models_values_are_kept_and_combined_the_way_the_metric_says() -> None:
    a = RunConfig("a", pytest.importorskip("modelyzer.kernel.models").ConfigVariant("a", {}), LoadSpec(concurrency=1))
    b = RunConfig("b", a.variant, LoadSpec(concurrency=1))
    out = combine_group([a, b], [
        [Metric("perf_throughput", 10.0), Metric("perf_latency_p99", 4.0), Metric("gpu_used_memory", 100.0, "GPU-0")],
        [Metric("perf_throughput", 30.0), Metric("perf_latency_p99", 2.0), Metric("gpu_used_memory", 100.0, "GPU-0")],
    ])
    values = {(m.tag, m.gpu_uuid): m.value for m in out}
    assert values[("perf_throughput", None)] == 40.0 and values[("perf_latency_p99", None)] == 3.0  # sum, mean
    assert values[("perf_throughput@a", None)] == 10.0 and values[("perf_latency_p99@b", None)] == 2.0
    assert [m for m in out if m.gpu_uuid] == [Metric("gpu_used_memory", 100.0, "GPU-0")]  # the server's, once


def _config(tmp_path: Path, **extra: Any) -> Path:
    export = tmp_path / "out"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_repository": str(PIPELINES), "triton_launch_mode": "local",
        "profile_models": {"scale": {"weighting": 1}, "add_sub": {"weighting": 3}},
        "run_config_profile_models_concurrently_enable": True,
        "export_path": str(export), "output_model_repository_path": str(export / "omr"),
        **extra,
    }, sort_keys=False))
    return path


def _profile(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*modelyzer_cmd(), "profile", "-f", str(path)], capture_output=True, text=True, timeout=600)


def test_concurrent_mode_with_one_model_is_one_line(tmp_path: Path) -> None:
    path = _config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["profile_models"] = "scale"
    path.write_text(yaml.safe_dump(data))
    proc = _profile(path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].endswith("run_config_profile_models_concurrently_enable: needs at least two profile_models "
                              "(got 1); remove the key to profile one model"), proc.stderr


@pytest.mark.integration
@pytest.mark.skipif(setup_tool("tritonserver") is None or not PERF_ANALYZER.exists(),
                    reason="tritonserver/perf_analyzer missing; run .ci/setup")
def test_two_models_profiled_concurrently_on_the_real_triton(tmp_path: Path) -> None:
    """The default search (brute) over the small product of both models' spaces, then the common-load sweep of the best: every
    measurement has both models loaded on one server, both perf_analyzers measuring at once (windows overlapping
    ≥ 90%), each model's own values and the combination; ranked with the normalised weighting."""
    path = _config(tmp_path, run_config_search_max_instance_count=1,
                   run_config_search_max_model_batch_size=2, run_config_search_max_concurrency=2,
                   num_configs_per_model=1, perf_analyzer_flags={"measurement-interval": 1000},
                   skip_detailed_reports=True)
    proc = _profile(path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    export = tmp_path / "out"
    store = Store.open_existing(export / "results.db")
    try:
        results = store.results("scale,add_sub")
        spec = store.model_spec("scale,add_sub")
    finally:
        store.close()
    assert [m.name for m in spec.members] == ["scale", "add_sub"]
    assert len(results) >= 5 and all(r.measurement.ok for r in results), [r.measurement.error for r in results]
    names = {r.run_config.variant.name for r in results}
    assert "scale_config_default,add_sub_config_default" in names and len(names) == 5  # default + 2 × 2
    for r in results:
        values = r.measurement.values()
        assert values[OVERLAP] >= 90.0, values[OVERLAP]
        own = values["perf_throughput@scale"], values["perf_throughput@add_sub"]
        assert min(own) > 0 and values["perf_throughput"] == pytest.approx(sum(own))
        assert values["perf_latency_p99"] == pytest.approx(
            (values["perf_latency_p99@scale"] + values["perf_latency_p99@add_sub"]) / 2)
        assert [m.model for m in r.run_config.members] == ["scale", "add_sub"]
    # every combination first at each model's formula load (2 × max_batch_size × instances, clamped to 2), then
    # the sweep of the best and the default with one common load for both (1: 2 is measured already)
    loads = [tuple(m.load.concurrency for m in r.run_config.members) for r in results]
    assert loads[:5] == [(2, 2)] * 5 and set(loads[5:]) == {(1, 1)}, loads
    conn = sqlite3.connect(export / "results.db")
    try:  # one server for everything; a model is loaded again only when its own variant changes
        starts, loads = conn.execute("select server_starts, model_loads from runs").fetchone()
    finally:
        conn.close()
    changes = sum(a.variant.name != b.variant.name for prev, cur in zip(results, results[1:], strict=False)
                  for a, b in zip(prev.run_config.members, cur.run_config.members, strict=True))
    assert starts == 1 and loads == 2 + changes, (loads, changes)
    assert "Top configurations for scale,add_sub" in proc.stdout
