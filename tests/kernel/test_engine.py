"""The profile loop with a synthetic server: resume, exactly-once, Ctrl-C, failures, batches.

The launcher and load generator here are deterministic stand-ins so the loop's logic can be checked in
milliseconds; the real MLServer + perf_analyzer path is exercised in tests/frontends/test_profile_e2e.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from modelyzer.kernel.assembly import codec as make_codec
from modelyzer.kernel.engine import Engine
from modelyzer.kernel.errors import LoadGeneratorError, ModelyzerError
from modelyzer.kernel.interfaces import Launcher, LoadGenerator, RunContext, SearchStrategy
from modelyzer.kernel.models import (
    ConfigVariant,
    Endpoints,
    LoadSpec,
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
)
from modelyzer.kernel.progress import Progress
from modelyzer.kernel.store import Store
from modelyzer.plugins.executors.local import InProcessExecutor

CONFIG = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'


class FakeLauncher(Launcher):
    def __init__(self) -> None:
        self.loaded: str | None = None
        self.stopped = 0
        self.started = 0

    def start(self) -> None:
        self.started += 1
        self.server_starts += 1

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        assert (variant_dir / "config.pbtxt").exists()
        if self.loaded != variant.name:
            self.loaded = variant.name
            self.model_loads += 1
        return Endpoints(model_name=variant.model)

    def stop(self) -> None:
        self.stopped += 1


class FakeLoad(LoadGenerator):
    def __init__(self, fail: set[int] | None = None, interrupt_at: int | None = None) -> None:
        self.calls = 0
        self.fail = fail or set()
        self.interrupt_at = interrupt_at

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if self.calls in self.fail:
            raise LoadGeneratorError("perf_analyzer: synthetic failure", command="pa", output="boom")
        c = run_config.load.concurrency or 1
        mbs = run_config.variant.max_batch_size
        return [Metric("perf_throughput", 100.0 * c * (1 + mbs / 8)), Metric("perf_latency_p99", 1.0 * c)]


class ListStrategy(SearchStrategy):
    """Proposes a fixed list (default config + mbs 1,2 at concurrency 1,2), one batch per `slots`."""

    def __init__(self, spec: ModelSpec, base: dict[str, Any], config: Any) -> None:
        self.todo = []
        for mbs, default in ((8, True), (1, False), (2, False)):
            cfg = dict(base, max_batch_size=mbs)
            for c in (1, 2):
                self.todo.append(RunConfig(spec.name, ConfigVariant(spec.name, cfg, is_default=default), LoadSpec(concurrency=c)))
        self.observed: list[Result] = []

    def propose(self, slots: int = 1) -> list[RunConfig]:
        batch, self.todo = self.todo[:slots], self.todo[slots:]
        return batch

    def observe(self, results: list[Result]) -> None:
        self.observed.extend(results)


@pytest.fixture
def setup(tmp_path: Path) -> SimpleNamespace:
    repo = tmp_path / "repo"
    (repo / "m" / "1").mkdir(parents=True)
    (repo / "m" / "config.pbtxt").write_text(CONFIG)
    (repo / "m" / "1" / "model.onnx").write_bytes(b"onnx")
    spec = ModelSpec("m", model_path=str(repo / "m"))
    config = SimpleNamespace(models=(spec,), model_repository=str(repo), to_dict=lambda: {"t": 1},
                             collect_cpu_metrics=False, retry_failed=False)
    context = RunContext(export_path=tmp_path, output_model_repository=tmp_path / "out")
    return SimpleNamespace(config=config, context=context, db=tmp_path / "r.db", tmp=tmp_path)


def run(setup: SimpleNamespace, load: FakeLoad, launcher: FakeLauncher | None = None,
        workloads: list[dict[str, Any]] | None = None) -> tuple[Any, FakeLauncher, list[ListStrategy]]:
    launcher = launcher or FakeLauncher()
    executor = InProcessExecutor(setup.config, setup.context, launcher, load, [], make_codec())
    strategies: list[ListStrategy] = []

    def factory(spec: ModelSpec, base: dict[str, Any], config: Any) -> ListStrategy:
        strategies.append(ListStrategy(spec, base, config))
        return strategies[-1]

    engine = Engine(setup.config, Store(setup.db), executor, make_codec(), factory, Progress(quiet=True),
                    workloads or [{}])
    return engine.run(), launcher, strategies


def test_profile_records_every_measurement_and_names_variants(setup: SimpleNamespace) -> None:
    summary, launcher, [strategy] = run(setup, FakeLoad())
    assert (summary.measured, summary.skipped, summary.failed, summary.status) == (6, 0, 0, "finished")
    store = Store(setup.db)
    assert [v.name for v in store.variants("m")] == ["m_config_default", "m_config_0", "m_config_1"]
    assert len(store.results("m")) == 6
    assert len(strategy.observed) == 6
    assert launcher.stopped == 1 and launcher.model_loads == 3
    assert store.run(summary.run_id).status == "finished"
    assert (setup.context.output_model_repository / "m_config_1" / "config.pbtxt").exists()


def test_second_run_resumes_without_remeasuring(setup: SimpleNamespace) -> None:
    run(setup, FakeLoad())
    load = FakeLoad()
    summary, launcher, [strategy] = run(setup, load)
    assert load.calls == 0 and summary.skipped == 6 and summary.measured == 0
    assert launcher.started == 0  # nothing to measure: no server started
    assert len(strategy.observed) == 6  # the strategy replays the same path from stored results
    assert Store(setup.db).counts()["measurements"] == 6


class RacedLoad(FakeLoad):
    """On its second call another process (another connection to the same DB file) stores that RunConfig first."""

    def __init__(self, db: Path) -> None:
        super().__init__()
        self.db = db

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        if self.calls == 1:
            other = Store(self.db)
            run_id = other.start_run({})
            other.record(run_id, run_config, Measurement(run_config.key, metrics=(Metric("perf_throughput", 7.0),)))
            other.close()
        return super().measure(run_config, endpoints)


def test_a_key_stored_by_another_process_meanwhile_is_kept_and_counted_skipped(setup: SimpleNamespace) -> None:
    summary, _, [strategy] = run(setup, RacedLoad(setup.db))
    assert (summary.measured, summary.skipped) == (5, 1)
    store = Store(setup.db)
    assert store.run(summary.run_id).measured == 5
    assert sorted(r.measurement.values()["perf_throughput"] for r in store.results("m"))[0] == 7.0  # theirs
    assert 7.0 in [r.measurement.values()["perf_throughput"] for r in strategy.observed]
    assert store.counts()["measurements"] == 6


def test_ctrl_c_stops_server_keeps_results_and_resumes(setup: SimpleNamespace) -> None:
    launcher = FakeLauncher()
    with pytest.raises(KeyboardInterrupt):
        run(setup, FakeLoad(interrupt_at=4), launcher)
    assert launcher.stopped == 1
    store = Store(setup.db)
    assert store.counts()["measurements"] == 3
    assert store.runs()[-1].status == "interrupted"
    load = FakeLoad()
    summary, _, _ = run(setup, load)
    assert (summary.skipped, summary.measured, load.calls) == (3, 3, 3)
    assert Store(setup.db).counts()["measurements"] == 6


def test_failed_measurement_is_stored_with_error(setup: SimpleNamespace) -> None:
    summary, _, [strategy] = run(setup, FakeLoad(fail={3}))
    assert summary.failed == 1
    failed = [r for r in Store(setup.db).results("m") if not r.measurement.ok]
    assert len(failed) == 1 and "synthetic failure" in (failed[0].measurement.error or "")


def test_first_two_failures_abort_with_the_reason(setup: SimpleNamespace) -> None:
    with pytest.raises(ModelyzerError, match="synthetic failure"):
        run(setup, FakeLoad(fail={1, 2}))
    assert Store(setup.db).counts()["measurements"] == 2


def test_failed_runconfigs_stay_skipped_and_are_counted_without_retry_failed(setup: SimpleNamespace) -> None:
    run(setup, FakeLoad(fail={3}))
    load = FakeLoad()
    summary, _, [strategy] = run(setup, load)
    assert (load.calls, summary.skipped, summary.skipped_failed, summary.retried) == (0, 6, 1, 0)
    assert [r.measurement.ok for r in strategy.observed].count(False) == 1


def test_retry_failed_measures_failed_runconfigs_again_and_the_strategy_sees_the_new_result(
        setup: SimpleNamespace) -> None:
    run(setup, FakeLoad(fail={3}))
    [failed] = Store(setup.db).failed_keys()
    setup.config.retry_failed = True
    load = FakeLoad()
    summary, _, [strategy] = run(setup, load)
    assert (load.calls, summary.measured, summary.retried, summary.skipped, summary.skipped_failed) == (1, 1, 1, 5, 0)
    assert all(r.measurement.ok for r in strategy.observed) and len(strategy.observed) == 6
    store = Store(setup.db)
    assert store.counts()["measurements"] == 6 and store.failed_keys() == set()
    assert store.measurement(failed) is not None and store.measurement(failed).ok  # type: ignore[union-attr]
    assert [r.run_config.key for r in store.results(run_id=summary.run_id)] == [failed]
    again = FakeLoad()
    summary, _, _ = run(setup, again)  # nothing failed any more: a plain resume
    assert (again.calls, summary.retried, summary.skipped) == (0, 0, 6)


class _Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    from modelyzer.kernel.hookspecs import hookimpl as _hookimpl

    @_hookimpl
    def run_started(self, run_id: int, config: Any) -> None:
        self.seen.append(("run_started", run_id))

    @_hookimpl
    def measurement_recorded(self, run_config: RunConfig, measurement: Any) -> None:
        self.seen.append(("measurement_recorded", run_config.key))

    @_hookimpl
    def run_finished(self, run_id: int, status: str) -> None:
        self.seen.append(("run_finished", status))

    @_hookimpl
    def agent_joined(self, agent: Any) -> None:
        self.seen.append(("agent_joined", agent))

    @_hookimpl
    def agent_lost(self, agent: Any) -> None:
        self.seen.append(("agent_lost", agent))


def test_event_hooks_are_broadcast(setup: SimpleNamespace, register_plugin: Any) -> None:
    from modelyzer.kernel import hooks

    events = _Events()
    register_plugin(events, "events")
    run(setup, FakeLoad())
    kinds = [k for k, _ in events.seen]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("measurement_recorded") == 6
    assert events.seen[-1] == ("run_finished", "finished")
    hooks.agent_joined("a1")
    hooks.agent_lost("a1")
    assert events.seen[-2:] == [("agent_joined", "a1"), ("agent_lost", "a1")]


def test_load_generator_gpu_values_win_over_collectors() -> None:
    from modelyzer.plugins.executors.local import prefer_load_generator

    mixed = [Metric("perf_throughput", 1.0), Metric("gpu_used_memory", 10.0, "GPU-0"),
             Metric("gpu_used_memory", 99.0, "GPU-0"), Metric("gpu_used_memory", 5.0, "GPU-1"), Metric("cpu_used_ram", 3.0)]
    kept = prefer_load_generator(mixed, 2)
    assert kept == [mixed[0], mixed[1], mixed[3], mixed[4]]


class WorkloadLoad(FakeLoad):
    """Throughput falls with the workload's input length, as an LLM's does."""

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        tokens = int(run_config.load.workload.get("input_tokens", 1))
        return [Metric(m.tag, m.value / tokens if m.tag == "perf_throughput" else m.value)
                for m in super().measure(run_config, endpoints)]


def test_each_proposal_is_measured_under_every_workload_and_the_strategy_sees_the_reference(
        setup: SimpleNamespace) -> None:
    workloads = [{"input_tokens": 1}, {"input_tokens": 4}]
    load = WorkloadLoad()
    summary, _, [strategy] = run(setup, load, workloads=workloads)
    assert summary.measured == 12 and load.calls == 12  # 6 proposals × 2 workloads
    results = Store(setup.db).results("m")
    assert sorted(dict(r.run_config.load.workload)["input_tokens"] for r in results) == [1] * 6 + [4] * 6
    assert len({r.run_config.key for r in results}) == 12
    # the strategy's own RunConfigs, with the reference workload's measurements
    assert len(strategy.observed) == 6 and all(not r.run_config.load.workload for r in strategy.observed)
    assert {r.measurement.values()["perf_throughput"] for r in strategy.observed} == {
        r.measurement.values()["perf_throughput"] for r in results if r.run_config.load.workload["input_tokens"] == 1}
    assert "input_tokens 4" in results[-1].run_config.load.describe()
    again = WorkloadLoad()
    summary, _, _ = run(setup, again, workloads=workloads)
    assert again.calls == 0 and summary.skipped == 12  # resumed under both workloads
    longer = WorkloadLoad()
    run(setup, longer, workloads=[{"input_tokens": 8}])
    assert longer.calls == 6  # a new workload is new measurements, never a stale resume


def test_a_load_without_workload_keeps_its_key() -> None:
    rc = RunConfig("m", ConfigVariant("m", {"name": "m"}), LoadSpec(concurrency=2))
    assert rc.load_key() == {"batch_size": 1, "concurrency": 2, "request_rate": None, "request_intervals": None}


class TwoSchedulers(ListStrategy):
    """Proposes a variant no codec can write (two scheduling choices), then a valid one."""

    def __init__(self, spec: ModelSpec, base: dict[str, Any], config: Any) -> None:
        super().__init__(spec, base, config)
        bad = dict(base, dynamic_batching={}, sequence_batching={})
        self.todo = [RunConfig(spec.name, ConfigVariant(spec.name, bad), LoadSpec(concurrency=1)), self.todo[0]]


def test_a_variant_that_cannot_be_written_fails_alone(setup: SimpleNamespace) -> None:
    executor = InProcessExecutor(setup.config, setup.context, FakeLauncher(), FakeLoad(), [], make_codec())
    engine = Engine(setup.config, Store(setup.db), executor, make_codec(), TwoSchedulers, Progress(quiet=True))
    summary = engine.run()
    assert (summary.measured, summary.failed, summary.status) == (2, 1, "finished")
    [failed] = [r for r in Store(setup.db).results("m") if not r.measurement.ok]
    assert failed.measurement.error.startswith("variant not written: invalid model config for model 'm'")


class RetryingLoad(FakeLoad):
    """Every measurement keeps 10 µs of windows after 20 µs of thrown-away attempts; the 2nd one fails."""

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        self.last_window_seconds, self.last_retry_seconds = 1e-5, 2e-5
        return super().measure(run_config, endpoints)


def test_window_and_retry_time_are_stored_per_measurement_and_per_run(setup: SimpleNamespace) -> None:
    summary, _, _ = run(setup, RetryingLoad(fail={2}))
    store = Store(setup.db)
    stored = [r.measurement for r in store.results("m")]
    assert [m.retry_seconds for m in stored] == [2e-5] * 6  # the failed one's attempts are retries too
    assert sorted(m.window_seconds for m in stored) == [0.0] + [1e-5] * 5
    assert summary.retry_seconds == pytest.approx(12e-5) and summary.window_seconds == pytest.approx(5e-5)
    row = store.run(summary.run_id)
    assert row is not None and row.retry_seconds == pytest.approx(12e-5) and row.wall_seconds == summary.wall_seconds
    measuring, retries, tool = summary.duty()
    assert measuring == pytest.approx(5e-5 / summary.wall_seconds) and retries == pytest.approx(12e-5 / summary.wall_seconds)
    assert measuring + retries + tool == pytest.approx(1.0)


def test_the_duty_figure_is_per_slot_and_names_its_parts() -> None:
    from modelyzer.kernel.engine import ProfileSummary

    one = ProfileSummary(1, wall_seconds=100.0, window_seconds=71.0, retry_seconds=24.0)
    assert one.duty_text() == "measuring 71%, retries 24%, tool 5%"
    four = ProfileSummary(1, wall_seconds=100.0, window_seconds=320.0, retry_seconds=0.0, slots=4)
    assert four.duty() == pytest.approx((0.8, 0.0, 0.2))
    assert ProfileSummary(1).duty() == (0.0, 0.0, 0.0)


class NoisyLoad(FakeLoad):
    """Throughputs 1000 (max_batch_size 8, the default), 990 and 980, each measured to ±5%: all three tied."""

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        self.calls += 1
        tput = {8: 1000.0, 1: 990.0, 2: 980.0}[run_config.variant.max_batch_size]
        return [Metric("perf_throughput", tput + self.calls), Metric("perf_throughput_ci", 5.0),
                Metric("measurement_windows", 3.0)]


def test_confirm_top_measures_the_tied_leaders_again_and_pools_them_once(setup: SimpleNamespace) -> None:
    from modelyzer.kernel.models import Objective

    spec = ModelSpec("m", model_path=setup.config.models[0].model_path, objectives=(Objective("perf_throughput", 1),))
    setup.config.models = (spec,)
    setup.config.confirm_top = 2
    load = NoisyLoad()
    summary, _, _ = run(setup, load)
    assert load.calls == 6 + 2 and summary.measured == 8  # the six RunConfigs, then the two cheapest tied leaders
    store = Store(setup.db)
    confirmed = [r for r in store.results("m") if "confirmations" in r.measurement.values()]
    assert len(confirmed) == 2 and store.counts()["measurements"] == 6  # pooled in place: one row per key
    for r in confirmed:
        values = r.measurement.values()
        assert values["perf_throughput_ci"] == pytest.approx((5.0**2 + 5.0**2) ** 0.5 / 2)
        assert values["measurement_windows"] == 6.0 and values["confirmations"] == 1.0
    again = NoisyLoad()
    run(setup, again)
    assert again.calls == 0  # confirmed once: a rerun does not pool again
