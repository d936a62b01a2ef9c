"""The nvml collector: against a fake at the pynvml function boundary (several GPUs, MIG, NVML errors mid-run),
and for real on this machine, which has no NVIDIA driver (``nvmlInit`` raises ``NVMLError_LibraryNotFound``).

``FakeNvml`` replaces only the ``pynvml.nvml*`` functions the collector calls; ``pynvml.NVMLError`` and its
subclasses stay real, so the error handling is exercised as on a GPU host. ``tests/kernel/test_session.py``
reuses the ``fake_nvml`` fixture for GPU selection and the server-only step.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynvml
import pytest

from modelyzer.kernel import registry
from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, GpuDevice, Metric
from modelyzer.kernel.plugins import DEFAULT_PLUGINS
from modelyzer.plugins.collectors import gpu_devices
from modelyzer.plugins.collectors import nvml as nc

MB = 1_000_000
GB = 1_000_000_000


class FakeGpu:
    """One device: a whole GPU or a MIG instance. Readings may be callables of the read count (or raise)."""

    def __init__(
        self,
        uuid: str,
        name: str = "NVIDIA A100-SXM4-40GB",
        total: int = 40 * GB,
        used: Any = 1 * GB,
        util: Any = 50,
        power_mw: Any = 100_000,
        mig_instances: list[FakeGpu | None] | None = None,
        mig_listing_error: int | None = None,
        is_mig: bool = False,
    ) -> None:
        self.uuid, self.name, self.total = uuid, name, total
        self.used, self.util, self.power_mw = used, util, power_mw
        self.mig_instances = mig_instances  # None: MIG mode off; a list (None = empty slot): MIG mode on
        self.mig_listing_error = mig_listing_error
        self.is_mig = is_mig
        self.reads = {"memory": 0, "util": 0, "power": 0}

    def _value(self, what: str, spec: Any) -> Any:
        n = self.reads[what]
        self.reads[what] += 1
        value = spec(n) if callable(spec) else spec
        if isinstance(value, int) and value < 0:  # a negative reading: raise that NVML error code
            raise pynvml.NVMLError(-value)
        return value


class FakeNvml:
    """The pynvml function boundary: init/shutdown, enumeration, MIG, memory/utilization/power."""

    def __init__(self, gpus: list[FakeGpu], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.inits = 0
        self.shutdowns = 0
        self.lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
        for name in dir(self):
            if name.startswith("nvml"):
                monkeypatch.setattr(pynvml, name, getattr(self, name))
        return self

    @staticmethod
    def _err(code: int) -> pynvml.NVMLError:
        return pynvml.NVMLError(code)

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.init_error is not None:
            raise self._err(self.init_error)
        self.inits += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:  # noqa: N802
        if not 0 <= index < len(self.gpus):
            raise self._err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:  # noqa: N802
        return handle.uuid

    def nvmlDeviceGetName(self, handle: FakeGpu) -> bytes:  # noqa: N802 - older bindings return bytes
        return handle.name.encode()

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> Any:  # noqa: N802
        used = handle._value("memory", handle.used)
        return types.SimpleNamespace(total=handle.total, used=used, free=handle.total - used)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> Any:  # noqa: N802
        if handle.is_mig:
            raise self._err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return types.SimpleNamespace(gpu=handle._value("util", handle.util), memory=10)

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:  # noqa: N802
        if handle.is_mig:
            raise self._err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(handle._value("power", handle.power_mw))

    def nvmlDeviceGetMigMode(self, handle: FakeGpu) -> list[int]:  # noqa: N802
        if handle.is_mig:
            raise self._err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if handle.mig_instances is not None else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeGpu) -> int:  # noqa: N802
        if handle.mig_listing_error is not None:
            raise self._err(handle.mig_listing_error)
        return len(handle.mig_instances or [])

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeGpu, index: int) -> FakeGpu:  # noqa: N802
        instance = (handle.mig_instances or [])[index]
        if instance is None:
            raise self._err(pynvml.NVML_ERROR_NOT_FOUND)
        return instance

    def nvmlDeviceIsMigDeviceHandle(self, handle: FakeGpu) -> ctypes.c_uint:  # noqa: N802 - NVML returns c_uint
        return ctypes.c_uint(1 if handle.is_mig else 0)


def three_gpus_one_mig() -> list[FakeGpu]:
    """GPU 0 and 1 whole; GPU 2 in MIG mode with two instances and an empty slot between them."""
    return [
        FakeGpu("GPU-aaaa", used=2 * GB, util=40, power_mw=150_000),
        FakeGpu("GPU-bbbb", used=4 * GB, util=80, power_mw=250_000),
        FakeGpu(
            "GPU-cccc",
            mig_instances=[
                FakeGpu("MIG-c0", name="NVIDIA A100-SXM4-40GB MIG 1g.5gb", total=5 * GB, used=1 * GB, is_mig=True),
                None,
                FakeGpu("MIG-c2", name="NVIDIA A100-SXM4-40GB MIG 2g.10gb", total=10 * GB, used=3 * GB, is_mig=True),
            ],
        ),
    ]


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeNvml]:
    """Install a FakeNvml: `fake_nvml(gpus=None, init_error=None)` (default: three_gpus_one_mig())."""

    def _install(gpus: list[FakeGpu] | None = None, init_error: int | None = None) -> FakeNvml:
        return FakeNvml(three_gpus_one_mig() if gpus is None else gpus, init_error).install(monkeypatch)

    return _install


def make(tmp_path: Path, gpus: list[GpuDevice], interval: float = 60.0, on_this_host: bool = True,
         **config: Any) -> nc.NvmlCollector:
    """A collector for `gpus`; the long default interval means exactly two samples (start and stop).
    `on_this_host` is the launcher's capability as the kernel puts it in the run context."""
    cfg = config_from_dict({"profile_models": "m", "monitoring_interval": interval, "triton_launch_mode": "local",
                            **config}, check_paths=False)
    context = RunContext(export_path=tmp_path, output_model_repository=tmp_path, gpus=gpus,
                         server_on_this_host=on_this_host)
    return nc.NvmlCollector(cfg, context)


def by_gpu(metrics: list[Metric]) -> dict[str | None, dict[str, float]]:
    out: dict[str | None, dict[str, float]] = {}
    for m in metrics:
        assert m.gpu_uuid is not None
        assert (m.tag not in out.get(m.gpu_uuid, {})), f"duplicate {m.tag} for {m.gpu_uuid}"
        out.setdefault(m.gpu_uuid, {})[m.tag] = m.value
    return out


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- discovery ---------------------------------------------------------------------------------------------
def test_devices_lists_gpus_and_mig_instances_by_uuid(tmp_path: Path, fake_nvml: Any) -> None:
    fake = fake_nvml()
    devices = make(tmp_path, []).devices()
    assert devices == [
        GpuDevice("GPU-aaaa", "NVIDIA A100-SXM4-40GB", 0, 40_000),
        GpuDevice("GPU-bbbb", "NVIDIA A100-SXM4-40GB", 1, 40_000),
        GpuDevice("MIG-c0", "NVIDIA A100-SXM4-40GB MIG 1g.5gb", 2, 5_000, mig=True),
        GpuDevice("MIG-c2", "NVIDIA A100-SXM4-40GB MIG 2g.10gb", 2, 10_000, mig=True),
    ]
    assert fake.inits == fake.shutdowns == 1  # NVML is released after discovery


def test_mig_gpu_whose_instances_cannot_be_listed_is_kept_as_marked_parent(tmp_path: Path, fake_nvml: Any) -> None:
    gpu = FakeGpu("GPU-mig", mig_instances=[], mig_listing_error=pynvml.NVML_ERROR_NO_PERMISSION)
    fake_nvml([FakeGpu("GPU-plain"), gpu])
    devices = make(tmp_path, []).devices()
    assert [(d.uuid, d.index, d.mig) for d in devices] == [("GPU-plain", 0, False), ("GPU-mig", 1, True)]


def test_devices_is_empty_without_a_driver_for_real(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The real nvidia-ml-py here: nvmlInit raises NVMLError_LibraryNotFound → [], no warning."""
    with pytest.raises(pynvml.NVMLError):  # this machine really has no NVIDIA driver
        pynvml.nvmlInit()
    caplog.set_level(logging.DEBUG, logger="modelyzer")
    col = make(tmp_path, [])
    assert col.devices() == []
    assert warnings_of(caplog) == []
    assert any("nvml: no GPUs" in r.getMessage() for r in caplog.records)
    assert col.enabled() is False


def test_enabled_needs_selected_gpus_and_a_local_server(tmp_path: Path) -> None:
    gpu = [GpuDevice("GPU-aaaa", index=0)]
    assert make(tmp_path, gpu).enabled() is True
    assert make(tmp_path, gpu, triton_launch_mode="docker").enabled() is True
    assert make(tmp_path, gpu, triton_launch_mode="c_api").enabled() is True
    assert make(tmp_path, gpu, triton_launch_mode="remote", on_this_host=False).enabled() is False
    assert make(tmp_path, []).enabled() is False


def test_registered_as_default_plugin() -> None:
    seen: dict[str, Any] = {}
    nc.register_metric_collectors(lambda name, factory: seen.update({name: factory}))
    assert seen == {"nvml": nc.NvmlCollector}
    assert "modelyzer.plugins.collectors.nvml" in DEFAULT_PLUGINS
    assert registry.get("metric_collectors", "nvml").factory is nc.NvmlCollector
    assert set(nc.NvmlCollector.tags) == {
        "gpu_used_memory", "gpu_free_memory", "gpu_total_memory", "gpu_utilization", "gpu_power_usage"
    }
    # reads GPUs directly: preferred over every other registered collector of the same metrics
    others = [e.factory for name, e in registry.registry("metric_collectors").items() if name != "nvml"]
    assert all(nc.NvmlCollector.precedence > other.precedence for other in others)


# --- sampling ----------------------------------------------------------------------------------------------
def test_samples_each_selected_gpu_and_aggregates_per_registry(tmp_path: Path, fake_nvml: Any) -> None:
    gpus = three_gpus_one_mig()
    gpus[0].used = lambda n: [1 * GB, 3 * GB][n]  # memory: max over samples
    gpus[0].util = lambda n: [10, 30][n]  # utilization: mean
    gpus[0].power_mw = lambda n: [50_000, 70_000][n]  # power: mean, mW → W
    fake_nvml(gpus)
    col = make(tmp_path, [GpuDevice("GPU-aaaa", index=0), GpuDevice("GPU-bbbb", index=1)])
    col.start(Endpoints())
    got = by_gpu(col.stop())
    assert got == {
        "GPU-aaaa": {"gpu_used_memory": 3000.0, "gpu_free_memory": 39000.0, "gpu_total_memory": 40000.0,
                     "gpu_utilization": 20.0, "gpu_power_usage": 60.0},
        "GPU-bbbb": {"gpu_used_memory": 4000.0, "gpu_free_memory": 36000.0, "gpu_total_memory": 40000.0,
                     "gpu_utilization": 80.0, "gpu_power_usage": 250.0},
    }
    assert gpus[2].reads == {"memory": 0, "util": 0, "power": 0}  # not selected: never read


def test_samples_in_a_thread_every_monitoring_interval(tmp_path: Path, fake_nvml: Any) -> None:
    gpus = [FakeGpu("GPU-aaaa", util=lambda n: n)]  # utilization 0, 1, 2, … per read
    fake_nvml(gpus)
    col = make(tmp_path, [GpuDevice("GPU-aaaa")], interval=0.02)
    col.start(Endpoints())
    time.sleep(0.3)
    metrics = col.stop()
    reads = gpus[0].reads["util"]
    assert reads >= 5
    assert by_gpu(metrics)["GPU-aaaa"]["gpu_utilization"] == pytest.approx((reads - 1) / 2)
    assert gpus[0].reads["util"] == reads  # the thread is gone after stop()
    time.sleep(0.05)
    assert gpus[0].reads["util"] == reads


def test_each_window_starts_fresh_and_nvml_is_released(tmp_path: Path, fake_nvml: Any) -> None:
    gpus = [FakeGpu("GPU-aaaa", used=lambda n: (n + 1) * GB)]
    fake = fake_nvml(gpus)
    col = make(tmp_path, [GpuDevice("GPU-aaaa")])
    col.start(Endpoints())
    first = by_gpu(col.stop())["GPU-aaaa"]["gpu_used_memory"]
    col.start(Endpoints())
    second = by_gpu(col.stop())["GPU-aaaa"]["gpu_used_memory"]
    assert (first, second) == (2000.0, 4000.0)
    assert fake.inits == fake.shutdowns == 2
    assert col.stop() == []  # stop without start


def test_mig_instances_report_memory_only_with_one_warning(
    tmp_path: Path, fake_nvml: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml()
    col = make(tmp_path, [GpuDevice("MIG-c0", index=2, mig=True), GpuDevice("MIG-c2", index=2, mig=True)])
    for _ in range(3):
        col.start(Endpoints())
        got = by_gpu(col.stop())
    assert got == {
        "MIG-c0": {"gpu_used_memory": 1000.0, "gpu_free_memory": 4000.0, "gpu_total_memory": 5000.0},
        "MIG-c2": {"gpu_used_memory": 3000.0, "gpu_free_memory": 7000.0, "gpu_total_memory": 10000.0},
    }
    warned = warnings_of(caplog)
    assert len(warned) == 2 and all("MIG instance" in w and "utilization or power" in w for w in warned)


def test_mig_parent_without_instances_reports_missing_with_a_warning(
    tmp_path: Path, fake_nvml: Any, caplog: pytest.LogCaptureFixture
) -> None:
    parent = FakeGpu("GPU-mig", mig_instances=[], mig_listing_error=pynvml.NVML_ERROR_NO_PERMISSION)
    fake_nvml([FakeGpu("GPU-plain"), parent])
    col = make(tmp_path, [GpuDevice("GPU-plain"), GpuDevice("GPU-mig", index=1, mig=True)])
    col.start(Endpoints())
    got = by_gpu(col.stop())
    assert set(got) == {"GPU-plain"}
    assert parent.reads == {"memory": 0, "util": 0, "power": 0}
    [warning] = warnings_of(caplog)
    assert "GPU-mig is in MIG mode" in warning and "missing" in warning


def test_nvml_error_mid_run_marks_samples_missing_and_continues(
    tmp_path: Path, fake_nvml: Any, caplog: pytest.LogCaptureFixture
) -> None:
    lost = -pynvml.NVML_ERROR_GPU_IS_LOST
    gpus = [
        FakeGpu("GPU-aaaa", used=lambda n: 2 * GB if n == 0 else lost, util=lambda n: 60 if n == 0 else lost),
        FakeGpu("GPU-bbbb", power_mw=-pynvml.NVML_ERROR_NOT_SUPPORTED),  # power never readable
    ]
    fake_nvml(gpus)
    col = make(tmp_path, [GpuDevice("GPU-aaaa"), GpuDevice("GPU-bbbb", index=1)], interval=0.01)
    col.start(Endpoints())
    time.sleep(0.15)
    got = by_gpu(col.stop())
    assert gpus[0].reads["memory"] > 3  # kept sampling after the error
    assert got["GPU-aaaa"] == {"gpu_used_memory": 2000.0, "gpu_free_memory": 38000.0, "gpu_total_memory": 40000.0,
                               "gpu_utilization": 60.0, "gpu_power_usage": 100.0}
    assert "gpu_power_usage" not in got["GPU-bbbb"] and got["GPU-bbbb"]["gpu_utilization"] == 50.0
    warned = warnings_of(caplog)
    # once per GPU and metric for the whole profile, however many samples failed
    assert sorted(w.split(" (")[0] for w in warned) == [
        "nvml: cannot read memory of GPU GPU-aaaa",
        "nvml: cannot read power of GPU GPU-bbbb",
        "nvml: cannot read utilization of GPU GPU-aaaa",
    ]
    assert all("GPU is lost" in w for w in warned if "GPU-aaaa" in w)
    col.start(Endpoints())
    col.stop()
    assert len(warnings_of(caplog)) == len(warned)


def test_unexpected_exception_in_a_read_never_escapes(tmp_path: Path, fake_nvml: Any, monkeypatch: Any) -> None:
    fake_nvml([FakeGpu("GPU-aaaa")])

    def boom(handle: Any, **kwargs: Any) -> Any:
        raise RuntimeError("driver went away")

    monkeypatch.setattr(gpu_devices, "read_device", boom)
    col = make(tmp_path, [GpuDevice("GPU-aaaa")], interval=0.01)
    col.start(Endpoints())
    time.sleep(0.05)
    assert col.stop() == []


def test_gpu_gone_since_discovery_is_missing(tmp_path: Path, fake_nvml: Any, caplog: pytest.LogCaptureFixture) -> None:
    fake_nvml([FakeGpu("GPU-aaaa")])
    col = make(tmp_path, [GpuDevice("GPU-aaaa"), GpuDevice("GPU-zzzz", index=1)])
    col.start(Endpoints())
    assert set(by_gpu(col.stop())) == {"GPU-aaaa"}
    assert any("GPU-zzzz is no longer visible" in w for w in warnings_of(caplog))


def test_init_failure_at_start_gives_an_empty_window_and_one_warning(
    tmp_path: Path, fake_nvml: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml([FakeGpu("GPU-aaaa")], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    col = make(tmp_path, [GpuDevice("GPU-aaaa")])
    for _ in range(2):
        col.start(Endpoints())
        assert col.stop() == []
    [warning] = warnings_of(caplog)
    assert "cannot initialize NVML (Driver Not Loaded)" in warning


def test_real_nvml_without_driver_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Real pynvml, selected GPUs that cannot be reached (driver missing): empty windows, one warning."""
    col = make(tmp_path, [GpuDevice("GPU-aaaa")])
    col.start(Endpoints())
    assert col.stop() == []
    col.start(Endpoints())
    assert col.stop() == []
    [warning] = warnings_of(caplog)
    assert "NVML Shared Library Not Found" in warning
