"""The values the store hands out besides the kernel's models: a run, a GPU, a bench surface's label; its error."""

from __future__ import annotations

from typing import Any

import attrs


class NotAResultsDB(Exception):
    """The file is not a results DB modelyzer can read (not SQLite, or damaged); the message is SQLite's."""


@attrs.frozen
class Run:
    """One profile (or import) stored in the `runs` table; `config` is the run's config, parsed."""

    id: int
    status: str = ""
    started_at: float = 0.0
    finished_at: float | None = None
    hostname: str = ""
    version: str = ""
    config: dict[str, Any] = attrs.field(factory=dict)
    server_starts: int = 0
    model_loads: int = 0
    measured: int = 0
    skipped: int = 0
    failed: int = 0
    wall_seconds: float = 0.0
    window_seconds: float = 0.0
    retry_seconds: float = 0.0

    @property
    def num_configs_per_model(self) -> int | None:
        """The run's `num_configs_per_model` when it set a positive one, else None."""
        value = self.config.get("num_configs_per_model")
        return value if isinstance(value, int) and value > 0 else None


@attrs.frozen
class StoredGpu:
    """A GPU a run used: its UUID, name and total memory in bytes (as Model Analyzer records it)."""

    uuid: str
    name: str = ""
    total_memory: int = 0


@attrs.frozen
class SurfaceLabel:
    """The label bench/surfaces/make.py puts on a synthetic surface DB, with its p99 budget (ms)."""

    name: str
    latency_budget: float
    label: str
