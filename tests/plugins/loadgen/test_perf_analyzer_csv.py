"""perf_analyzer's verbose CSV (plugins/loadgen/perf_analyzer_csv.py), from files the real binary wrote."""

from __future__ import annotations

from modelyzer.kernel.models import LoadSpec, Metric
from modelyzer.plugins.loadgen import perf_analyzer as pal
from modelyzer.plugins.loadgen.perf_analyzer_csv import parse_csv, parse_gpu_cell
from tests.plugins.loadgen.perf_analyzer_support import (
    DATA,
    REAL_CSV,
)


# --- CSV (real files) ----------------------------------------------------------------------------------------------
def test_real_csv_with_gpu_columns() -> None:
    values = {(m.tag, m.gpu_uuid): m.value for m in parse_csv(REAL_CSV, LoadSpec(concurrency=4))}
    assert values[("perf_throughput", None)] == 2618.4
    assert values[("perf_latency_avg", None)] == 1.518
    assert values[("perf_latency_p50", None)] == 1.386
    assert values[("perf_latency_p99", None)] == 4.127
    assert values[("perf_client_send_recv", None)] == 0.059
    assert values[("perf_client_response_wait", None)] == 1.446
    assert values[("perf_server_queue", None)] == 0.02
    assert values[("perf_server_compute_infer", None)] == 0.2
    assert values[("gpu_utilization", "GPU-aaaa")] == 50.0
    assert values[("gpu_power_usage", "GPU-bbbb")] == 50.0
    assert values[("gpu_used_memory", "GPU-bbbb")] == 2000.0
    assert values[("gpu_free_memory", "GPU-aaaa")] == 15000.0
    assert len(values) == 12 + 8


def test_real_request_rate_csv_picks_the_measured_row() -> None:
    text = (DATA / "pa251_request_rate.csv").read_text()
    assert Metric("perf_throughput", 399.377) in parse_csv(text, LoadSpec(request_rate=200))
    assert Metric("perf_throughput", 199.622) in parse_csv(text, LoadSpec(request_rate=100))
    assert Metric("perf_throughput", 399.377) in parse_csv(
        text, LoadSpec(request_rate=7)
    )  # no match → last row
    assert not [m for m in parse_csv(text) if m.gpu_uuid]


def test_missing_and_empty_columns_are_skipped() -> None:
    text = "Concurrency,Inferences/Second,send/recv,Avg latency,Avg GPU Utilization\n1,10.5,250,1500,\n"
    assert parse_csv(text, LoadSpec(concurrency=1)) == [
        Metric("perf_throughput", 10.5), Metric("perf_latency_avg", 1.5), Metric("perf_client_send_recv", 0.25),
    ]  # fmt: skip
    assert parse_csv("") == [] and parse_csv(REAL_CSV.splitlines()[0]) == []
    assert parse_gpu_cell("GPU-a:0.5;junk;GPU-b:x;;GPU-c:1e3;") == {"GPU-a": 0.5, "GPU-c": 1000.0}


def test_error_line_is_perf_analyzers_own() -> None:
    assert pal.error_line("*** settings\nerror: failed to get model metadata: boom\n") == (
        "error: failed to get model metadata: boom"
    )
    unstable = "Request concurrency: 1\nFailed to obtain stable measurement within 3 windows.\nFailed to obtain stable measurement.\n"
    assert pal.error_line(unstable) == "Failed to obtain stable measurement within 3 windows."
    assert pal.error_line("") == "(no output)"



def test_real_mlserver_csv_has_server_columns_and_no_gpu() -> None:
    text = (DATA / "pa251_mlserver_grpc.csv").read_text()
    values = {m.tag: m.value for m in parse_csv(text, LoadSpec(concurrency=2))}
    assert values["perf_throughput"] == 328.659 and values["perf_latency_p99"] == 24.513
    assert values["perf_server_queue"] == 0.247 and values["perf_client_send_recv"] == 0.014
    assert len(values) == 12

