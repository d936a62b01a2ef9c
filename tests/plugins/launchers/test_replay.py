"""The replay launcher/load generator: recorded metrics by variant config and load, `not_recorded` otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelyzer.frontends.cli.main import cli
from modelyzer.kernel import assembly
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.errors import ConfigError, LoadGeneratorError
from modelyzer.kernel.gpus import discover_gpus
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import (
    STATUS_FAILED,
    STATUS_NOT_RECORDED,
    ConfigVariant,
    Endpoints,
    LoadSpec,
    Measurement,
    Metric,
    RunConfig,
)
from modelyzer.kernel.store import Store
from modelyzer.plugins.launchers.replay import (
    NotRecorded,
    Recording,
    ReplayLauncher,
    ReplayLoadGenerator,
    replay_key,
)
from tests.plugins.importers.test_ma_checkpoint import ORACLES, oracle

BASE = {"name": "m", "platform": "onnxruntime_onnx", "max_batch_size": 2,
        "input": [{"name": "X", "data_type": "TYPE_FP32", "dims": [4]}]}
CPU_1 = {**BASE, "max_batch_size": 1, "instance_group": [{"count": 1, "kind": "KIND_CPU"}], "dynamic_batching": {}}
BASE_PBTXT = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 2\ninput {\n  name: "X"\n  data_type: TYPE_FP32\n  dims: 4\n}\n'


def record(store: Store, run_id: int, config: dict[str, Any], load: LoadSpec, status: str = "ok",
           default: bool = False, **values: float) -> RunConfig:
    variant = store.name_variant(ConfigVariant("m", config, is_default=default))
    rc = RunConfig("m", variant, load)
    metrics = tuple(Metric(tag, value) for tag, value in values.items())
    store.record(run_id, rc, Measurement(rc.key, status=status, metrics=metrics, error="boom" if status != "ok" else None))
    return rc


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A recorded CPU-only surface of model `m`: the default config and one KIND_CPU variant."""
    path = tmp_path / "recorded.db"
    store = Store(path)
    run_id = store.start_run({})
    store.upsert_model("m", BASE, {})
    record(store, run_id, BASE, LoadSpec(concurrency=1), default=True, perf_throughput=10.0, perf_latency_p99=2.0)
    record(store, run_id, BASE, LoadSpec(concurrency=2), default=True, perf_throughput=18.0, perf_latency_p99=3.0)
    record(store, run_id, CPU_1, LoadSpec(concurrency=1), perf_throughput=12.0, perf_latency_p99=1.0)
    record(store, run_id, CPU_1, LoadSpec(concurrency=2), status=STATUS_FAILED)
    store.close()
    return path


def replay_config(tmp_path: Path, db: Path | None, **extra: Any) -> ProfileConfig:
    values = {"profile_models": "m", "triton_launch_mode": "replay", "export_path": str(tmp_path), **extra}
    if db is not None:
        values["replay_results_db"] = str(db)
    return config_from_dict(values, check_paths=False)


def context(tmp_path: Path) -> RunContext:
    return RunContext(export_path=tmp_path, output_model_repository=tmp_path / "omr")


def run_config(config: dict[str, Any], load: LoadSpec, name: str = "") -> RunConfig:
    return RunConfig("m", ConfigVariant("m", config, name=name), load)


# --- load generator and launcher --------------------------------------------------------------------------
def test_recorded_metrics_match_by_normalized_config_not_by_name(tmp_path: Path, recording: Path) -> None:
    slept: list[float] = []
    loadgen = ReplayLoadGenerator(replay_config(tmp_path, recording, replay_duration=0.25), context(tmp_path),
                                  sleep=slept.append)
    camel = {"name": "other", "platform": "onnxruntime_onnx", "maxBatchSize": 1, "_private": 1,
             "input": [{"name": "X", "dataType": "TYPE_FP32", "dims": ["4"]}],
             "instanceGroup": [{"count": "1", "kind": "KIND_CPU"}], "dynamicBatching": {}}
    metrics = loadgen.measure(run_config(camel, LoadSpec(concurrency=1), name="m_config_42"), Endpoints())
    assert {m.tag: m.value for m in metrics} == {"perf_throughput": 12.0, "perf_latency_p99": 1.0}
    assert slept == [0.25] and loadgen.last_window_seconds == 0.25
    assert replay_key(run_config(camel, LoadSpec(concurrency=1))) == replay_key(run_config(CPU_1, LoadSpec(concurrency=1)))


def test_unrecorded_load_or_config_is_not_recorded(tmp_path: Path, recording: Path) -> None:
    loadgen = ReplayLoadGenerator(replay_config(tmp_path, recording), context(tmp_path), sleep=lambda s: None)
    for rc in (run_config(BASE, LoadSpec(concurrency=4)), run_config(BASE, LoadSpec(batch_size=2, concurrency=1)),
               run_config({**BASE, "max_batch_size": 8}, LoadSpec(concurrency=1)),
               run_config(BASE, LoadSpec(request_rate=1))):
        with pytest.raises(NotRecorded, match="not recorded in") as info:
            loadgen.measure(rc, Endpoints())
        assert info.value.status == STATUS_NOT_RECORDED


# --- matching by the knobs a search varies --------------------------------------------------------------------
GPU_1 = {**BASE, "instance_group": [{"count": 1, "kind": "KIND_GPU"}]}  # no dynamic_batching block
DB_QUEUE = {"dynamic_batching": {"max_queue_delay_microseconds": 100}}


def recorded_db(path: Path, *variants: tuple[dict[str, Any], int, float]) -> Path:
    store = Store(path)
    run_id = store.start_run({})
    store.upsert_model("m", BASE, {})
    for config, concurrency, throughput in variants:
        record(store, run_id, config, LoadSpec(concurrency=concurrency), perf_throughput=throughput)
    store.close()
    return path


@pytest.fixture
def knobbed(tmp_path: Path) -> Path:
    """Variants recorded without the dynamic_batching block every strategy adds (as some checkpoints are)."""
    return recorded_db(tmp_path / "knobbed.db", (GPU_1, 1, 20.0), (GPU_1, 4, 40.0),
                       ({**GPU_1, "max_batch_size": 4}, 1, 30.0))


@pytest.fixture
def queued(tmp_path: Path) -> Path:
    """The same knobs recorded without dynamic batching and with two queue delays."""
    return recorded_db(tmp_path / "queued.db", (GPU_1, 1, 20.0), ({**GPU_1, **DB_QUEUE}, 1, 25.0),
                       ({**GPU_1, "dynamic_batching": {"max_queue_delay_microseconds": 500}}, 1, 26.0))


def values(measurement: Measurement | None) -> dict[str, float]:
    assert measurement is not None
    return measurement.values()


def test_a_variant_recorded_without_the_dynamic_batching_block_answers_by_its_knobs(knobbed: Path) -> None:
    recording = Recording(knobbed)
    searched = {**GPU_1, "dynamic_batching": {}}  # what brute/quick/optuna make of the same knobs
    assert values(recording.lookup(run_config(searched, LoadSpec(concurrency=1)))) == {"perf_throughput": 20.0}
    assert values(recording.lookup(run_config({**GPU_1, "max_batch_size": 4, "dynamic_batching": {}},
                                              LoadSpec(concurrency=1)))) == {"perf_throughput": 30.0}
    assert values(recording.lookup(run_config({**GPU_1, **DB_QUEUE}, LoadSpec(concurrency=1)))) == {
        "perf_throughput": 20.0}  # the recording never varied dynamic batching: any queue delay is its own


def test_a_recording_that_varies_dynamic_batching_matches_it_too(queued: Path) -> None:
    recording = Recording(queued)
    # the exact config first; dynamic batching on or off is a knob here
    assert values(recording.lookup(run_config({**GPU_1, **DB_QUEUE}, LoadSpec(concurrency=1)))) == {
        "perf_throughput": 25.0}
    assert values(recording.lookup(run_config({**GPU_1, "parameters": {"x": {"string_value": "1"}}},
                                              LoadSpec(concurrency=1)))) == {"perf_throughput": 20.0}
    # the closest of the recorded queue delays: the one that agrees on every value both set
    closer = {**GPU_1, "dynamic_batching": {"max_queue_delay_microseconds": 100, "preserve_ordering": True}}
    assert values(recording.lookup(run_config(closer, LoadSpec(concurrency=1)))) == {"perf_throughput": 25.0}
    # equally close (a value on one side only): the first recorded, said once in the log
    assert values(recording.lookup(run_config({**GPU_1, "dynamic_batching": {}}, LoadSpec(concurrency=1)))) == {
        "perf_throughput": 25.0}
    assert recording.lookup(run_config({**GPU_1, "dynamic_batching": {"max_queue_delay_microseconds": 7}},
                                       LoadSpec(concurrency=1))) is None


def test_knobs_that_differ_are_never_matched(knobbed: Path) -> None:
    recording = Recording(knobbed)
    for config in ({**GPU_1, "instance_group": [{"count": 2, "kind": "KIND_GPU"}]},
                   {**GPU_1, "instance_group": [{"count": 1, "kind": "KIND_CPU"}]},
                   {**GPU_1, "max_batch_size": 8, "dynamic_batching": {}},
                   {**GPU_1, "platform": "tensorrt_plan"}):  # a value both set differs
        assert recording.lookup(run_config(config, LoadSpec(concurrency=1))) is None, config
        assert recording.recorded_loads(run_config(config, LoadSpec(concurrency=1))) == ()
    assert recording.lookup(run_config({**GPU_1, "dynamic_batching": {}}, LoadSpec(concurrency=2))) is None


def test_the_recorded_loads_of_a_variant(tmp_path: Path, knobbed: Path) -> None:
    recording = Recording(knobbed)
    searched = run_config({**GPU_1, "dynamic_batching": {}}, LoadSpec(concurrency=64))
    assert recording.recorded_loads(searched) == (1, 4)
    assert recording.recorded_loads(run_config(GPU_1, LoadSpec(batch_size=2, concurrency=1))) == ()
    assert recording.recorded_loads(run_config(GPU_1, LoadSpec(request_rate=8))) == ()
    loadgen = ReplayLoadGenerator(replay_config(tmp_path, knobbed), context(tmp_path))
    assert loadgen.recorded_loads(searched) == (1, 4)
    # the kernel hands the loads of a launcher's own load generator to every strategy it builds
    config = replay_config(tmp_path, knobbed, run_config_search_mode="brute")
    loads = assembly.recorded_loads(config, context(tmp_path))
    assert loads is not None and loads(searched) == (1, 4)
    strategy = assembly.strategy_factory(config, loads)(config.models[0], BASE, config)
    assert strategy.recorded_loads is loads
    assert assembly.recorded_loads(config_from_dict({"profile_models": "m"}, check_paths=False),
                                   context(tmp_path)) is None  # a live server answers any load


def test_a_recorded_failure_replays_as_a_failure(tmp_path: Path, recording: Path) -> None:
    loadgen = ReplayLoadGenerator(replay_config(tmp_path, recording), context(tmp_path), sleep=lambda s: None)
    with pytest.raises(LoadGeneratorError, match="recorded failed: boom") as info:
        loadgen.measure(run_config(CPU_1, LoadSpec(concurrency=2)), Endpoints())
    assert info.value.status == STATUS_FAILED


def test_launcher_checks_the_recording_and_counts_loads(tmp_path: Path, recording: Path) -> None:
    launcher = ReplayLauncher(replay_config(tmp_path, recording), context(tmp_path))
    launcher.start()
    assert not launcher.writes_full_variant_dirs()
    for config in (BASE, BASE, CPU_1, BASE):
        endpoints = launcher.ensure(ConfigVariant("m", config), tmp_path, run_config(config, LoadSpec(concurrency=1)))
        assert endpoints.model_name == "m"
    assert (launcher.server_starts, launcher.model_loads) == (0, 3)
    launcher.stop()


@pytest.mark.parametrize(
    ("db", "extra", "needle"),
    [
        (None, {}, "replay_results_db: required"),
        ("missing.db", {}, "does not exist"),
        ("notadb.db", {}, "is not a modelyzer results DB"),
        ("recorded", {"replay_duration": -1}, "replay_duration: must be a number >= 0"),
    ],
)
def test_launcher_errors_name_the_key(tmp_path: Path, recording: Path, db: str | None, extra: dict[str, Any],
                                      needle: str) -> None:
    (tmp_path / "notadb.db").write_text("hello, not sqlite" * 100)
    path = None if db is None else (recording if db == "recorded" else tmp_path / db)
    with pytest.raises(ConfigError, match=needle):
        ReplayLauncher(replay_config(tmp_path, path, **extra), context(tmp_path)).start()


def test_recorded_gpus_become_the_profiles_gpus_only_in_replay_mode(tmp_path: Path) -> None:
    db = tmp_path / "gpu.db"
    store = Store(db)
    store.record_gpu("GPU-a", "Big GPU", 25387401216)  # bytes (imported checkpoint)
    store.record_gpu("GPU-b", "Small GPU", 16_000_000_000)  # bytes, as modelyzer records it too
    store.close()
    config, ctx = replay_config(tmp_path, db), context(tmp_path)
    launcher = ReplayLauncher(config, ctx)
    devices = launcher.devices()
    assert [(d.uuid, d.index, d.total_memory_mb) for d in devices] == [("GPU-a", 0, 25387), ("GPU-b", 1, 16000)]
    # the kernel's GPU discovery takes the launcher's recorded GPUs, not what this host's collectors see
    assert discover_gpus(config, ctx, launcher) == devices and ctx.gpu_uuids == ["GPU-a", "GPU-b"]
    # it brings its own load generator, so no live collector runs, and nothing is sampled without a model
    assert isinstance(launcher.load_generator(), ReplayLoadGenerator)
    assert assembly.collectors(config, ctx, launcher) == [] and not launcher.server_only_window
    local = config_from_dict({"profile_models": "m", "replay_results_db": str(db)}, check_paths=False)
    assert not any(d.uuid.startswith("GPU-") for d in discover_gpus(local, context(tmp_path)))


# --- whole profiles ---------------------------------------------------------------------------------------
def profile(tmp_path: Path, repo: Path, db: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, [
        "profile", "-m", str(repo), "--profile-models", args[0], "--triton-launch-mode", "replay",
        "--replay-results-db", str(db), "-e", str(tmp_path / "out"),
        "--output-model-repository-path", str(tmp_path / "omr"), "--skip-summary-reports", "--skip-detailed-reports",
        *args[1:],
    ])


def test_profile_replays_a_cpu_only_recording(tmp_path: Path, recording: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "m").mkdir(parents=True)
    (repo / "m" / "config.pbtxt").write_text(BASE_PBTXT)
    result = profile(tmp_path, repo, recording, "m", "-c", "1,2", "--run-config-search-max-instance-count", "1",
                     "--run-config-search-max-model-batch-size", "1")
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "out" / "results.db")
    statuses = {(r.run_config.variant.config.get("instance_group") is None, r.run_config.load.concurrency):
                r.measurement.status for r in store.results("m")}
    assert statuses == {(True, 1): "ok", (True, 2): "ok", (False, 1): "ok", (False, 2): "failed"}
    assert store.gpus() == []
    assert "m_config_0" in result.output and "12.0" in result.output


def test_profile_replays_an_imported_checkpoint_with_brute(tmp_path: Path) -> None:
    ckpt = oracle("single-model-ckpt")
    recorded, repo = tmp_path / "recorded.db", tmp_path / "repo"
    imported = CliRunner().invoke(cli, ["import-ma-checkpoint", str(ckpt), "--results-db", str(recorded),
                                        "--model-repository", str(repo)])
    assert imported.exit_code == 0, imported.output
    result = profile(tmp_path, repo, recorded, "add_sub", "-b", "1,2", "-c", "1,2",
                     "--run-config-search-max-concurrency", "2", "--run-config-search-max-instance-count", "2",
                     "--run-config-search-max-model-batch-size", "2", "--replay-duration", "0.01")
    assert result.exit_code == 0, result.output
    source = {replay_key(r.run_config): r for r in Store(recorded).results("add_sub")}
    replayed = Store(tmp_path / "out" / "results.db").results("add_sub")
    assert len(replayed) == 16 and all(r.measurement.ok for r in replayed)
    for r in replayed:
        original = source[replay_key(r.run_config)]
        assert r.measurement.metrics == original.measurement.metrics
        assert r.run_config.variant.name == original.run_config.variant.name
    golden = (ORACLES / "single-model-ckpt" / "golden-metrics-model-inference.csv").read_text()
    written = (tmp_path / "out" / "results" / "metrics-model-inference.csv").read_text()
    assert written == golden.removesuffix("\n")  # MA's file ends with a blank line; a live run's does not


def test_profile_marks_unrecorded_loads_not_recorded(tmp_path: Path) -> None:
    ckpt = oracle("single-model-ckpt")
    recorded, repo = tmp_path / "recorded.db", tmp_path / "repo"
    CliRunner().invoke(cli, ["import-ma-checkpoint", str(ckpt), "--results-db", str(recorded),
                             "--model-repository", str(repo)])
    result = profile(tmp_path, repo, recorded, "add_sub", "-c", "1,4", "--run-config-search-max-instance-count", "1",
                     "--run-config-search-max-model-batch-size", "1")
    assert result.exit_code == 0, result.output
    results = Store(tmp_path / "out" / "results.db").results("add_sub")
    by_load = {(r.run_config.variant.name, r.run_config.load.concurrency): r.measurement for r in results}
    assert by_load[("add_sub_config_default", 1)].ok
    missing = by_load[("add_sub_config_default", 4)]
    assert missing.status == STATUS_NOT_RECORDED and "not recorded in" in (missing.error or "")
    rows = (tmp_path / "out" / "results" / "metrics-model-inference.csv").read_text().splitlines()[1:]
    assert rows and all(row.split(",")[2] == "1" for row in rows)  # only the recorded concurrency is reported


def without_dynamic_batching(value: Any) -> Any:
    """A checkpoint's JSON with every model config's `dynamicBatching` block removed."""
    if isinstance(value, dict):
        return {k: without_dynamic_batching(v) for k, v in value.items() if k != "dynamicBatching"}
    if isinstance(value, list):
        return [without_dynamic_batching(v) for v in value]
    return value


@pytest.mark.parametrize("mode", ["brute", "quick"])
@pytest.mark.parametrize("strip", [True, False], ids=["without-dynamic-batching", "as-recorded"])
def test_profile_searches_an_imported_checkpoint(tmp_path: Path, mode: str, strip: bool) -> None:
    """`import-ma-checkpoint` then `profile --triton-launch-mode replay` with brute and quick: every measurement
    answered, also when Model Analyzer's variants lack the dynamic_batching block every strategy adds (by knobs)."""
    original = json.loads(oracle("single-model-ckpt").read_text())
    ckpt = tmp_path / "ckpt" / "0.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_text(json.dumps(without_dynamic_batching(original) if strip else original))
    recorded, repo = tmp_path / "recorded.db", tmp_path / "repo"
    imported = CliRunner().invoke(cli, ["import-ma-checkpoint", str(ckpt), "--results-db", str(recorded),
                                        "--model-repository", str(repo)])
    assert imported.exit_code == 0, imported.output
    source = Store(recorded)
    assert any("dynamic_batching" in v.config for v in source.variants("add_sub")) is not strip
    by_knobs = {(r.run_config.variant.instance_count, r.run_config.variant.max_batch_size,
                 r.run_config.variant.is_default, r.run_config.load.batch_size, r.run_config.load.concurrency):
                r.measurement.metrics for r in source.results("add_sub")}
    source.close()
    batch = ["-b", "1,2"] if mode == "brute" else []  # quick chooses the client batch size (1)
    result = profile(tmp_path, repo, recorded, "add_sub", *batch, "--run-config-search-max-concurrency", "2",
                     "--run-config-search-max-instance-count", "2", "--run-config-search-max-model-batch-size", "2",
                     "--run-config-search-mode", mode)
    assert result.exit_code == 0, result.output
    replayed = Store(tmp_path / "out" / "results.db").results("add_sub")
    searched = [r for r in replayed if not r.run_config.variant.is_default]
    assert {(r.run_config.variant.instance_count, r.run_config.variant.max_batch_size) for r in searched} == (
        {(1, 1), (1, 2), (2, 1), (2, 2)} if mode == "brute" else {(1, 1), (1, 2), (2, 1), (2, 2)} & {
            (r.run_config.variant.instance_count, r.run_config.variant.max_batch_size) for r in searched})
    assert searched and all("dynamic_batching" in r.run_config.variant.config for r in searched)
    assert all(r.measurement.ok for r in replayed), [(r.run_config.describe(), r.measurement.status) for r in replayed]
    assert len(replayed) >= (16 if mode == "brute" else 4)
    for r in replayed:
        variant, load = r.run_config.variant, r.run_config.load
        key = (variant.instance_count, variant.max_batch_size, variant.is_default, load.batch_size, load.concurrency)
        assert r.measurement.metrics == by_knobs[key]
