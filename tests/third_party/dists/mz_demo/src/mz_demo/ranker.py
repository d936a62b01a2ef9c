"""The `lowest_p99` ranker (`ranker: lowest_p99`): configs ordered by their lowest p99 latency.

Each config is represented by its measurement with the lowest `perf_latency_p99`; the default config is always
listed (after the top `top_n`), as the built-in ranker does.
"""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig, Ranker
from modelyzer.kernel.models import ModelSpec, Result

TAG = "perf_latency_p99"


def p99(result: Result) -> float:
    return result.measurement.values().get(TAG, float("inf"))


class LowestP99Ranker(Ranker):
    def __init__(self, config: ProfileConfig) -> None:
        self.config = config

    def rank(self, spec: ModelSpec, results: list[Result], top_n: int) -> list[RankedConfig]:
        by_variant: dict[str, list[Result]] = {}
        for result in results:
            by_variant.setdefault(result.run_config.variant.name, []).append(result)
        ranked = []
        for name, rs in by_variant.items():
            ok = [r for r in rs if r.measurement.ok]
            if ok:
                best = min(ok, key=p99)
                ranked.append(RankedConfig(name, best, passing=True, results=tuple(rs), score=-p99(best)))
        ranked.sort(key=lambda r: (-r.score, r.variant_name))
        top = ranked[:top_n]
        top += [r for r in ranked[top_n:] if r.best.run_config.variant.is_default]
        return top


@hookimpl
def register_rankers(register: Any) -> None:
    register("lowest_p99", LowestP99Ranker)
