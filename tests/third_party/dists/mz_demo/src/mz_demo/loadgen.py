"""The `synthetic` load generator: a closed-form model of a server (`load_generator: synthetic`).

Throughput grows with instances and batch size; p99 latency grows with the batch size, the instances sharing the
host and the requests queued beyond them, so "fastest" and "lowest latency" are different configs. It serves `generic` models but
with a low `preference`: it is used when named, never instead of a real load generator.
"""

from __future__ import annotations

import math
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import LoadGenerator, RunContext
from modelyzer.kernel.models import Endpoints, Metric, RunConfig


def synthetic_metrics(run_config: RunConfig) -> dict[str, float]:
    variant, load = run_config.variant, run_config.load
    concurrency = load.concurrency or 1
    busy = min(concurrency, 2 * variant.instance_count)
    batch = max(1, variant.max_batch_size)
    throughput = 100.0 * busy * load.batch_size * (1 + 0.25 * math.log2(batch))
    p99 = 2.0 * concurrency / busy + 0.5 * batch + 0.1 * variant.instance_count
    p99 += 0.25 if variant.dynamic_batching else 0.0
    return {"perf_throughput": throughput, "perf_latency_p99": p99, "perf_latency_avg": 0.8 * p99}


class SyntheticLoadGenerator(LoadGenerator):
    model_types = frozenset({"generic"})
    produces = ("perf_throughput", "perf_latency_p99", "perf_latency_avg")
    preference = -10

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context

    def command(self, run_config: RunConfig, endpoints: Endpoints) -> list[str]:
        return ["synthetic", endpoints.model_name, run_config.load.describe()]

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        self.last_window_seconds = 0.01
        return [Metric(tag, value) for tag, value in synthetic_metrics(run_config).items()]


@hookimpl
def register_load_generators(register: Any) -> None:
    register("synthetic", SyntheticLoadGenerator)
