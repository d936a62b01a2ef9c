"""What the brute search tests share: model configs, synthetic curves, a driver that runs a search to its end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelyzer.kernel.models import (
    STATUS_FAILED,
    Constraint,
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
)
from modelyzer.plugins.search.brute import (
    BruteSearch,
)
from tests.plugins.search.test_common import make_config

BASE: dict[str, Any] = {
    "name": "m",
    "platform": "onnxruntime_onnx",
    "max_batch_size": 8,
    "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [16]}],
    "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [16]}],
}
NON_BATCHING = {**BASE, "max_batch_size": 0}

Curve = Callable[[RunConfig], "dict[str, float] | None"]


def rising(rc: RunConfig) -> dict[str, float]:
    """Throughput that keeps rising with load, instances and max batch size (no plateau anywhere)."""
    load = float(rc.load.concurrency or rc.load.request_rate or 1)
    return {"perf_throughput": load * rc.variant.instance_count * max(rc.variant.max_batch_size, 1)}


def run(strategy: BruteSearch, curve: Curve, slots: int = 1, limit: int = 5000) -> list[list[RunConfig]]:
    """Drive the strategy like the engine does; return the proposed batches."""
    batches: list[list[RunConfig]] = []
    while True:
        remaining = strategy.total_estimate()
        batch = strategy.propose(slots)
        if not batch:
            assert strategy.done
            return batches
        assert len(batch) <= slots
        assert remaining >= len(batch)
        batches.append(batch)
        results = []
        for rc in batch:
            values = curve(rc)
            if values is None:
                measurement = Measurement(rc.key, status=STATUS_FAILED, error="perf_analyzer failed")
            else:
                measurement = Measurement(rc.key, metrics=tuple(Metric(k, v) for k, v in values.items()))
            results.append(Result(rc, measurement))
        strategy.observe(results)
        assert sum(len(b) for b in batches) < limit


def flat(batches: list[list[RunConfig]]) -> list[RunConfig]:
    return [rc for batch in batches for rc in batch]


def point(rc: RunConfig) -> tuple[Any, ...]:
    v = rc.variant
    where: Any = "default" if v.is_default else (v.instance_count, v.max_batch_size)
    return (where, rc.load.batch_size, rc.load.value)


def search(
    spec: ModelSpec | None = None, *, base: dict[str, Any] | None = None, **config: Any
) -> BruteSearch:
    return BruteSearch(spec or ModelSpec("m"), BASE if base is None else base, make_config(**config))


def no_duplicates_and_no_zero_load(run_configs: list[RunConfig]) -> None:
    keys = [rc.key for rc in run_configs]
    assert len(keys) == len(set(keys))
    for rc in run_configs:
        assert rc.load.concurrency is None or rc.load.concurrency >= 1
        assert rc.load.request_rate is None or rc.load.request_rate >= 1


def latency_bound(rc: RunConfig) -> dict[str, float]:
    c = float(rc.load.concurrency or 1)
    return {"perf_throughput": 10.0 * c, "perf_latency_p99": c}


LATENCY_47 = (Constraint("perf_latency_p99", max=47.0),)
