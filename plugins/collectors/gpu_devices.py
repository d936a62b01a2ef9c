"""NVML through nvidia-ml-py (import name ``pynvml``): enumerate GPUs and MIG instances, read one sample.

Everything NVML-specific of the ``nvml`` collector lives here, behind three functions:

- ``nvml_session()``: ``nvmlInit``/``nvmlShutdown`` around a block (NVML reference-counts them).
- ``enumerate_devices()``: every usable device as ``(GpuDevice, handle)``, in NVML index order.
- ``read_device(handle)``: one sample of memory / utilization / power, plus the NVML errors per metric.

MIG (decided here): a GPU whose *current* MIG mode is enabled is not usable as a whole by CUDA, so it is
replaced by its MIG instances, each a ``GpuDevice`` with its own ``MIG-…`` UUID, the parent's index and
``mig=True``. NVML reports memory per MIG instance but not utilization or power (``NOT_SUPPORTED``): those
are missing for MIG instances and the collector warns once. If NVML will not list the instances (old
driver, no permission, none created), the parent is kept with ``mig=True`` and all of its metrics are
reported missing, with a warning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pynvml

from modelyzer.kernel.models import GpuDevice

MB = 1_000_000
BYTES_PER_MB = 1e6
MW_PER_W = 1000.0

# the metric tags one sample yields, by the NVML call that provides them
MEMORY_TAGS = ("gpu_used_memory", "gpu_free_memory", "gpu_total_memory")
UTILIZATION_TAGS = ("gpu_utilization",)
POWER_TAGS = ("gpu_power_usage",)
TAGS = MEMORY_TAGS + UTILIZATION_TAGS + POWER_TAGS

NVMLError = pynvml.NVMLError


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _flag(value: Any) -> bool:
    """NVML's ctypes results (c_uint) or plain ints/bools as a bool."""
    return bool(getattr(value, "value", value))


def describe_error(err: BaseException) -> str:
    """A short text for an NVML error (its own message, e.g. ``Not Supported``, ``GPU is lost``)."""
    text = str(err).strip()
    return text or type(err).__name__


@contextlib.contextmanager
def nvml_session() -> Iterator[None]:
    """``nvmlInit`` … ``nvmlShutdown``; raises ``NVMLError`` when the library or driver is missing."""
    pynvml.nvmlInit()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _total_mb(handle: Any) -> int:
    try:
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).total // MB)
    except NVMLError:
        return 0


def _name(handle: Any, default: str = "") -> str:
    try:
        return _text(pynvml.nvmlDeviceGetName(handle))
    except NVMLError:
        return default


def mig_enabled(handle: Any) -> bool:
    """Whether the GPU's *current* MIG mode is enabled (False when NVML or the GPU has no MIG)."""
    try:
        current = pynvml.nvmlDeviceGetMigMode(handle)[0]
    except (NVMLError, AttributeError):
        return False
    return int(current) == pynvml.NVML_DEVICE_MIG_ENABLE


def mig_instances(parent: Any, index: int, parent_name: str, memory: bool = True) -> list[tuple[GpuDevice, Any]]:
    """The MIG instances of a MIG-enabled GPU by their own UUIDs; ``[]`` when NVML will not list them."""
    try:
        slots = int(pynvml.nvmlDeviceGetMaxMigDeviceCount(parent))
    except (NVMLError, AttributeError):
        return []
    out: list[tuple[GpuDevice, Any]] = []
    for slot in range(slots):
        try:
            handle = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, slot)
            uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
        except NVMLError:
            continue  # NOT_FOUND: an empty slot
        name = _name(handle, f"{parent_name} MIG {slot}")
        out.append((GpuDevice(uuid, name, index, _total_mb(handle) if memory else 0, mig=True), handle))
    return out


def enumerate_devices(memory: bool = True) -> list[tuple[GpuDevice, Any]]:
    """Every device (inside ``nvml_session()``): whole GPUs, or the MIG instances of MIG-enabled GPUs.

    A GPU whose handle or UUID NVML cannot read is skipped (it could not be selected or sampled anyway).
    ``memory=False`` leaves ``total_memory_mb`` 0 (no memory read: the collector only needs the handles).
    """
    out: list[tuple[GpuDevice, Any]] = []
    for index in range(int(pynvml.nvmlDeviceGetCount())):
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
        except NVMLError:
            continue
        name = _name(handle)
        if mig_enabled(handle):
            instances = mig_instances(handle, index, name, memory)
            total = _total_mb(handle) if memory and not instances else 0
            out.extend(instances or [(GpuDevice(uuid, name, index, total, mig=True), handle)])
            continue
        out.append((GpuDevice(uuid, name, index, _total_mb(handle) if memory else 0), handle))
    return out


def is_mig_handle(handle: Any) -> bool:
    try:
        return _flag(pynvml.nvmlDeviceIsMigDeviceHandle(handle))
    except (NVMLError, AttributeError):
        return False


def read_device(handle: Any, *, utilization: bool = True, power: bool = True) -> tuple[dict[str, float], dict[str, str]]:
    """One sample: ``{tag: value}`` (MB, %, W) and ``{"memory"|"utilization"|"power": NVML error}`` for the
    reads that failed (their tags are absent from the values).

    Each NVML call fails on its own: a failed memory read leaves utilization and power readable.
    ``utilization``/``power`` False skip calls known to be unsupported (MIG instances).
    """
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    try:
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        values["gpu_used_memory"] = float(mem.used) / BYTES_PER_MB
        values["gpu_free_memory"] = float(mem.free) / BYTES_PER_MB
        values["gpu_total_memory"] = float(mem.total) / BYTES_PER_MB
    except NVMLError as err:
        errors["memory"] = describe_error(err)
    if utilization:
        try:
            values["gpu_utilization"] = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except NVMLError as err:
            errors["utilization"] = describe_error(err)
    if power:
        try:
            values["gpu_power_usage"] = float(pynvml.nvmlDeviceGetPowerUsage(handle)) / MW_PER_W
        except NVMLError as err:
            errors["power"] = describe_error(err)
    return values, errors


__all__ = [
    "NVMLError",
    "TAGS",
    "describe_error",
    "enumerate_devices",
    "is_mig_handle",
    "mig_enabled",
    "mig_instances",
    "nvml_session",
    "read_device",
]
