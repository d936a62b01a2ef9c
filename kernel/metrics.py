"""The metric registry: every metric tag with its unit, CSV header, direction and aggregation rules.

`direction` is +1 when higher is better, -1 when lower is better. `samples` aggregates monitor samples within
one measurement window (max/mean/min); `combine` aggregates across GPUs (GPU metrics) or across models
(everything else): memory is summed across GPUs, utilization and power are averaged, throughput is summed
across models and latency averaged. Plugins add tags with `register_metric()`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import attrs

from modelyzer.kernel.models import Metric

HIGHER = 1
LOWER = -1


@attrs.frozen
class MetricInfo:
    tag: str
    header: str
    unit: str
    direction: int
    samples: str = "max"  # how monitor samples within a window are reduced
    combine: str = "mean"  # across GPUs (gpu metrics) or models (others)
    gpu: bool = False
    #: a plugin's metric the reports show whenever it was collected: a column of the inference CSV (unless the
    #: user chose its fields), of the detailed report's table, of the summary's top-configs table, and a row of
    #: the summary's "models side by side" table (e.g. the dali collector's bytes per request)
    shown: bool = False
    #: how two measurements of one RunConfig are pooled into one (`pool`): "mean" of the values, "sum" (counts),
    #: "max"; a CI half-width (`ci_tag`) always pools as the half-width of the mean of two independent estimates
    pooled: str = "mean"


_REGISTRY: dict[str, MetricInfo] = {}


def register_metric(info: MetricInfo) -> None:
    _REGISTRY[info.tag] = info


#: joins a metric tag and a model name: the per-model value of a concurrent multi-model measurement
#: (`perf_throughput@resnet`); the plain tag holds the value combined across the models
MODEL_TAG_SEP = "@"


def model_tag(tag: str, model: str) -> str:
    """The tag of `model`'s own value of `tag` in a concurrent multi-model measurement."""
    return f"{tag}{MODEL_TAG_SEP}{model}"


#: suffix of the tag holding a measured metric's 95% confidence-interval half-width, relative to its value, in %
#: (`perf_throughput_ci`): a load generator that knows its precision stores it, the ranking reads it for ties
CI_SUFFIX = "_ci"


def ci_tag(tag: str) -> str:
    """The tag of `tag`'s relative 95% CI half-width (%); of a per-model tag, `perf_throughput_ci@model`."""
    base, model = split_model_tag(tag)
    return base + CI_SUFFIX if model is None else model_tag(base + CI_SUFFIX, model)


def pool(first: Iterable[Metric], second: Iterable[Metric]) -> list[Metric]:
    """Two measurements of the same RunConfig as one: each tag's (and GPU's) values pooled by its rule
    (`MetricInfo.pooled`); a CI half-width as sqrt(a² + b²) / 2, the half-width of the mean of two estimates; a
    tag only one side has is kept as it is."""
    values: dict[tuple[str, str | None], list[float]] = {}
    for m in (*first, *second):
        values.setdefault((m.tag, m.gpu_uuid), []).append(m.value)
    out = []
    for (tag, uuid), vals in values.items():
        base = split_model_tag(tag)[0]
        if base.endswith(CI_SUFFIX) and len(vals) == 2:
            value = (vals[0] ** 2 + vals[1] ** 2) ** 0.5 / 2
        else:
            info = get(tag)
            value = reduce(vals, info.pooled if info else "mean")
        out.append(Metric(tag, value, uuid))
    return out


def split_model_tag(tag: str) -> tuple[str, str | None]:
    """(`tag`, model) of a per-model tag; (`tag`, None) for a plain one."""
    base, sep, model = tag.partition(MODEL_TAG_SEP)
    return (base, model) if sep else (tag, None)


def get(tag: str) -> MetricInfo | None:
    """The metric of `tag` (a per-model tag `tag@model` is its tag's metric)."""
    return _REGISTRY.get(tag) or _REGISTRY.get(split_model_tag(tag)[0])


def all_metrics() -> dict[str, MetricInfo]:
    return dict(_REGISTRY)


def shown_tags() -> list[str]:
    """The tags plugins registered as `shown` in reports when collected, in registration order."""
    return [tag for tag, info in _REGISTRY.items() if info.shown]


def is_known(tag: str) -> bool:
    return tag in _REGISTRY


def reduce(values: Iterable[float], how: str) -> float:
    vals = list(values)
    if not vals:
        raise ValueError("no values to reduce")
    if how == "max":
        return max(vals)
    if how == "min":
        return min(vals)
    if how == "sum":
        return float(sum(vals))
    return float(statistics.fmean(vals))


def aggregate_samples(tag: str, values: Iterable[float]) -> float:
    info = get(tag)
    return reduce(values, info.samples if info else "max")


def combine(tag: str, values: Iterable[float]) -> float:
    info = get(tag)
    return reduce(values, info.combine if info else "mean")


def better(tag: str, a: float, b: float) -> bool:
    """True when `a` is strictly better than `b` for this tag."""
    info = get(tag)
    direction = info.direction if info else HIGHER
    return (a - b) * direction > 0


def _m(tag: str, header: str, unit: str, direction: int, samples: str = "max", combine: str = "mean", gpu: bool = False) -> None:
    register_metric(MetricInfo(tag, header, unit, direction, samples, combine, gpu))


_m("perf_throughput", "Throughput (infer/sec)", "infer/sec", HIGHER, combine="sum")
_m("perf_latency_avg", "Avg Latency (ms)", "ms", LOWER)
_m("perf_latency_p50", "p50 Latency (ms)", "ms", LOWER)
_m("perf_latency_p90", "p90 Latency (ms)", "ms", LOWER)
_m("perf_latency_p95", "p95 Latency (ms)", "ms", LOWER)
_m("perf_latency_p99", "p99 Latency (ms)", "ms", LOWER)
_m("perf_latency", "p99 Latency (ms)", "ms", LOWER)  # deprecated alias of perf_latency_p99
_m("perf_client_send_recv", "Client Send/Recv (ms)", "ms", LOWER)
_m("perf_client_response_wait", "Client Response Wait (ms)", "ms", LOWER)
_m("perf_server_queue", "Server Queue (ms)", "ms", LOWER)
_m("perf_server_compute_input", "Server Compute Input (ms)", "ms", LOWER)
_m("perf_server_compute_infer", "Server Compute Infer (ms)", "ms", LOWER)
_m("perf_server_compute_output", "Server Compute Output (ms)", "ms", LOWER)
_m("gpu_used_memory", "GPU Memory Usage (MB)", "MB", LOWER, samples="max", combine="sum", gpu=True)
_m("gpu_free_memory", "GPU Memory Available (MB)", "MB", HIGHER, samples="max", combine="sum", gpu=True)
_m("gpu_total_memory", "GPU Total Memory (MB)", "MB", HIGHER, samples="max", combine="sum", gpu=True)
_m("gpu_utilization", "GPU Utilization (%)", "%", HIGHER, samples="mean", combine="mean", gpu=True)
_m("gpu_power_usage", "GPU Power Usage (W)", "W", LOWER, samples="mean", combine="mean", gpu=True)
_m("cpu_used_ram", "RAM Usage (MB)", "MB", LOWER, samples="max", combine="mean")
_m("cpu_available_ram", "RAM Available (MB)", "MB", HIGHER, samples="max", combine="mean")
#: how many times a measurement was confirmed (measured again and pooled: the engine's `confirm_top`)
CONFIRMATIONS = "confirmations"
register_metric(MetricInfo(CONFIRMATIONS, "Confirmations", "", HIGHER, pooled="sum"))
_m("cpu_free_ram", "RAM Available (MB)", "MB", HIGHER, samples="max", combine="mean")
# token metrics (LLM load generators): latencies in ms, converted from whatever unit the tool reports
TOKEN_STATS = ("avg", "min", "max", "p25", "p50", "p75", "p90", "p95", "p99")
for _stat in TOKEN_STATS:
    _m(f"time_to_first_token_{_stat}", f"Time To First Token ({_stat}) (ms)", "ms", LOWER)
    _m(f"inter_token_latency_{_stat}", f"Inter Token Latency ({_stat}) (ms)", "ms", LOWER)
    _m(f"request_latency_{_stat}", f"Request Latency ({_stat}) (ms)", "ms", LOWER)
_m("output_token_throughput", "Output Token Throughput (tokens/sec)", "tokens/sec", HIGHER, combine="sum")
_m("output_token_throughput_per_request", "Output Token Throughput per Request (tokens/sec)", "tokens/sec", HIGHER)
_m("request_throughput", "Request Throughput (requests/sec)", "requests/sec", HIGHER, combine="sum")
_m("input_sequence_length_avg", "Input Sequence Length (avg) (tokens)", "tokens", HIGHER)
_m("output_sequence_length_avg", "Output Sequence Length (avg) (tokens)", "tokens", HIGHER)
