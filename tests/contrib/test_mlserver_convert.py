"""Unit tests of the mlserver plugin's pure parts: Triton → MLServer settings, the hand-written Triton gRPC
wire encoding (checked against tritonclient's real protos), the statistics arithmetic, executable lookup."""

from __future__ import annotations

import base64
import importlib.metadata
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from modelyzer_mlserver import convert, server
from modelyzer_mlserver.runtime import wire
from modelyzer_mlserver.runtime.stats import ModelStats, StatsRegistry, Timing

from modelyzer.kernel.errors import LaunchError, ModelLoadError

BASE: dict[str, Any] = {
    "name": "add_sub",
    "platform": "onnxruntime_onnx",
    "max_batch_size": 8,
    "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [16]}],
    "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [16]}],
    "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
}


def cfg(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


# --- batching and workers ---------------------------------------------------------------------------------
def test_no_dynamic_batching_means_no_adaptive_batching() -> None:
    assert convert.adaptive_batching(cfg()) is None


def test_dynamic_batching_maps_delay_and_size() -> None:
    batching = convert.adaptive_batching(cfg(dynamic_batching={"max_queue_delay_microseconds": 500}))
    assert batching == convert.Batching(max_batch_size=8, max_batch_time=0.0005)


def test_zero_delay_becomes_one_microsecond_because_mlserver_turns_batching_off_at_zero() -> None:
    batching = convert.adaptive_batching(cfg(dynamic_batching={}))
    assert batching is not None and batching.max_batch_time == pytest.approx(1e-6)


def test_request_limit_divides_by_client_batch_size() -> None:
    dyn = cfg(dynamic_batching={"max_queue_delay_microseconds": 100})
    assert convert.adaptive_batching(dyn, client_batch_size=4) == convert.Batching(2, 0.0001)
    assert convert.adaptive_batching(dyn, client_batch_size=8) is None  # one request per batch: off
    assert convert.adaptive_batching(cfg(max_batch_size=0, dynamic_batching={})) is None


@pytest.mark.parametrize(
    ("groups", "workers"),
    [
        (None, 0),
        ([{"count": 1}], 0),
        ([{"count": 2, "kind": "KIND_CPU"}], 2),
        ([{"count": 2}, {"count": 1}], 3),
    ],
)
def test_instance_count_maps_to_parallel_workers(groups: Any, workers: int) -> None:
    config = (
        cfg(instance_group=groups)
        if groups is not None
        else {k: v for k, v in BASE.items() if k != "instance_group"}
    )
    assert convert.parallel_workers(config) == workers


def test_thread_counts_from_triton_backend_parameters() -> None:
    assert convert.thread_counts(cfg()) == {"intra_op_thread_count": 1, "inter_op_thread_count": 0}
    params = {"intra_op_thread_count": {"string_value": "2"}, "inter_op_thread_count": {"string_value": "1"}}
    assert convert.thread_counts(cfg(parameters=params)) == {
        "intra_op_thread_count": 2,
        "inter_op_thread_count": 1,
    }
    with pytest.raises(ModelLoadError, match="intra_op_thread_count"):
        convert.thread_counts(cfg(parameters={"intra_op_thread_count": {"string_value": "many"}}))


# --- model folder -----------------------------------------------------------------------------------------
def test_find_model_file_takes_highest_version(tmp_path: Path) -> None:
    for version in ("1", "3", "10"):
        (tmp_path / version).mkdir()
    (tmp_path / "1" / "model.onnx").write_bytes(b"x")
    (tmp_path / "3" / "model.onnx").write_bytes(b"x")
    path, version = convert.find_model_file(tmp_path, cfg())
    assert version == "3" and path == (tmp_path / "3" / "model.onnx").resolve()


def test_find_model_file_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no <version>/model.onnx"):
        convert.find_model_file(tmp_path, cfg())
    with pytest.raises(ModelLoadError, match="ONNX models only"):
        convert.find_model_file(tmp_path, cfg(platform="tensorflow_savedmodel"))


# --- what is served ---------------------------------------------------------------------------------------
def test_triton_config_payload_round_trips_through_tritonclient_protos() -> None:
    from tritonclient.grpc import model_config_pb2

    config = cfg(
        name="add_sub_config_3", dynamic_batching={"max_queue_delay_microseconds": 100}, _cpu_only=True
    )
    as_json, pb64 = convert.triton_config_payload(config, "add_sub")
    message = model_config_pb2.ModelConfig.FromString(base64.b64decode(pb64))
    assert message.name == "add_sub" and message.max_batch_size == 8
    assert message.dynamic_batching.max_queue_delay_microseconds == 100
    assert as_json["name"] == "add_sub"
    assert as_json["input"][0]["dims"] == [16]  # numbers, not protobuf-JSON strings
    assert as_json["dynamic_batching"]["max_queue_delay_microseconds"] == 100
    assert "_cpu_only" not in as_json


def test_model_settings(tmp_path: Path) -> None:
    settings = convert.model_settings(
        "add_sub", cfg(dynamic_batching={"max_queue_delay_microseconds": 2000}), tmp_path / "m.onnx", "1"
    )
    assert settings["name"] == "add_sub" and settings["implementation"] == convert.IMPLEMENTATION
    assert settings["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 16]}]
    assert (settings["max_batch_size"], settings["max_batch_time"]) == (8, 0.002)
    assert convert.adaptive_batching_of(settings) == convert.Batching(8, 0.002)
    extra = settings["parameters"]["extra"]
    assert extra["triton_version"] == "1" and extra["triton_config"]["name"] == "add_sub"
    unbatched = convert.model_settings("add_sub", cfg(max_batch_size=0), tmp_path / "m.onnx", "1")
    assert "max_batch_size" not in unbatched and unbatched["inputs"][0]["shape"] == [16]
    assert convert.adaptive_batching_of(unbatched) is None


def test_server_settings(tmp_path: Path) -> None:
    settings = convert.server_settings(1, 2, 3, 0, tmp_path)
    assert (settings["http_port"], settings["grpc_port"], settings["metrics_port"]) == (1, 2, 3)
    assert settings["parallel_workers"] == 0 and settings["debug"] is False
    assert settings["load_models_at_startup"] is False
    assert {"statistics", "model_configuration"} <= set(settings["extensions"])


# --- wire encoding against tritonclient's protos -----------------------------------------------------------
def test_request_decoding_matches_tritonclient() -> None:
    from tritonclient.grpc import service_pb2

    raw = service_pb2.ModelStatisticsRequest(name="add_sub", version="1").SerializeToString()
    assert wire.decode_name_version(raw) == ("add_sub", "1")
    assert wire.decode_name_version(service_pb2.ModelConfigRequest().SerializeToString()) == ("", "")


def test_model_config_response_matches_tritonclient() -> None:
    from tritonclient.grpc import model_config_pb2, service_pb2

    config = model_config_pb2.ModelConfig(name="m", max_batch_size=4).SerializeToString()
    parsed = service_pb2.ModelConfigResponse.FromString(wire.encode_model_config_response(config))
    assert parsed.config.name == "m" and parsed.config.max_batch_size == 4


def test_statistics_response_matches_tritonclient() -> None:
    from tritonclient.grpc import service_pb2

    stats = ModelStats(name="add_sub", version="1")
    stats.record_success(1000, 2, Timing(100, 200, 50, "b1", 3), decode_ns=10, encode_ns=20)
    stats.record_success(900, 1, Timing(100, 200, 50, "b1", 3))
    stats.record_failure(70)
    parsed = service_pb2.ModelStatisticsResponse.FromString(
        wire.encode_statistics_response([stats.to_json()])
    )
    (model,) = parsed.model_stats
    assert (model.name, model.version, model.inference_count, model.execution_count) == ("add_sub", "1", 3, 1)
    infer = model.inference_stats
    assert (infer.success.count, infer.success.ns) == (2, 1900)
    assert (infer.compute_input.ns, infer.compute_infer.ns, infer.compute_output.ns) == (210, 400, 120)
    assert infer.queue.ns == 1900 - 210 - 400 - 120
    assert (infer.fail.count, infer.fail.ns) == (1, 70)
    assert [(b.batch_size, b.compute_infer.count, b.compute_infer.ns) for b in model.batch_stats] == [
        (3, 1, 200)
    ]
    assert model.last_inference > 0


def test_large_and_negative_varints() -> None:
    big = 2**40 + 5
    assert wire.parse_fields(wire.uint_field(3, big)) == {3: [big]}
    assert wire.parse_fields(wire.uint_field(1, -1)) == {1: [2**64 - 1]}


def test_stats_without_runtime_timing_and_registry() -> None:
    registry = StatsRegistry()
    registry.get("m").record_success(500, 1, None)
    (only,) = registry.to_json(["m"])
    assert only["execution_count"] == 1 and only["inference_stats"]["queue"]["ns"] == 500
    assert Timing.decode("garbage") is None
    assert Timing.decode(Timing(1, 2, 3, "x-1", 4).encode()) == Timing(1, 2, 3, "x-1", 4)


# --- executable lookup and plugin registration --------------------------------------------------------------
def test_explicit_server_path_must_exist() -> None:
    with pytest.raises(LaunchError, match="triton_server_path"):
        server.resolve_mlserver("/nonexistent/mlserver")


def test_env_var_and_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "bin" / "mlserver"
    script.parent.mkdir()
    script.write_text("#!/opt/py/bin/python3.11 -u\nprint('hi')\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(server.ENV_MLSERVER, str(script))
    assert server.resolve_mlserver("tritonserver") == script
    assert server.python_of(script) == "/opt/py/bin/python3.11"
    (tmp_path / "bin" / "python").symlink_to(os.path.realpath("/proc/self/exe"))
    assert server.python_of(script) == str(tmp_path / "bin" / "python")


def test_entry_point_registers_the_launcher() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="modelyzer") if e.name == "mlserver"]
    plugin = entry.load()
    registered: dict[str, Any] = {}
    plugin.register_launchers(lambda name, factory: registered.setdefault(name, factory))
    from modelyzer_mlserver.launcher import MLServerLauncher

    assert registered == {"mlserver": MLServerLauncher}
