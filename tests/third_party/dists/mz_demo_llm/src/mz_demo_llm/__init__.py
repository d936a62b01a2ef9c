"""The `token_echo` load generator: declares that it serves `llm` models, so a profile with `model_type: LLM`
and no `load_generator` key uses it; it reports the LLM metrics (token throughput, time to first token)."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import LoadGenerator, RunContext
from modelyzer.kernel.models import Endpoints, Metric, RunConfig

TOKENS_PER_REQUEST = 64


class TokenEchoLoadGenerator(LoadGenerator):
    model_types = frozenset({"llm"})
    produces = ("output_token_throughput", "time_to_first_token_avg", "perf_throughput", "perf_latency_p99")
    preference = 10

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        concurrency = run_config.load.concurrency or 1
        requests_per_s = 10.0 * min(concurrency, 4)
        ttft_ms = 20.0 + 5.0 * max(0, concurrency - 4)
        self.last_window_seconds = 0.01
        return [
            Metric("perf_throughput", requests_per_s),
            Metric("perf_latency_p99", ttft_ms + TOKENS_PER_REQUEST * 2.0),
            Metric("output_token_throughput", requests_per_s * TOKENS_PER_REQUEST),
            Metric("time_to_first_token_avg", ttft_ms),
        ]


@hookimpl
def register_load_generators(register: Any) -> None:
    register("token_echo", TokenEchoLoadGenerator)
