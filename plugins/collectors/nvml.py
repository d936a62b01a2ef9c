"""The ``nvml`` metric collector: per-GPU memory, utilization and power read directly from NVML.

Uses nvidia-ml-py (``import pynvml``; never the deprecated ``pynvml`` PyPI wrapper). Two jobs:

- **Discovery** (``devices()``): every GPU of this host by UUID (MIG instances by their own UUIDs, see
  ``plugins.collectors.gpu_devices``). Without an NVIDIA driver ``nvmlInit`` fails and the answer is ``[]`` (one debug
  line, no warning: the session prints the single "no NVIDIA GPU found" line).
- **Sampling** (``start``/``stop``): the GPUs selected for the run (``context.gpus``) once at ``start``, every
  ``monitoring_interval`` s in a thread, and once at ``stop``. Per GPU and tag the samples are reduced as
  the metric registry says (memory: max, utilization/power: mean); every Metric carries ``gpu_uuid``. Across
  GPUs nothing is combined here — the ranking sums memory and averages utilization/power.

==========================  ===============================  =====================
NVML call                   metric                           unit
==========================  ===============================  =====================
``nvmlDeviceGetMemoryInfo`` ``gpu_used_memory``,             MB (bytes / 1e6)
                            ``gpu_free_memory``,
                            ``gpu_total_memory``
``…GetUtilizationRates``    ``gpu_utilization``              % (``.gpu``)
``…GetPowerUsage``          ``gpu_power_usage``              W (mW / 1000)
==========================  ===============================  =====================

Failures never leave the collector: an NVML error on one read marks that sample's metrics missing (a tag is
simply absent when no sample could be read) and is logged once per GPU and NVML read (memory, utilization,
power) for the whole profile; a failed ``nvmlInit`` at ``start`` (driver gone mid-profile) gives an empty
window and one warning.
MIG instances report memory only (utilization and power are missing, one warning per instance); a MIG-enabled
GPU whose instances NVML would not list reports nothing (one warning).

Enabled when GPUs were selected and the server runs on this host (``RunContext.server_on_this_host``): this
host's GPUs are not a remote server's. Its ``precedence`` is above collectors that read the same GPU metrics
through the server, so a GPU is read directly whenever this collector runs. The window (thread, interval,
aggregation) is run by ``sampling.SamplingCollector``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, GpuDevice
from modelyzer.plugins.collectors import gpu_devices
from modelyzer.plugins.collectors.gpu_devices import NVMLError, describe_error
from modelyzer.plugins.collectors.sampling import SampleKey, SamplingCollector


class NvmlCollector(SamplingCollector):
    """Discovers GPUs and samples the selected ones around a window; see the module docstring."""

    tags = gpu_devices.TAGS
    #: reads the GPUs directly: preferred over collectors that read them through the server
    precedence: ClassVar[int] = 100
    thread_name: ClassVar[str] = "modelyzer-nvml-collector"

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self._handles: list[tuple[GpuDevice, Any, bool]] = []  # device, handle, is a MIG instance
        self._warned: set[tuple[str, str]] = set()
        self._in_session = False

    # discovery ---------------------------------------------------------------------------------------
    def devices(self) -> list[GpuDevice]:
        try:
            with gpu_devices.nvml_session():
                return [device for device, _ in gpu_devices.enumerate_devices()]
        except NVMLError as err:
            self.context.log.debug("nvml: no GPUs (%s)", describe_error(err))
        except Exception as err:  # noqa: BLE001 - a broken driver must not stop a CPU-only profile
            self.context.log.debug("nvml: GPU discovery failed: %s", err)
        return []

    def enabled(self) -> bool:
        return bool(self.context.gpus) and self.context.server_on_this_host

    # sampling ----------------------------------------------------------------------------------------
    def _warn_once(self, uuid: str, what: str, message: str, *args: Any) -> None:
        if (uuid, what) not in self._warned:
            self._warned.add((uuid, what))
            self.context.log.warning(message, *args)

    def open(self, endpoints: Endpoints) -> bool:
        """nvmlInit and handles of the selected GPUs; False (one warning) when NVML cannot be used (endpoints are
        not needed: NVML is read on this host)."""
        if not self.context.gpus:
            return False
        selected = {g.uuid: g for g in self.context.gpus}
        try:
            gpu_devices.pynvml.nvmlInit()
        except Exception as err:  # noqa: BLE001 - NVMLError or a broken library
            self._warn_once("*", "init", "nvml: cannot initialize NVML (%s); GPU metrics are missing", describe_error(err))
            return False
        self._in_session = True
        try:
            found = gpu_devices.enumerate_devices(memory=False)
        except Exception as err:  # noqa: BLE001
            self._warn_once("*", "enumerate", "nvml: cannot list GPUs (%s); GPU metrics are missing", describe_error(err))
            return False
        self._handles = [
            (device, handle, gpu_devices.is_mig_handle(handle)) for device, handle in found if device.uuid in selected
        ]
        for uuid in sorted(set(selected) - {d.uuid for d, _, _ in self._handles}):
            self._warn_once(uuid, "gone", "nvml: GPU %s is no longer visible; its metrics are missing", uuid)
        return True

    def close(self) -> None:
        self._handles = []
        if self._in_session:
            self._in_session = False
            try:
                gpu_devices.pynvml.nvmlShutdown()
            except Exception:  # noqa: BLE001, S110 - shutting down a library that already failed
                pass

    def sample(self) -> None:
        for device, handle, is_instance in self._handles:
            if device.mig and not is_instance:
                self._warn_once(
                    device.uuid, "mig", "nvml: GPU %s is in MIG mode and NVML lists no MIG instances; "
                    "its metrics are missing", device.uuid,
                )
                continue
            if is_instance:
                self._warn_once(
                    device.uuid, "mig", "nvml: %s is a MIG instance: NVML reports its memory but not its "
                    "utilization or power; those are missing", device.uuid,
                )
            try:
                values, errors = gpu_devices.read_device(handle, utilization=not is_instance, power=not is_instance)
            except Exception as err:  # noqa: BLE001 - never let a sample break a measurement
                values, errors = {}, {"metrics": describe_error(err)}
            for what, error in errors.items():
                self._warn_once(
                    device.uuid, what, "nvml: cannot read %s of GPU %s (%s); samples that fail are missing",
                    what, device.uuid, error,
                )
            for tag, value in values.items():
                self.add(tag, value, device.uuid)

    def order(self, key: SampleKey) -> Any:
        """GPUs in selection order, then UUID and tag."""
        positions = {g.uuid: i for i, g in enumerate(self.context.gpus)}
        return (positions.get(key[0] or "", 0), key[0] or "", key[1])


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("nvml", NvmlCollector)
