"""Shared stand-ins of the kernel assembly tests: fake GPUs (at the pynvml boundary), a config, a launcher and a
load generator that answer at once."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher, LoadGenerator, RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, GpuDevice, Metric, RunConfig
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


def context_for(tmp_path: Path, gpus: list[GpuDevice] | None = None) -> RunContext:
    return RunContext(export_path=tmp_path, output_model_repository=tmp_path / "omr", gpus=list(gpus or []))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- stand-ins ------------------------------------------------------------------------------------------
class FakeLauncher(Launcher):
    """A server on this host that starts at once and serves every variant."""

    def __init__(self, config: Any = None, context: Any = None) -> None:
        pass

    def start(self) -> None:
        self.server_starts += 1

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        self.model_loads += 1
        return Endpoints(model_name=variant.model)

    def stop(self) -> None:
        pass


class FakeLoad(LoadGenerator):
    """Serves generic models; throughput grows with the max batch size."""

    def __init__(self, config: Any = None, context: Any = None) -> None:
        pass

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        mbs = run_config.variant.max_batch_size
        return [Metric("perf_throughput", 100.0 + mbs), Metric("perf_latency_p99", 1.0)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))



class FakePlugin:
    """Registers the stand-ins: `triton_launch_mode: fake`, `load_generator: fake`."""

    @hookimpl
    def register_launchers(self, register: Any) -> None:
        register("fake", FakeLauncher)

    @hookimpl
    def register_load_generators(self, register: Any) -> None:
        register("fake", FakeLoad)


@pytest.fixture
def fakes(register_plugin: Any) -> None:
    register_plugin(FakePlugin(), "kernel-test-fakes")
