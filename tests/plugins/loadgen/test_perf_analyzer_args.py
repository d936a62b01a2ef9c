"""perf_analyzer command lines (plugins/loadgen/perf_analyzer_args.py): Model Analyzer's order and flags, user flags
last, the measurement key, the stability adjustment."""

from __future__ import annotations

from pathlib import Path

from modelyzer.kernel.models import Endpoints, LoadSpec
from modelyzer.plugins.loadgen.perf_analyzer_args import adjust_for_stability, measurement_key, render
from tests.plugins.loadgen.perf_analyzer_support import (
    TRITON,
    generator,
    make_config,
    run_config,
)


# --- command lines -------------------------------------------------------------------------------------
def test_concurrency_command_is_model_analyzers(tmp_path: Path) -> None:
    assert generator(tmp_path).command(run_config(), TRITON) == [
        "/opt/pa/perf_analyzer", "-m", "add_sub", "-b", "1", "-u", "localhost:8001", "-i", "grpc",
        "-f", "add_sub-results.csv", "--verbose-csv", "--concurrency-range=1", "--measurement-mode=count_windows",
        "--collect-metrics", "--metrics-url=http://localhost:8002/metrics", "--metrics-interval=1000",
    ]  # fmt: skip


def test_request_rate_over_http_without_triton_metrics_and_with_server_flags(tmp_path: Path) -> None:
    endpoints = Endpoints(
        http="127.0.0.1:8080",
        grpc="127.0.0.1:8081",
        metrics_url="http://127.0.0.1:8082/metrics",
        protocol="http",
        model_name="add_sub",
        loadgen_flags={"input-tensor-format": "json", "output-tensor-format": "json"},
    )
    gen = generator(tmp_path, triton_launch_mode="mlserver", monitoring_interval=0.5)
    assert gen.command(run_config(LoadSpec(batch_size=4, request_rate=64)), endpoints)[1:] == [
        "-m", "add_sub", "-b", "4", "-u", "127.0.0.1:8080", "-i", "http", "-f", "add_sub-results.csv",
        "--verbose-csv", "--request-rate-range=64", "--measurement-mode=count_windows",
        "--input-tensor-format=json", "--output-tensor-format=json",
    ]  # fmt: skip


def test_request_intervals_and_metrics_interval_in_ms(tmp_path: Path) -> None:
    gen = generator(tmp_path, triton_launch_mode="remote", monitoring_interval=0.25)
    cmd = gen.command(run_config(LoadSpec(request_intervals="/data/intervals.txt")), TRITON)
    assert "--request-intervals=/data/intervals.txt" in cmd and "--metrics-interval=250" in cmd
    assert not any(t.startswith(("--concurrency-range", "--request-rate-range")) for t in cmd)


def test_c_api_command_uses_variant_name_and_output_repository(tmp_path: Path) -> None:
    gen = generator(tmp_path, triton_launch_mode="c_api")
    assert gen.command(run_config(LoadSpec(concurrency=4)), Endpoints(protocol="c_api"))[1:] == [
        "-m", "add_sub_config_2", "-b", "1", "-f", "add_sub_config_2-results.csv", "--verbose-csv",
        "--service-kind=triton_c_api", "--concurrency-range=4", "--measurement-mode=count_windows",
        "--triton-server-directory=/opt/tritonserver", f"--model-repository={tmp_path / 'omr'}",
    ]  # fmt: skip


def test_user_flags_come_last_and_override(tmp_path: Path) -> None:
    flags = {
        "batch-size": 4, "percentile": 95, "shape": ["INPUT0:4", "INPUT1:4"], "input-data": "random",
        "async": "true", "sync": "false", "streaming": True, "latency-threshold": 0, "metrics-interval": 250,
        "input-tensor-format": "binary", "http-header": ["A:1", "B:2"],
    }  # fmt: skip
    endpoints = Endpoints(
        grpc="localhost:8001",
        metrics_url="http://m/metrics",
        model_name="add_sub",
        loadgen_flags={"input-tensor-format": "json"},
        triton_metrics=True,
    )
    cmd = generator(tmp_path).command(run_config(flags=flags), endpoints)[1:]
    assert cmd == [
        "-m", "add_sub", "-b", "4", "-u", "localhost:8001", "-i", "grpc", "-f", "add_sub-results.csv",
        "-H", "A:1", "-H", "B:2", "--verbose-csv", "--async", "--concurrency-range=1", "--percentile=95",
        "--input-data=random", "--shape=INPUT0:4", "--shape=INPUT1:4", "--measurement-mode=count_windows",
        "--streaming", "--collect-metrics", "--metrics-url=http://m/metrics", "--metrics-interval=250",
        "--input-tensor-format=binary",
    ]  # fmt: skip


def test_user_load_argument_replaces_the_generated_one(tmp_path: Path) -> None:
    cmd = generator(tmp_path).command(run_config(flags={"request-rate-range": "10:40:10"}), TRITON)
    assert "--request-rate-range=10:40:10" in cmd and not any(
        t.startswith("--concurrency-range") for t in cmd
    )


def test_user_can_switch_off_metrics_collection(tmp_path: Path) -> None:
    cmd = generator(tmp_path).command(run_config(flags={"collect-metrics": "false"}), TRITON)
    assert not any("metrics" in t for t in cmd)


def test_measurement_key_is_model_analyzers_representation() -> None:
    rc = run_config(name="add_sub_config_default")
    assert measurement_key(rc, make_config()) == (
        "add_sub_config_default -m add_sub -b 1 -i grpc -f add_sub-results.csv --verbose-csv --concurrency-range=1 "
        "--measurement-mode=count_windows --collect-metrics --metrics-url=http://localhost:8002/metrics "
        "--metrics-interval=1000"
    )
    retried = adjust_for_stability({"model-name": "m", "url": "u:1", "measurement-request-count": 100})
    assert render(retried, exclude=("url", "measurement-request-count")) == ["-m", "m"]


def test_stability_adjustment_follows_model_analyzer() -> None:
    first = adjust_for_stability({"measurement-mode": "count_windows"})
    assert first["measurement-request-count"] == 100
    assert adjust_for_stability(first)["measurement-request-count"] == 150
    timed = adjust_for_stability({"measurement-mode": "time_windows"})
    assert timed["measurement-interval"] == 6000
    assert adjust_for_stability(timed)["measurement-interval"] == 7000




def test_a_bls_models_composing_models_are_named_to_perf_analyzer(tmp_path: Path) -> None:
    argv = generator(tmp_path, bls_composing_models="scale,add_sub").command(run_config(), TRITON)
    assert "--bls-composing-models=scale,add_sub" in argv
    assert not any(a.startswith("--bls-composing-models") for a in generator(tmp_path).command(run_config(), TRITON))
