"""plugins/agents/validate.py: which agent results the controller refuses to store."""

from __future__ import annotations

import math

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.models import STATUS_FAILED, ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.plugins.agents.validate import check_measurement, required_metrics

THROUGHPUT = frozenset({"perf_throughput"})


def result(*metrics: tuple[str, float], status: str = "ok") -> Measurement:
    return Measurement("k", status, tuple(Metric(tag, value) for tag, value in metrics))


def test_a_sound_result_passes() -> None:
    assert check_measurement(result(("perf_throughput", 120.5), ("perf_latency_p99", 3.2)), THROUGHPUT) is None
    assert check_measurement(result(("perf_throughput@a", 1.0), ("perf_throughput_ci@a", 0.4)), THROUGHPUT) is None
    assert check_measurement(result(("plugin_offset", -3.0), ("perf_throughput", 1.0)), THROUGHPUT) is None
    assert check_measurement(result(status=STATUS_FAILED)) is None  # a failure carries its error, no metrics


def test_non_finite_negative_and_empty_results_are_refused() -> None:
    for bad, words in (
        (result(("perf_throughput", math.nan)), "perf_throughput is nan"),
        (result(("perf_throughput", math.inf)), "perf_throughput is inf"),
        (result(("perf_throughput", 1.0), ("perf_latency_p99", -math.inf)), "perf_latency_p99 is -inf"),
        (result(("perf_throughput", -5.0)), "perf_throughput is negative"),
        (result(("perf_throughput", 5.0), ("perf_latency_p99", -1.0)), "perf_latency_p99 is negative"),
        (result(("perf_throughput_ci@m", -1.0), ("perf_throughput@m", 1.0)), "negative"),
        (result(("plugin_value", math.nan), status=STATUS_FAILED), "plugin_value is nan"),
        (result(), "without any metric"),
        (result(("perf_latency_p99", 3.0)), "without perf_throughput"),
    ):
        reason = check_measurement(bad, THROUGHPUT)
        assert reason is not None and words in reason, (bad, reason)


def test_the_required_throughput_follows_each_models_objectives() -> None:
    config = config_from_dict({"profile_models": {"a": {}, "b": {"objectives": {"output_token_throughput": 10,
                                                                              "perf_latency_p99": 5}}}},
                             check_paths=False)
    required = required_metrics(config)

    def rc(model: str) -> RunConfig:
        return RunConfig(model, ConfigVariant(model, {}), LoadSpec(concurrency=1))

    assert required(rc("a")) == {"perf_throughput"}
    assert required(rc("b")) == {"output_token_throughput"}  # latency is not a throughput: not required
    assert required(RunConfig.group((rc("a"), rc("b")))) == {"perf_throughput", "output_token_throughput"}
