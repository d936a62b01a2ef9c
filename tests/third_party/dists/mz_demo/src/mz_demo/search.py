"""The `ladder` search strategy (`run_config_search_mode: ladder`): the model's own config, load doubled
from the minimum concurrency until throughput stops growing by 5 % or the maximum concurrency is reached.

One RunConfig per batch: each step depends on what the last one measured (`observe`).
"""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import SearchStrategy
from modelyzer.kernel.models import ConfigVariant, LoadSpec, ModelSpec, Result, RunConfig


class LadderSearch(SearchStrategy):
    def __init__(self, spec: ModelSpec, base_config: dict[str, Any], config: ProfileConfig) -> None:
        self.variant = ConfigVariant(spec.name, base_config, is_default=True)
        self.spec = spec
        self.next: int | None = config.run_config_search_min_concurrency
        self.maximum = config.run_config_search_max_concurrency
        self.best = 0.0

    def propose(self, slots: int = 1) -> list[RunConfig]:
        if self.next is None:
            return []
        return [RunConfig(self.spec.name, self.variant, LoadSpec(concurrency=self.next))]

    def observe(self, results: list[Result]) -> None:
        assert self.next is not None
        throughput = max((r.measurement.values().get("perf_throughput", 0.0) for r in results), default=0.0)
        grew = throughput > self.best * 1.05
        self.best = max(self.best, throughput)
        self.next = self.next * 2 if grew and self.next * 2 <= self.maximum else None

    def total_estimate(self) -> int | None:
        return None


@hookimpl
def register_search_strategies(register: Any) -> None:
    register("ladder", LadderSearch)
