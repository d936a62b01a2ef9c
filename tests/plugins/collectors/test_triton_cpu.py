"""The triton_cpu collector: Triton's own CPU gauges (the live path runs in test_local_triton.py's profile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyzer.kernel import metrics
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints
from modelyzer.plugins.collectors.triton_cpu import TritonCpuCollector, cpu_values
from tests.support.configs import profile_config

# as Triton 2.51 on this machine printed them (values shortened), plus a malformed line
SCRAPE = """\
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.4375
# HELP nv_cpu_memory_total_bytes CPU total memory (RAM), in bytes
# TYPE nv_cpu_memory_total_bytes gauge
nv_cpu_memory_total_bytes 25216761856
# HELP nv_cpu_memory_used_bytes CPU used memory (RAM), in bytes
# TYPE nv_cpu_memory_used_bytes gauge
nv_cpu_memory_used_bytes 1812398080
nv_inference_count{model="add_sub",version="1"} 12
this line is not prometheus
"""


def test_triton_cpu_gauges_become_host_metrics_with_units() -> None:
    assert cpu_values(SCRAPE) == {"host_cpu_utilization": pytest.approx(43.75), "host_used_ram": pytest.approx(1812.39808)}
    assert cpu_values("nv_cpu_utilization NaN\n") == {}
    info = metrics.get("host_cpu_utilization")
    assert info is not None and info.unit == "%" and info.header == "Host CPU Utilization (%)"


def test_only_triton_endpoints_are_scraped(tmp_path: Path) -> None:
    collector = TritonCpuCollector(profile_config(), RunContext(export_path=tmp_path, output_model_repository=tmp_path))
    assert collector.needs_server_metrics
    assert not collector.open(Endpoints(metrics_url="http://127.0.0.1:1/metrics"))  # e.g. MLServer's
    assert collector.open(Endpoints(metrics_url="http://127.0.0.1:1/metrics", triton_metrics=True))


def test_an_unreachable_endpoint_is_no_metrics_not_an_error(tmp_path: Path) -> None:
    collector = TritonCpuCollector(profile_config(monitoring_interval=0.05),
                                   RunContext(export_path=tmp_path, output_model_repository=tmp_path))
    collector.start(Endpoints(metrics_url="http://127.0.0.1:1/metrics", triton_metrics=True))
    assert collector.stop() == []
