"""perf_analyzer command lines, built the way Model Analyzer builds them.

The arguments are kept as one ``{long-name: value}`` dict and rendered in Model Analyzer's order, so that the
command line (minus ``-u`` and ``--measurement-request-count``) is byte-for-byte MA's measurement key:

1. the short options ``-m -x -b -u -i -f -H`` (keys ``model-name``, ``model-version``, ``batch-size``, ``url``,
   ``protocol``, ``latency-report-file``, ``http-header``), as two tokens each;
2. the verbosity switches ``-v``, ``-v -v``, ``--verbose-csv``;
3. every other whitelisted argument as ``--key=value``, in the order of MA's whitelist;
4. anything else (server-required flags from ``Endpoints.loadgen_flags``, e.g. ``input-tensor-format``) in
   insertion order.

Values: booleans (``True`` or the string ``"true"``) render as a bare ``--flag`` and are omitted otherwise; falsy
values (``None``, ``""``, ``0``, ``False``) are omitted; ``input-data`` and ``shape`` are additive (a list renders
the flag once per item); other lists are joined with commas.

Server-side metrics (``--collect-metrics --metrics-url --metrics-interval``) are requested only when the server
is a Triton server that serves ``/metrics``: the launcher's endpoints say so (``Endpoints.triton_metrics`` with a
non-empty ``metrics_url``). perf_analyzer 2.51 aborts the whole run when the metrics URL does not answer, so other
servers (e.g. MLServer) get no metrics flags unless their launcher puts ``collect-metrics`` into ``loadgen_flags``
or the user sets it in ``perf_analyzer_flags``. A server embedded through Triton's C API (endpoint protocol
``c_api``: perf_analyzer's ``triton_c_api`` service kind) never collects (nothing serves ``/metrics``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.models import Endpoints, RunConfig

OPTION_FLAGS: dict[str, str] = {
    "model-name": "-m",
    "model-version": "-x",
    "batch-size": "-b",
    "url": "-u",
    "protocol": "-i",
    "latency-report-file": "-f",
    "http-header": "-H",
}
VERBOSE_FLAGS: dict[str, str] = {"verbose": "-v", "extra-verbose": "-v -v", "verbose-csv": "--verbose-csv"}

#: Model Analyzer's perf_analyzer whitelist, in MA's order (the order of ``--key=value`` arguments).
MA_ARG_ORDER: tuple[str, ...] = (
    "service-kind",
    "model-signature-name",
    "async",
    "sync",
    "measurement-interval",
    "concurrency-range",
    "request-rate-range",
    "request-distribution",
    "request-intervals",
    "binary-search",
    "num-of-sequences",
    "latency-threshold",
    "max-threads",
    "stability-percentage",
    "max-trials",
    "percentile",
    "input-data",
    "shared-memory",
    "output-shared-memory-size",
    "shape",
    "sequence-length",
    "sequence-id-range",
    "string-length",
    "string-data",
    "measurement-mode",
    "measurement-request-count",
    "streaming",
    "grpc-compression-algorithm",
    "triton-server-directory",
    "model-repository",
    "ssl-grpc-use-ssl",
    "ssl-grpc-root-certifications-file",
    "ssl-grpc-private-key-file",
    "ssl-grpc-certificate-chain-file",
    "ssl-https-verify-peer",
    "ssl-https-verify-host",
    "ssl-https-ca-certificates-file",
    "ssl-https-client-certificate-type",
    "ssl-https-client-certificate-file",
    "ssl-https-private-key-type",
    "ssl-https-private-key-file",
    "collect-metrics",
    "metrics-url",
    "metrics-interval",
    "bls-composing-models",
)
BOOLEAN_ARGS = frozenset(
    {"streaming", "async", "sync", "binary-search", "ssl-grpc-use-ssl", "collect-metrics", *VERBOSE_FLAGS}
)
ADDITIVE_ARGS = frozenset({"input-data", "shape"})
LOAD_ARGS = ("concurrency-range", "request-rate-range", "request-intervals")
METRICS_ARGS = ("collect-metrics", "metrics-url", "metrics-interval")
#: the endpoint protocol of a server perf_analyzer embeds through Triton's C API (set by such a launcher)
C_API = "c_api"

DEFAULT_MEASUREMENT_REQUEST_COUNT = 50
MEASUREMENT_REQUEST_COUNT_STEP = 50
DEFAULT_MEASUREMENT_INTERVAL_MS = 5000
MEASUREMENT_INTERVAL_STEP_MS = 1000


def is_true(value: Any) -> bool:
    """MA's boolean test: ``True`` or the string ``"true"`` (any case)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _fmt(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _tokens_for(key: str, value: Any) -> list[str]:
    if key in BOOLEAN_ARGS or isinstance(value, bool):
        if not is_true(value):
            return []
        return VERBOSE_FLAGS[key].split() if key in VERBOSE_FLAGS else [f"--{key}"]
    if value is None or value == "" or value == 0 or (isinstance(value, list | tuple) and not value):
        return []
    if key in OPTION_FLAGS:
        items = value if isinstance(value, list | tuple) and key == "http-header" else [value]
        out: list[str] = []
        for item in items:
            out += [OPTION_FLAGS[key], _fmt(item)]
        return out
    if key in ADDITIVE_ARGS and isinstance(value, list | tuple):
        return [f"--{key}={_fmt(v)}" for v in value if v not in (None, "")]
    return [f"--{key}={_fmt(value)}"]


def render(flags: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> list[str]:
    """Turn the flags dict into argv tokens (without the binary), in Model Analyzer's order."""
    ordered = [k for k in OPTION_FLAGS if k in flags]
    ordered += [k for k in VERBOSE_FLAGS if k in flags]
    ordered += [k for k in MA_ARG_ORDER if k in flags]
    ordered += [k for k in flags if k not in ordered]
    tokens: list[str] = []
    for key in ordered:
        if key not in exclude:
            tokens += _tokens_for(key, flags[key])
    return tokens


def collects_metrics(endpoints: Endpoints) -> bool:
    """Whether MA's ``--collect-metrics`` trio is generated (see the module docstring)."""
    return endpoints.triton_metrics and bool(endpoints.metrics_url) and endpoints.protocol != C_API


def model_name_for(run_config: RunConfig, endpoints: Endpoints) -> str:
    """``-m``: the served name from the launcher, else the variant name (C API) or the model name."""
    if endpoints.model_name:
        return endpoints.model_name
    if endpoints.protocol == C_API and run_config.variant.name:
        return run_config.variant.name
    return run_config.model


def build_flags(
    run_config: RunConfig,
    endpoints: Endpoints,
    config: ProfileConfig,
    csv_path: str | Path | None = None,
    model_repository: str | Path | None = None,
    include_loadgen_flags: bool = True,
) -> dict[str, Any]:
    """All perf_analyzer arguments for one RunConfig, user ``perf_analyzer_flags`` applied last."""
    model = model_name_for(run_config, endpoints)
    load = run_config.load
    flags: dict[str, Any] = {"model-name": model, "batch-size": load.batch_size}
    if endpoints.protocol == C_API:
        flags["service-kind"] = "triton_c_api"
        flags["triton-server-directory"] = str(config.triton_install_path)
        flags["model-repository"] = str(model_repository or config.output_model_repository_path)
    else:
        protocol = endpoints.protocol or config.client_protocol
        flags["url"] = endpoints.grpc if protocol == "grpc" else endpoints.http
        flags["protocol"] = protocol
    flags["latency-report-file"] = str(csv_path) if csv_path else f"{model}-results.csv"
    flags["verbose-csv"] = True
    if load.mode == "request_intervals":
        flags["request-intervals"] = load.request_intervals
    elif load.mode == "request_rate":
        flags["request-rate-range"] = load.request_rate
    else:
        flags["concurrency-range"] = load.concurrency
    flags["measurement-mode"] = "count_windows"
    if collects_metrics(endpoints):
        flags["collect-metrics"] = True
        flags["metrics-url"] = endpoints.metrics_url
        flags["metrics-interval"] = int(config.monitoring_interval * 1000)
    if config.bls_composing_models:  # perf_analyzer reports their server-side statistics too
        flags["bls-composing-models"] = ",".join(spec.name for spec in config.bls_composing_models)
    if include_loadgen_flags:
        flags.update(endpoints.loadgen_flags)
    user = dict(run_config.perf_analyzer_flags)
    if any(k in user for k in LOAD_ARGS):  # inference-load args are mutually exclusive: the user's wins
        for key in LOAD_ARGS:
            flags.pop(key, None)
    if "collect-metrics" in user and not is_true(user["collect-metrics"]):
        for key in METRICS_ARGS:
            if key not in user:
                flags.pop(key, None)
    flags.update(user)
    return flags


def adjust_for_stability(flags: Mapping[str, Any]) -> dict[str, Any]:
    """MA's auto-adjust after an unstable measurement.

    count_windows: ``measurement-request-count`` → 100 the first time, then +50; time_windows:
    ``measurement-interval`` → 6000 ms the first time, then +1000 ms.
    """
    out = dict(flags)
    if str(out.get("measurement-mode", "count_windows")) == "time_windows":
        current = out.get("measurement-interval")
        base = int(current) if current else DEFAULT_MEASUREMENT_INTERVAL_MS
        out["measurement-interval"] = base + MEASUREMENT_INTERVAL_STEP_MS
    else:
        current = out.get("measurement-request-count")
        base = int(current) if current else DEFAULT_MEASUREMENT_REQUEST_COUNT
        out["measurement-request-count"] = base + MEASUREMENT_REQUEST_COUNT_STEP
    return out


def measurement_key(run_config: RunConfig, config: ProfileConfig, endpoints: Endpoints | None = None) -> str:
    """MA's measurement key (``RunConfig.representation()``) for a single-model RunConfig.

    ``"<variant> <perf_analyzer CLI>"`` with ``-u <url>`` and ``--measurement-request-count`` removed, the CSV
    named ``<model>-results.csv`` and no server-required loadgen flags; e.g. ``add_sub_config_default -m add_sub
    -b 1 -i grpc -f add_sub-results.csv --verbose-csv --concurrency-range=1 --measurement-mode=count_windows
    --collect-metrics --metrics-url=http://localhost:8002/metrics --metrics-interval=1000``.
    """
    if endpoints is None:
        endpoints = Endpoints(
            http=config.triton_http_endpoint,
            grpc=config.triton_grpc_endpoint,
            metrics_url=config.triton_metrics_url,
            protocol=config.client_protocol,
            triton_metrics=True,
        )
    flags = build_flags(run_config, endpoints, config, include_loadgen_flags=False)
    if "latency-report-file" not in run_config.perf_analyzer_flags:
        flags["latency-report-file"] = f"{flags['model-name']}-results.csv"
    cli = " ".join(render(flags, exclude=("url", "measurement-request-count")))
    variant = run_config.variant.name or f"{run_config.model}_config_default"
    return f"{variant} {cli}"
