"""tritonserver command lines: the accepted ``triton_server_flags``, their validation and rendering.

Shared by the launchers that start a Triton server (``local``; ``docker`` may use it too):

- ``TRITON_SERVER_FLAGS``: the tritonserver options a user may pass (Model Analyzer's whitelist, facts §2.2:
  logging, model repository and control, HTTP/gRPC/SageMaker/Vertex AI endpoints, metrics, tracing, backends,
  repository agents, caches, rate limiting, memory pools, …). Keys may be snake_case; they become kebab-case.
- ``check_flags()``: normalizes a flags mapping and raises a ConfigError naming ``triton_server_flags.<key>``
  (with a did-you-mean) for anything else.
- ``server_argv()``: the launcher's own flags (``model-repository``, ``model-control-mode``, the three ports,
  ``metrics-interval-ms``) followed by the user's. The launcher's flags win: a user value for one of them is
  dropped with a warning. Values render as ``--key=value``; booleans as ``true``/``false`` (Triton's form); a
  list repeats the flag once per item (``backend-config``, ``load-model``, ``rate-limit-resource``, …).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelyzer.kernel.errors import ConfigError

TRITON_SERVER_FLAGS = frozenset(
    """id exit-timeout-secs
    log-verbose log-info log-warning log-error log-format log-file
    model-store model-repository exit-on-error disable-auto-complete-config strict-model-config strict-readiness
    model-control-mode repository-poll-secs load-model model-config-name model-load-thread-count
    model-load-retry-count model-namespacing enable-peer-access allow-poll-model-repository allow-model-control
    allow-http http-address http-port reuse-http-port http-header-forward-pattern http-thread-count
    http-restricted-api http-max-input-size
    allow-grpc grpc-address grpc-port reuse-grpc-port grpc-header-forward-pattern grpc-infer-allocation-pool-size
    grpc-max-response-pool-size grpc-use-ssl grpc-use-ssl-mutual grpc-server-cert grpc-server-key grpc-root-cert
    grpc-infer-response-compression-level grpc-keepalive-time grpc-keepalive-timeout
    grpc-keepalive-permit-without-calls grpc-http2-max-pings-without-data
    grpc-http2-min-recv-ping-interval-without-data grpc-http2-max-ping-strikes grpc-max-connection-age
    grpc-max-connection-age-grace grpc-restricted-protocol
    allow-sagemaker sagemaker-port sagemaker-safe-port-range sagemaker-thread-count
    allow-vertex-ai vertex-ai-port vertex-ai-thread-count vertex-ai-default-model
    allow-metrics allow-gpu-metrics allow-cpu-metrics metrics-address metrics-port metrics-interval-ms
    metrics-config
    trace-config trace-file trace-level trace-rate trace-count trace-log-frequency
    backend-directory backend-config repoagent-directory
    cache-config cache-directory response-cache-byte-size
    rate-limit rate-limit-resource
    pinned-memory-pool-byte-size cuda-memory-pool-byte-size cuda-virtual-address-size
    min-supported-compute-capability buffer-manager-thread-count host-policy model-load-gpu-limit""".split()
)

#: flags the launcher always sets itself; a user value for one of them is ignored with a warning
OWN_FLAGS = (
    "model-repository",
    "model-control-mode",
    "http-port",
    "grpc-port",
    "metrics-port",
    "metrics-interval-ms",
)
#: aliases of the launcher's own flags (a user value would give the server two repositories)
OWN_ALIASES = {"model-store": "model-repository"}

KEY = "triton_server_flags"


def kebab(key: str) -> str:
    return str(key).strip().replace("_", "-")


def check_flags(flags: Mapping[str, Any] | None, key: str = KEY) -> dict[str, Any]:
    """``flags`` with kebab-case keys; ConfigError naming ``<key>.<flag>`` for a flag tritonserver lacks."""
    out: dict[str, Any] = {}
    for raw, value in (flags or {}).items():
        name = kebab(raw)
        if name.startswith("--"):
            name = name[2:]
        if name not in TRITON_SERVER_FLAGS:
            close = difflib.get_close_matches(name, sorted(TRITON_SERVER_FLAGS), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{key}.{raw}: is not a tritonserver option{hint}")
        out[name] = value
    return out


def render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(flags: Mapping[str, Any]) -> list[str]:
    """``--key=value`` tokens; lists repeat the flag; ``None`` values are omitted."""
    tokens: list[str] = []
    for name, value in flags.items():
        items = value if isinstance(value, list | tuple) else [value]
        tokens += [f"--{name}={render_value(item)}" for item in items if item is not None]
    return tokens


def server_argv(
    binary: str,
    own: Mapping[str, Any],
    user: Mapping[str, Any] | None,
    warn: Callable[[str], None] | None = None,
) -> list[str]:
    """The full command line: ``binary``, the launcher's ``own`` flags, then the user's (validated) flags."""
    user_flags = check_flags(user)
    kept: dict[str, Any] = {}
    for name, value in user_flags.items():
        target = OWN_ALIASES.get(name, name)
        if target in own:
            if warn is not None:
                warn(
                    f"{KEY}.{name}={render_value(value)} is ignored: the launcher sets --{target} itself "
                    f"(--{target}={render_value(own[target])})"
                )
            continue
        kept[name] = value
    return [binary, *render(own), *render(kept)]


def warn_to(log: logging.Logger) -> Callable[[str], None]:
    return lambda message: log.warning("%s", message)
