"""The triton_metrics collector against a real http.server serving Triton-style Prometheus text."""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, Metric
from modelyzer.plugins.collectors import triton_metrics as tm

TEMPLATE = """# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{{gpu_uuid="GPU-aaaa"}} {util}
nv_gpu_utilization{{gpu_uuid="GPU-bbbb"}} 0.25
# TYPE nv_gpu_memory_total_bytes gauge
nv_gpu_memory_total_bytes{{gpu_uuid="GPU-aaaa"}} 16000000000
nv_gpu_memory_total_bytes{{gpu_uuid="GPU-bbbb"}} 8000000000
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{{gpu_uuid="GPU-aaaa"}} {used}
nv_gpu_memory_used_bytes{{gpu_uuid="GPU-bbbb"}} 2000000000
# TYPE nv_gpu_power_usage gauge
nv_gpu_power_usage{{gpu_uuid="GPU-aaaa"}} 100
nv_gpu_power_usage{{gpu_uuid="GPU-bbbb"}} 50.5
# TYPE nv_inference_count counter
nv_inference_count{{model="add_sub",version="1"}} 42
"""


class Server:
    """A real HTTP server on 127.0.0.1:0 whose /metrics alternates between two GPU-A readings."""

    def __init__(self, body: str | None = None) -> None:
        self.hits = 0
        self.body = body
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.hits += 1
                even = outer.hits % 2 == 0
                text = (
                    outer.body
                    if outer.body is not None
                    else TEMPLATE.format(
                        util=0.8 if even else 0.4, used=3_000_000_000 if even else 1_000_000_000
                    )
                )
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def collector(tmp_path: Path, **overrides: Any) -> tm.TritonMetricsCollector:
    config = config_from_dict(
        {"profile_models": "m", "monitoring_interval": 0.1, "triton_launch_mode": "remote", **overrides},
        check_paths=False,
    )
    return tm.TritonMetricsCollector(
        config, RunContext(export_path=tmp_path, output_model_repository=tmp_path)
    )


def test_parser_handles_labels_escapes_timestamps_and_junk() -> None:
    text = (
        "# HELP x y\n\nplain 3\n"
        'nv_gpu_utilization{gpu_uuid="GPU-1",name="a \\"q\\" b, c}"} 0.5 1700000000000\n'
        'spaced { a = "1" , } +Inf\nnan_metric{gpu_uuid="G"} NaN\nbroken{a="1" 2\nno_value\n'
    )
    samples = tm.parse_prometheus(text)
    assert samples[0] == ("plain", {}, 3.0)
    assert samples[1] == ("nv_gpu_utilization", {"gpu_uuid": "GPU-1", "name": 'a "q" b, c}'}, 0.5)
    assert samples[2] == ("spaced", {"a": "1"}, math.inf)
    assert samples[3][0] == "nan_metric" and math.isnan(samples[3][2])
    assert len(samples) == 4
    assert tm.gpu_values(samples) == {"GPU-1": {"gpu_utilization": 50.0}}


def test_a_malformed_line_loses_only_itself() -> None:
    text = TEMPLATE.format(util=0.5, used=1_000_000_000).replace(
        "# TYPE nv_gpu_memory_total_bytes", 'oops{gpu_uuid="GPU-aaaa" 1\n# TYPE nv_gpu_memory_total_bytes')
    per_gpu = tm.gpu_values(tm.parse_prometheus(text))
    assert per_gpu["GPU-aaaa"] == {"gpu_utilization": 50.0, "gpu_used_memory": 1000.0, "gpu_free_memory": 15000.0,
                                   "gpu_power_usage": 100.0}
    assert set(per_gpu) == {"GPU-aaaa", "GPU-bbbb"}


def test_two_gpus_aggregated_over_samples(tmp_path: Path, server: Server) -> None:
    col = collector(tmp_path)
    col.start(Endpoints(metrics_url=server.url))
    time.sleep(0.45)
    metrics = col.stop()
    assert server.hits >= 3
    got = {(m.gpu_uuid, m.tag): m.value for m in metrics}
    assert got[("GPU-aaaa", "gpu_used_memory")] == 3000.0  # max over samples
    assert got[("GPU-aaaa", "gpu_free_memory")] == 15000.0  # max of total - used
    assert 40.0 < got[("GPU-aaaa", "gpu_utilization")] < 80.0  # mean of 40 % and 80 % samples
    assert got[("GPU-bbbb", "gpu_utilization")] == 25.0
    assert got[("GPU-bbbb", "gpu_power_usage")] == 50.5 and got[("GPU-aaaa", "gpu_power_usage")] == 100.0
    assert got[("GPU-bbbb", "gpu_free_memory")] == 6000.0
    assert len(metrics) == 8 and all(isinstance(m, Metric) for m in metrics)


def test_unreachable_endpoint_gives_nothing_and_one_debug_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    col = collector(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="modelyzer"):
        col.start(Endpoints(metrics_url=f"http://127.0.0.1:{port}/metrics"))
        time.sleep(0.25)
        assert col.stop() == []
    lines = [r.getMessage() for r in caplog.records if "triton_metrics" in r.getMessage()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0]


def test_server_without_gpu_metrics_gives_nothing(tmp_path: Path) -> None:
    srv = Server(body='# TYPE mlserver_requests counter\nmlserver_requests{model="m"} 5\n')
    try:
        col = collector(tmp_path)
        col.start(Endpoints(metrics_url=srv.url))
        assert col.stop() == [] and srv.hits >= 2
    finally:
        srv.close()


def test_no_url_and_needs_server_metrics(tmp_path: Path) -> None:
    col = collector(tmp_path)
    col.start(Endpoints())  # a launcher with no metrics endpoint (e.g. an in-process server)
    assert col.stop() == []
    # runs only where the launcher's server exposes metrics: the kernel asks this capability, not the launch mode
    assert collector(tmp_path).enabled() and tm.TritonMetricsCollector.needs_server_metrics is True
    seen: dict[str, Any] = {}
    tm.register_metric_collectors(lambda name, factory: seen.update({name: factory}))
    assert seen == {"triton_metrics": tm.TritonMetricsCollector}
