"""`SlotActor`: what runs inside one Ray actor — an agent slot (`plugins/agents/slots.SlotRunner`) on that node.

The controller sends the wire config (`slots.wire_config`, the same keys agents get) once, at creation, and then
RunConfigs one at a time, as plain dicts (`kernel.models.converter`); the actor answers each with a Measurement
dict. It keeps its slot's executor — and so its server — from one RunConfig to the next. Paths in the config
(model repository, replay DB) are read on the actor's node: the cluster shares storage, or the paths exist on
every node. Failures come back as `failed` Measurements naming the actor; the actor itself never raises.

The actor runs with `max_concurrency=2` so `stop()` can end the slot's server while a measurement is in flight
(Ctrl-C), instead of queueing behind it.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from modelyzer.kernel import plugins
from modelyzer.kernel.models import GpuDevice, Measurement, RunConfig, converter
from modelyzer.plugins.agents.protocol import SlotInfo
from modelyzer.plugins.agents.slots import SlotRunner, agent_config, discover_slots


def slot_info(index: int, gpu_ids: list[Any]) -> SlotInfo:
    """The slot's GPU (the one Ray gave the actor, by its NVML identity) or a CPU slot."""
    if gpu_ids:
        found = discover_slots(gpus=",".join(str(i) for i in gpu_ids))
        if found and found[0].gpu:
            return SlotInfo(index, found[0].gpu, found[0].gpu_name, found[0].gpu_index, found[0].total_memory_mb)
    return SlotInfo(index)


def _ray_gpu_ids() -> list[Any]:
    """The GPUs Ray assigned this actor (`num_gpus`), [] outside Ray or without GPUs."""
    try:
        import ray

        return list(ray.get_gpu_ids())
    except Exception:  # noqa: BLE001 - outside a Ray worker: a CPU slot
        return []


class SlotActor:
    """One slot on a Ray node (see the module docstring); wrapped with `ray.remote` by the executor."""

    def __init__(self, values: dict[str, Any], config_id: str, index: int, slot_count: int,
                 gpu_ids: list[Any] | None = None) -> None:
        plugins.load_plugins()
        self.config = agent_config(values)
        self.config_id = config_id
        self.slot = slot_info(index, list(gpu_ids) if gpu_ids is not None else _ray_gpu_ids())
        self.name = f"ray-{socket.gethostname()}-{index}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"modelyzer-ray-slot-{index}-"))
        self.runner = SlotRunner(self.slot, self.workdir, slot_count, self.name, owner=f"ray actor {self.name}")

    def ready(self) -> dict[str, Any]:
        """Warm the slot (its server started now, not at the first RunConfig); then who and where it is."""
        self.runner.warm(self.config, self.config_id)
        gpu = (GpuDevice(self.slot.gpu, self.slot.gpu_name, self.slot.gpu_index, self.slot.total_memory_mb)
               if self.slot.gpu else None)
        return {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(),
                "gpu": converter.unstructure(gpu) if gpu else None}

    def measure(self, run_config: dict[str, Any]) -> dict[str, Any]:
        """The RunConfig's Measurement, with the slot's counters (server starts, model loads) as they are now."""
        rc = converter.structure(run_config, RunConfig)
        measurement: Measurement = self.runner.measure(rc, self.config, self.config_id)
        return {"measurement": converter.unstructure(measurement), "counters": self.runner.counters()}

    def counters(self) -> dict[str, int]:
        return self.runner.counters()

    def stop(self) -> dict[str, int]:
        """Stop the slot's server, remove its work directory; its counters."""
        self.runner.drop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return self.runner.counters()
