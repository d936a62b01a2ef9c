"""The `weighted` ranker: Model Analyzer-compatible weighted objectives and constraints (kernel.ranking)."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel import ranking
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig, Ranker
from modelyzer.kernel.models import ModelSpec, Result


class WeightedRanker(Ranker):
    """Each model's objectives (weighted, normalized) and constraints; the default config is always listed."""

    def __init__(self, config: ProfileConfig | None = None) -> None:
        self.config = config

    def rank(self, spec: ModelSpec, results: list[Result], top_n: int) -> list[RankedConfig]:
        return ranking.rank(results, spec.objectives, spec.constraints, top_n=top_n, include_default=True)


@hookimpl
def register_rankers(register: Any) -> None:
    register("weighted", WeightedRanker)
