"""Where RunConfigs execute: the Executor interface every executor plugin implements.

An executor turns RunConfigs into Measurements — on this host (the built-in `local` executor), on ZeroMQ agents,
or wherever a plugin runs them — never raising for a measurement that failed (it becomes a `failed`
Measurement with the tool's own error). Executors are plugins (`register_executors`), chosen by the `executor`
key; the engine only sees this interface.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import ClassVar

from modelyzer.kernel.models import GpuDevice, Measurement, Metric, RunConfig


class Executor(abc.ABC):
    """Runs batches of RunConfigs; `slots` is how many it can run at once.

    Built as `factory(config, context)`; building starts nothing. The profile then asks
    `offered_gpus()`: an executor whose slots run on other hosts starts, waits for them and returns their GPUs
    (which become the profile's); one that runs here returns None and this host's GPUs are discovered.
    """

    slots: int = 1
    #: whether RunConfigs run on this host (its launcher and load generator are checked here by `modelyzer check`)
    on_this_host: ClassVar[bool] = True

    @abc.abstractmethod
    def execute(self, run_configs: Sequence[RunConfig]) -> Iterator[tuple[RunConfig, Measurement]]:
        """Yield each RunConfig with its Measurement as soon as it finishes (any order)."""

    def offered_gpus(self) -> list[GpuDevice] | None:
        """GPUs of the hosts the RunConfigs run on when they are not this host (None: this host's GPUs)."""
        return None

    def check(self) -> list[str]:
        """What `modelyzer check` can verify of this executor without starting it (e.g. that its cluster answers):
        one line per thing checked; a ModelyzerError (one line) when something is wrong."""
        return []

    def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare (e.g. start servers); called once before the first batch (idempotent)."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release everything started; idempotent, called from `finally`."""

    def counters(self) -> dict[str, int]:
        return {"server_starts": 0, "model_loads": 0}

    def server_only_gpus(self) -> list[str]:
        """UUIDs of GPUs whose server can be sampled with no model loaded (after `start()`; [] when it cannot)."""
        return []

    def server_only_host(self) -> bool:
        """Whether the server's host metrics (RAM, CPU; no `gpu_uuid`) can be sampled with no model loaded."""
        return False

    def server_only_metrics(self, duration: float) -> list[Metric]:
        """Metrics of the server with no model loaded, sampled for `duration` seconds: per GPU (`gpu_uuid` set)
        and, when `server_only_host()`, of its host (no `gpu_uuid`)."""
        return []
