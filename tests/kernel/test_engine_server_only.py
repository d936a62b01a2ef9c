"""The engine's server-only step: sampled once per set of GPUs, reused on resume, skipped when nothing can be
sampled, never fatal; and the local executor offers GPUs only when its launcher's server can be sampled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.engine import Engine
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.interfaces import SearchStrategy
from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, ModelSpec, Result, RunConfig
from modelyzer.kernel.progress import Progress
from modelyzer.kernel.store import Store
from modelyzer.plugins.codecs.pbtxt import PbtxtCodec
from modelyzer.plugins.executors.local import InProcessExecutor
from modelyzer.plugins.launchers.c_api import CApiLauncher
from modelyzer.plugins.launchers.remote import RemoteLauncher
from tests.kernel.assembly_support import CONFIG, A, FakeLauncher, context_for, warnings_of


class FakeServerOnlyExecutor(Executor):
    """Measures each RunConfig as ok at once; measures server-only metrics of `gpus`."""

    def __init__(self, gpus: list[str], fail: bool = False) -> None:
        self.gpus = gpus
        self.fail = fail
        self.durations: list[float] = []
        self.started = False

    def start(self) -> None:
        self.started = True

    def execute(self, run_configs: Any) -> Any:
        assert self.started, "the engine starts the executor before its first RunConfig"
        return iter([(rc, Measurement(rc.key, metrics=[Metric("perf_throughput", 1.0)])) for rc in run_configs])

    def server_only_gpus(self) -> list[str]:
        return list(self.gpus)

    def server_only_metrics(self, duration: float) -> list[Metric]:
        assert self.started, "the server must be up before server-only sampling"
        self.durations.append(duration)
        if self.fail:
            raise RuntimeError("NVML went away")
        return [Metric("gpu_used_memory", 100.0 + i, gpu_uuid=u) for i, u in enumerate(self.gpus)] + [
            Metric("gpu_used_memory", 9.0, gpu_uuid="GPU-other"), Metric("perf_throughput", 1.0)]


class OneConfig(SearchStrategy):
    """Proposes the default config at concurrency 1, once."""

    def __init__(self, spec: ModelSpec, base: dict[str, Any], config: Any) -> None:
        self.todo = [RunConfig(spec.name, ConfigVariant(spec.name, base, is_default=True), LoadSpec(concurrency=1))]

    def propose(self, slots: int = 1) -> list[RunConfig]:
        batch, self.todo = self.todo, []
        return batch

    def observe(self, results: list[Result]) -> None:
        pass


def engine_run(tmp_path: Path, store: Store, executor: Executor, **values: Any) -> int:
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "config.pbtxt").write_text(CONFIG)
    cfg = config_from_dict({"model_repository": str(tmp_path), "profile_models": "m", "duration_seconds": 3,
                            "export_path": str(tmp_path / "out"), **values}, check_paths=False)
    return Engine(cfg, store, executor, PbtxtCodec(), OneConfig, Progress(quiet=True)).run().run_id


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
    assert len(store.server_only(run2)) == 2
    other = FakeServerOnlyExecutor(["GPU-a"])
    engine_run(tmp_path, Store(tmp_path / "other.db"), other)  # a fresh DB: nothing to resume
    assert other.durations == [3.0]  # different GPUs: measured again


def test_a_rerun_with_everything_measured_starts_nothing_and_keeps_the_baseline(tmp_path: Path) -> None:
    """Every RunConfig is stored already: the executor (its server) is never started, and the run reuses the
    latest server-only metrics of the same GPUs so its reports keep them."""
    store = Store(tmp_path / "r.db")
    run1 = engine_run(tmp_path, store, FakeServerOnlyExecutor(["GPU-a"]))
    again = FakeServerOnlyExecutor(["GPU-a"])
    run2 = engine_run(tmp_path, store, again)
    assert not again.started and again.durations == []
    assert store.run(run2).skipped == 1 and store.run(run2).measured == 0
    assert store.server_only(run2) == store.server_only(run1) != []


def test_server_only_step_is_skipped_when_the_executor_offers_no_gpu(tmp_path: Path) -> None:
    store = Store(":memory:")
    executor = FakeServerOnlyExecutor([])
    engine_run(tmp_path, store, executor)
    assert executor.durations == [] and store.db["server_only_metrics"].count == 0


@pytest.mark.parametrize(("launcher", "offered"), [(FakeLauncher, ["GPU-aaaa"]), (CApiLauncher, []),
                                                   (RemoteLauncher, [])])
def test_only_a_launcher_declaring_a_server_only_window_offers_its_gpus(tmp_path: Path, launcher: Any,
                                                                         offered: list[str]) -> None:
    """In-process (C API) and remote servers cannot be sampled with no model loaded: they declare it."""
    config = config_from_dict({"profile_models": "m"}, check_paths=False)
    context = context_for(tmp_path, [A])
    executor = InProcessExecutor(config, context, launcher(config, context), collectors=[])
    assert executor.server_only_gpus() == offered


def test_server_only_failure_is_a_warning_and_the_profile_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(":memory:")
    run_id = engine_run(tmp_path, store, FakeServerOnlyExecutor(["GPU-a"], fail=True))
    assert store.run(run_id).status == "finished"
    assert warnings_of(caplog) == ["server-only metrics are missing: NVML went away"]


