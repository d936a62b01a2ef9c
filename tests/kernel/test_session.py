"""Session assembly: GPU discovery and selection, the CPU-only switch, collectors, and the server-only step.

The no-GPU path runs for real here (nvidia-ml-py is installed, there is no NVIDIA driver). GPU hosts are faked
only at the pynvml function boundary (``FakeNvml`` from tests/plugins/collectors/test_nvml.py); the launcher and
load generator are deterministic stand-ins so a whole profile runs in well under a second.
"""

from __future__ import annotations

import csv
import logging
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel import session
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.engine import Engine, MeasuresServerOnly
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.interfaces import Launcher, LoadGenerator, RunContext, SearchStrategy
from modelyzer.kernel.models import (
    ConfigVariant,
    Endpoints,
    GpuDevice,
    LoadSpec,
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
)
from modelyzer.kernel.progress import Progress
from modelyzer.kernel.store import Store
from tests.plugins.collectors.test_nvml import FakeGpu, FakeNvml, three_gpus_one_mig

CONFIG = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
A = GpuDevice("GPU-aaaa", "A100", 0, 40_000)
B = GpuDevice("GPU-bbbb", "A100", 1, 40_000)
M0 = GpuDevice("MIG-c0", "A100 MIG 1g.5gb", 2, 5_000, mig=True)
M2 = GpuDevice("MIG-c2", "A100 MIG 2g.10gb", 2, 10_000, mig=True)
FOUND = [A, B, M0, M2]


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeNvml]:
    def _install(gpus: list[FakeGpu] | None = None) -> FakeNvml:
        return FakeNvml(three_gpus_one_mig() if gpus is None else gpus).install(monkeypatch)

    return _install


def profile_config(tmp_path: Path, **values: Any) -> ProfileConfig:
    repo = tmp_path / "repo"
    (repo / "m" / "1").mkdir(parents=True, exist_ok=True)
    (repo / "m" / "config.pbtxt").write_text(CONFIG)
    (repo / "m" / "1" / "model.onnx").write_bytes(b"onnx")
    base: dict[str, Any] = {
        "model_repository": str(repo),
        "profile_models": "m",
        "export_path": str(tmp_path / "out"),
        "output_model_repository_path": str(tmp_path / "out" / "output_model_repository"),
        "concurrency": [1],
        "run_config_search_max_instance_count": 1,
        "run_config_search_max_model_batch_size": 1,
        "monitoring_interval": 0.05,
        "duration_seconds": 1,
    }
    return config_from_dict({**base, **values}, {})


def ns(**values: Any) -> Any:
    return types.SimpleNamespace(**{"gpus": ["all"], "triton_launch_mode": "local", "dcgm_disable": False, **values})


def context_for(tmp_path: Path, gpus: list[GpuDevice] | None = None) -> RunContext:
    return RunContext(export_path=tmp_path, output_model_repository=tmp_path / "omr", gpus=list(gpus or []))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- selection -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (None, FOUND),
        (["all"], FOUND),
        ("ALL", FOUND),
        ([], []),
        (["GPU-bbbb"], [B]),
        (["gpu-BBBB", "0"], [B, A]),
        (["1"], [B]),
        (["2"], [M0, M2]),  # an index selects every MIG instance of that GPU
        (["MIG-c2"], [M2]),
        (["0", "GPU-aaaa", 0], [A]),  # duplicates collapse
    ],
)
def test_select_gpus(requested: Any, expected: list[GpuDevice]) -> None:
    assert session.select_gpus(requested, FOUND) == expected


def test_unknown_gpu_is_a_one_line_config_error_listing_what_was_found() -> None:
    with pytest.raises(ConfigError) as err:
        session.select_gpus(["GPU-nope"], FOUND)
    message = str(err.value)
    assert message.startswith("gpus: no GPU 'GPU-nope' on this host; GPUs found: 0 GPU-aaaa (A100); 1 GPU-bbbb")
    assert "\n" not in message and err.value.exit_code == 2
    with pytest.raises(ConfigError, match=r"gpus: no GPU '7' on this host; GPUs found: 0 GPU-aaaa"):
        session.select_gpus(["7"], FOUND)
    with pytest.raises(ConfigError, match=r"GPUs found: none \(no NVIDIA GPU found\) \(a remote server.*dcgm_disable"):
        session.select_gpus(["0"], [], mode="remote")


def test_discover_gpus_asks_the_collectors_and_records_the_selection(tmp_path: Path, nvml: Any) -> None:
    nvml()
    context = context_for(tmp_path)
    store = Store(":memory:")
    selected = session.discover_gpus(ns(gpus=["1", "MIG-c0"]), context, store)
    assert [d.uuid for d in selected] == ["GPU-bbbb", "MIG-c0"] and context.gpus == selected
    assert context.gpu_uuids == ["GPU-bbbb", "MIG-c0"]
    assert {r.uuid: (r.name, r.total_memory) for r in store.gpus()} == {
        "GPU-bbbb": ("NVIDIA A100-SXM4-40GB", 40_000_000_000),
        "MIG-c0": ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", 5_000_000_000),
    }
    assert [d.uuid for d in session.discover_gpus(ns(), context)] == ["GPU-aaaa", "GPU-bbbb", "MIG-c0", "MIG-c2"]
    assert session.discover_gpus(ns(gpus=[]), context) == [] and context.gpus == []
    assert session.discover_gpus(ns(triton_launch_mode="remote", dcgm_disable=True), context) == []
    with pytest.raises(ConfigError, match="gpus: no GPU 'GPU-x'.*0 GPU-aaaa"):
        session.discover_gpus(ns(gpus=["GPU-x"]), context)


def test_discovery_survives_a_collector_that_raises(tmp_path: Path, nvml: Any, register_plugin: Any) -> None:
    from modelyzer.kernel.hookspecs import hookimpl

    class Broken:
        def __init__(self, config: Any, context: Any) -> None:
            raise RuntimeError("no such device")

    class Plugin:
        @hookimpl
        def register_metric_collectors(self, register: Any) -> None:
            register("broken", Broken)

    register_plugin(Plugin(), "broken-collector")
    nvml([FakeGpu("GPU-aaaa")])
    assert [d.uuid for d in session.found_gpus(ns(), context_for(tmp_path))] == ["GPU-aaaa"]


# --- the real no-GPU path ------------------------------------------------------------------------------
def test_no_gpu_here_profiles_cpu_only_with_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Real nvidia-ml-py, no driver: no GPUs, one warning line, KIND_CPU models, no nvml collector."""
    caplog.set_level(logging.DEBUG, logger="modelyzer")
    config = profile_config(tmp_path)
    assert config.models[0].cpu_only is False
    context, store = session.prepare(config)
    assert context.gpus == [] and store.gpus() == []
    config = session.resolve_cpu_only(config, context)
    assert [m.cpu_only for m in config.models] == [True]
    assert warnings_of(caplog) == [session.NO_GPU_MESSAGE] == ["no NVIDIA GPU found: profiling CPU-only"]
    names = {type(c).__name__ for c in session.make_collectors(config, context)}
    assert "NvmlCollector" not in names


def test_no_gpu_profile_end_to_end_through_session(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = profile_config(tmp_path)
    context, store = session.prepare(config)
    config = session.resolve_cpu_only(config, context)
    executor = session.GpuExecutor(
        config, context, FakeLauncher(), FakeLoad(), session.make_collectors(config, context), session.make_codec()
    )
    summary = Engine(config, store, executor, session.make_codec(), session.strategy_factory(config),
                     Progress(quiet=True)).run()
    assert summary.status == "finished" and summary.measured == 2
    assert store.db["server_only_metrics"].count == 0
    paths = session.write_reports(store, summary.run_id, config, session.rank_models(store, config))
    results = Path(config.export_path) / "results"
    assert {p.name for p in paths} >= {"metrics-model-inference.csv"}
    rows = read_csv(results / "metrics-model-inference.csv")
    assert [r["Instance Group"] for r in rows] == ["1:CPU", "1:CPU"]
    assert not (results / "metrics-model-gpu.csv").exists() and not (results / "metrics-server-only.csv").exists()
    assert warnings_of(caplog).count(session.NO_GPU_MESSAGE) == 1


def test_no_switch_on_remote_servers_or_with_gpus(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    remote = profile_config(tmp_path, triton_launch_mode="remote")
    assert session.resolve_cpu_only(remote, context_for(tmp_path)) is remote
    local = profile_config(tmp_path)
    assert session.resolve_cpu_only(local, context_for(tmp_path, [A])) is local
    assert warnings_of(caplog) == []


def test_gpus_empty_is_cpu_only_without_the_no_gpu_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modelyzer")
    config = session.resolve_cpu_only(profile_config(tmp_path, gpus=[]), context_for(tmp_path))
    assert config.models[0].cpu_only and warnings_of(caplog) == []
    assert "gpus is empty: profiling CPU-only" in caplog.text


@pytest.mark.parametrize(
    ("instance_group", "cpu_only"),
    [
        (None, True),
        ([{"count": [1, 2]}], True),  # no kind: becomes KIND_CPU
        ([{"kind": "KIND_GPU", "count": 1}], False),  # explicit kind wins
        ([{"kind": "KIND_CPU", "count": 1}], True),
        ([[{"kind": "KIND_GPU", "count": 1}], [{"count": 2}]], True),  # one group without a kind
        ([{"kind": ["KIND_CPU", "KIND_GPU"], "count": 1}], False),
    ],
)
def test_explicit_instance_kind_wins(tmp_path: Path, instance_group: Any, cpu_only: bool) -> None:
    settings: dict[str, Any] = {}
    if instance_group is not None:
        settings["model_config_parameters"] = {"instance_group": instance_group}
    config = profile_config(tmp_path, profile_models={"m": settings})
    resolved = session.resolve_cpu_only(config, context_for(tmp_path))
    assert resolved.models[0].cpu_only is cpu_only
    assert session.cpu_only_without_gpus(ModelSpec("x", cpu_only=True)) is True


# --- collectors and the server-only step with fake GPUs ------------------------------------------------------
def test_nvml_is_preferred_and_triton_metrics_is_not_run_twice(tmp_path: Path) -> None:
    config = profile_config(tmp_path, collect_cpu_metrics=True)
    names = [type(c).__name__ for c in session.make_collectors(config, context_for(tmp_path, [A]))]
    assert names[0] == "NvmlCollector" and "TritonMetricsCollector" not in names and "CpuCollector" in names
    names = [type(c).__name__ for c in session.make_collectors(config, context_for(tmp_path))]
    assert "NvmlCollector" not in names and "TritonMetricsCollector" in names


def test_gpu_profile_end_to_end_with_server_only_metrics(tmp_path: Path, nvml: Any, monkeypatch: Any) -> None:
    fake = nvml()
    monkeypatch.setattr(session.GpuExecutor, "sleep", staticmethod(lambda seconds: None))
    config = profile_config(tmp_path, gpus=["0", "GPU-bbbb"])
    context, store = session.prepare(config)
    assert context.gpu_uuids == ["GPU-aaaa", "GPU-bbbb"]
    assert session.resolve_cpu_only(config, context) is config

    def run() -> Any:
        executor = session.GpuExecutor(config, context, FakeLauncher(), FakeLoad(),
                                       session.make_collectors(config, context), session.make_codec())
        assert isinstance(executor, MeasuresServerOnly)
        return Engine(config, store, executor, session.make_codec(), session.strategy_factory(config),
                      Progress(quiet=True)).run()

    summary = run()
    assert summary.measured == 2 and fake.inits == fake.shutdowns == 1 + 1 + 2  # discovery, server-only, 2 windows
    rows = list(store.db["server_only_metrics"].rows_where("run_id = ?", [summary.run_id]))
    assert {(r["gpu_uuid"], r["tag"]): r["value"] for r in rows if r["tag"] == "gpu_used_memory"} == {
        ("GPU-aaaa", "gpu_used_memory"): 2000.0, ("GPU-bbbb", "gpu_used_memory"): 4000.0}
    for result in store.results("m"):
        assert set(result.measurement.gpu_values()) == {"GPU-aaaa", "GPU-bbbb"}
    session.write_reports(store, summary.run_id, config, session.rank_models(store, config))
    results = Path(config.export_path) / "results"
    server = read_csv(results / "metrics-server-only.csv")
    assert [(r["Model"], r["GPU UUID"], r["GPU Memory Usage (MB)"], r["GPU Utilization (%)"],
             r["GPU Power Usage (W)"]) for r in server] == [
        ("triton-server", "GPU-aaaa", "2000.0", "40.0", "150.0"),
        ("triton-server", "GPU-bbbb", "4000.0", "80.0", "250.0"),
    ]
    gpu_rows = read_csv(results / "metrics-model-gpu.csv")
    assert len(gpu_rows) == 4 and [r["GPU UUID"] for r in gpu_rows[:2]] == ["GPU-aaaa", "GPU-bbbb"]

    # resume on the same GPUs: the server-only metrics are reused, not measured again
    inits = fake.inits
    again = run()
    assert again.skipped == 2 and fake.inits == inits  # no server-only window, nothing measured
    assert store.db["server_only_metrics"].count_where("run_id = ?", [again.run_id]) == len(rows)


class FakeServerOnlyExecutor(Executor):
    """Executes nothing (the strategy proposes nothing); measures server-only metrics of `gpus`."""

    def __init__(self, gpus: list[str], fail: bool = False) -> None:
        self.gpus = gpus
        self.fail = fail
        self.durations: list[float] = []
        self.started = False

    def start(self) -> None:
        self.started = True

    def execute(self, run_configs: Any) -> Any:
        return iter(())

    def server_only_gpus(self) -> list[str]:
        return list(self.gpus)

    def server_only_metrics(self, duration: float) -> list[Metric]:
        assert self.started, "the server must be up before server-only sampling"
        self.durations.append(duration)
        if self.fail:
            raise RuntimeError("NVML went away")
        return [Metric("gpu_used_memory", 100.0 + i, gpu_uuid=u) for i, u in enumerate(self.gpus)] + [
            Metric("gpu_used_memory", 9.0, gpu_uuid="GPU-other"), Metric("perf_throughput", 1.0)]


class NoSearch(SearchStrategy):
    def __init__(self, spec: ModelSpec, base: dict[str, Any], config: Any) -> None:
        pass

    def propose(self, slots: int = 1) -> list[RunConfig]:
        return []

    def observe(self, results: list[Result]) -> None:
        pass


def engine_run(tmp_path: Path, store: Store, executor: Executor, **config: Any) -> int:
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "config.pbtxt").write_text(CONFIG)
    values = {"duration_seconds": 3, "triton_launch_mode": "local", **config}
    cfg = types.SimpleNamespace(models=(ModelSpec("m", model_path=str(tmp_path / "m")),), **values)
    return Engine(cfg, store, executor, session.make_codec(), NoSearch, Progress(quiet=True)).run().run_id


def test_server_only_step_stores_rows_and_reuses_them_on_resume(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    first = FakeServerOnlyExecutor(["GPU-b", "GPU-a"])
    run1 = engine_run(tmp_path, store, first, duration_seconds=2)
    assert first.durations == [2.0]
    rows = [(r["tag"], r["value"], r["gpu_uuid"]) for r in store.db["server_only_metrics"].rows_where("run_id = ?", [run1])]
    assert rows == [("gpu_used_memory", 100.0, "GPU-b"), ("gpu_used_memory", 101.0, "GPU-a")]
    same = FakeServerOnlyExecutor(["GPU-a", "GPU-b"])
    run2 = engine_run(tmp_path, store, same)
    assert same.durations == [] and store.previous_server_only(["GPU-a", "GPU-b"], exclude_run=run2) == run1
    assert store.db["server_only_metrics"].count_where("run_id = ?", [run2]) == 2
    other = FakeServerOnlyExecutor(["GPU-a"])
    engine_run(tmp_path, store, other)
    assert other.durations == [3.0]  # different GPUs: measured again


@pytest.mark.parametrize(("mode", "gpus"), [("c_api", ["GPU-a"]), ("remote", ["GPU-a"]), ("local", [])])
def test_server_only_step_is_skipped(tmp_path: Path, mode: str, gpus: list[str]) -> None:
    store = Store(":memory:")
    executor = FakeServerOnlyExecutor(gpus)
    engine_run(tmp_path, store, executor, triton_launch_mode=mode)
    assert executor.durations == [] and store.db["server_only_metrics"].count == 0


def test_server_only_failure_is_a_warning_and_the_profile_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(":memory:")
    run_id = engine_run(tmp_path, store, FakeServerOnlyExecutor(["GPU-a"], fail=True))
    assert store.run(run_id).status == "finished"
    assert warnings_of(caplog) == ["server-only metrics are missing: NVML went away"]


# --- stand-ins ------------------------------------------------------------------------------------------
class FakeLauncher(Launcher):
    def start(self) -> None:
        self.server_starts += 1

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        self.model_loads += 1
        return Endpoints(model_name=variant.model)

    def stop(self) -> None:
        pass


class FakeLoad(LoadGenerator):
    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        mbs = run_config.variant.max_batch_size
        return [Metric("perf_throughput", 100.0 + mbs), Metric("perf_latency_p99", 1.0)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


__all__ = ["LoadSpec", "Measurement"]
