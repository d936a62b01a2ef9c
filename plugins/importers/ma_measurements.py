"""A Model Analyzer checkpoint's measurement records in modelyzer's terms (see `ma_checkpoint`).

The LoadSpec of `_model_specific_pa_params`, the perf_analyzer flags a user added (what is left of MA's PA config
once what modelyzer generates itself is taken out), token latencies in real milliseconds, and the metrics of a
concurrent multi-model measurement: each tag combined across its models plus each model's own (`tag@model`).
"""

from __future__ import annotations

from typing import Any

from modelyzer.kernel import metrics
from modelyzer.kernel.models import LoadSpec, Metric


class BadCheckpoint(Exception):
    """A structural problem of the checkpoint (the importer turns it into one ConfigError naming the file)."""


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadCheckpoint(f"malformed Model Analyzer checkpoint: {what} is not an object")
    return value


#: perf_analyzer arguments that modelyzer generates itself (the load, the CSV, the endpoint, metrics collection)
GENERATED_PA_ARGS = frozenset(
    {
        "model-name", "batch-size", "url", "protocol", "latency-report-file", "verbose-csv",
        "concurrency-range", "request-rate-range", "request-intervals", "measurement-request-count",
        "collect-metrics", "metrics-url", "metrics-interval",
    }
)
DEFAULT_PA_VALUES = {"measurement-mode": "count_windows"}


#: Model Analyzer's token latencies: genai-perf's nanoseconds divided by 1000 and labelled ms (facts §4: they are µs)
MA_MICROSECOND_TAGS = ("time_to_first_token_", "inter_token_latency_")


def ma_token_value(tag: str, value: float) -> float:
    """A non-GPU record's value in modelyzer's unit: Model Analyzer's token latencies (µs labelled ms) become ms."""
    return value / 1000.0 if tag.startswith(MA_MICROSECOND_TAGS) else value


def load_spec(params: dict[str, Any]) -> LoadSpec:
    """The LoadSpec of `_model_specific_pa_params` (batch-size and one of the three load kinds)."""
    batch = int(params.get("batch-size") or 1)
    if params.get("request-intervals"):
        return LoadSpec(batch_size=batch, request_intervals=str(params["request-intervals"]))
    if params.get("request-rate-range") is not None:
        return LoadSpec(batch_size=batch, request_rate=int(params["request-rate-range"]))
    if params.get("concurrency-range") is not None:
        return LoadSpec(batch_size=batch, concurrency=int(params["concurrency-range"]))
    raise BadCheckpoint("a measurement has no concurrency-range, request-rate-range or request-intervals")


def user_pa_flags(perf_config: dict[str, Any]) -> dict[str, Any]:
    """The perf_analyzer flags a user added, from MA's PA config (`_args`, `_options`, `_verbose`).

    Dropped: what modelyzer generates itself for every measurement (model, batch size, endpoint, protocol, CSV,
    `--verbose-csv`, the load, `--collect-metrics` and its URL/interval, MA's auto-adjusted request count) and
    `measurement-mode` at its default. So `perf_analyzer_args.measurement_key()` of the imported RunConfig is
    Model Analyzer's measurement key again.
    """
    flags: dict[str, Any] = {}
    options = as_dict(perf_config.get("_options") or {}, "_options")
    names = {v: k for k, v in (perf_config.get("_input_to_options") or {}).items()}
    for option, value in options.items():
        key = names.get(option, option.lstrip("-"))
        if value is not None and key not in GENERATED_PA_ARGS:
            flags[key] = value
    verbose = {v: k for k, v in (perf_config.get("_input_to_verbose") or {}).items()}
    for option, value in (perf_config.get("_verbose") or {}).items():
        key = verbose.get(option, option.lstrip("-"))
        if value and key not in GENERATED_PA_ARGS:
            flags[key] = True
    for key, value in as_dict(perf_config.get("_args") or {}, "_args").items():
        if value is None or key in GENERATED_PA_ARGS or DEFAULT_PA_VALUES.get(key) == value:
            continue
        flags[key] = value
    return flags


def group_metrics(models: list[tuple[str, list[tuple[str, float]]]]) -> list[Metric]:
    """A concurrent measurement's non-GPU metrics: each tag combined across the models that have it (throughput
    summed, latencies averaged: `metrics.combine`, Model Analyzer's `get_non_gpu_metric_value`), then each
    model's own values under `tag@model`."""
    per_tag: dict[str, list[float]] = {}
    for _, values in models:
        for tag, value in values:
            per_tag.setdefault(tag, []).append(value)
    combined = [Metric(tag, metrics.combine(tag, values)) for tag, values in per_tag.items()]
    return combined + [Metric(metrics.model_tag(tag, model), value) for model, values in models for tag, value in values]
