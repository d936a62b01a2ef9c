"""The `synthetic` load generator: a closed-form model of a server (`load_generator: synthetic`).

Throughput grows with instances and batch size; p99 latency grows with the batch size, the instances sharing the
host and the requests queued beyond them, so "fastest" and "lowest latency" are different configs. It serves `generic` models but
with a low `preference`: it is used when named, never instead of a real load generator. Its own config key,
`synthetic_speedup` (declared with `register_settings`, set in YAML or as `--synthetic-speedup`), scales the
throughput.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

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


@attrs.frozen
class SyntheticSettings:
    """The keys this plugin reads, with their one default."""

    synthetic_speedup: float = attrs.field(default=1.0, metadata={"help": "Multiplies the synthetic throughput."})


class SyntheticLoadGenerator(LoadGenerator):
    model_types = frozenset({"generic"})
    produces = ("perf_throughput", "perf_latency_p99", "perf_latency_avg")
    preference = -10

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.settings = config.settings(SyntheticSettings)

    def command(self, run_config: RunConfig, endpoints: Endpoints) -> list[str]:
        return ["synthetic", endpoints.model_name, run_config.load.describe()]

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        self.last_window_seconds = 0.01
        values = synthetic_metrics(run_config)
        values["perf_throughput"] *= self.settings.synthetic_speedup
        return [Metric(tag, value) for tag, value in values.items()]


@hookimpl
def register_load_generators(register: Any) -> None:
    register("synthetic", SyntheticLoadGenerator)


@hookimpl
def register_settings(register: Any) -> None:
    register("synthetic", SyntheticSettings)
