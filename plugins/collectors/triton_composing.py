"""The ``triton_composing`` collector: where the time of a pipeline goes — each composing model's share.

For an ensemble (the steps of its ``ensemble_scheduling``, read from the server's own view of the served config)
or a BLS model (``bls_composing_models``), it reads Triton's statistics API (``GET /v2/models/stats``) before and
after the measurement window. Per composing model it reports:

=================================  ==================================================================
``step_latency/<model>``           server time per request of that step (queue + compute), ms
``step_share/<model>``             that step's part of the steps' total, %
=================================  ==================================================================

The step with the largest share is the pipeline's bottleneck: the model whose variants (instances, batching)
to look at first. Servers whose endpoints do not serve Triton's API, and models without composing models,
give no metrics; an unreachable server gives none, never an exception.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, ClassVar

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import MetricCollector, RunContext
from modelyzer.kernel.models import Endpoints, Metric

TIMEOUT_S = 5.0
LATENCY = "step_latency/"
SHARE = "step_share/"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - the launcher's own server
        return json.loads(response.read().decode())


def ensemble_steps(config: dict[str, Any]) -> list[str]:
    """The composing models of an ensemble config, in step order (each once)."""
    steps = (config.get("ensemble_scheduling") or {}).get("step") or []
    return list(dict.fromkeys(str(s.get("model_name")) for s in steps if s.get("model_name")))


def totals(stats: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """`{model: (successful requests, their server nanoseconds)}` from a statistics answer (all versions summed)."""
    out: dict[str, tuple[int, int]] = {}
    for entry in stats.get("model_stats") or []:
        success = (entry.get("inference_stats") or {}).get("success") or {}
        count, ns = out.get(str(entry.get("name")), (0, 0))
        out[str(entry.get("name"))] = (count + int(success.get("count") or 0), ns + int(success.get("ns") or 0))
    return out


def step_metrics(steps: list[str], before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[Metric]:
    """Per step: ms per request in the window, and its share of the steps' sum (see the module table)."""
    latency: dict[str, float] = {}
    for model in steps:
        count = after.get(model, (0, 0))[0] - before.get(model, (0, 0))[0]
        ns = after.get(model, (0, 0))[1] - before.get(model, (0, 0))[1]
        if count > 0:
            latency[model] = ns / count / 1e6
    total = sum(latency.values())
    out: list[Metric] = []
    for model, ms in latency.items():
        register(model)
        out.append(Metric(LATENCY + model, ms))
        if total > 0:
            out.append(Metric(SHARE + model, 100.0 * ms / total))
    return out


def register(model: str) -> None:
    """The two tags of one composing model, in the metric registry (headers name the model)."""
    if not metrics.is_known(LATENCY + model):
        metrics.register_metric(metrics.MetricInfo(LATENCY + model, f"Step {model} Latency (ms)", "ms", metrics.LOWER))
        metrics.register_metric(metrics.MetricInfo(SHARE + model, f"Step {model} Share (%)", "%", metrics.LOWER))


class TritonComposingCollector(MetricCollector):
    """Snapshots Triton's statistics around a window; see the module docstring."""

    needs_server_metrics: ClassVar[bool] = True

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.bls = [spec.name for spec in config.bls_composing_models]
        self._base = ""
        self._steps: list[str] = []
        self._before: dict[str, tuple[int, int]] = {}

    def start(self, endpoints: Endpoints) -> None:
        self._base, self._steps = "", []
        if not (endpoints.triton_metrics and endpoints.http and endpoints.model_name):
            return
        base = f"http://{endpoints.http}/v2"
        try:
            steps = self.bls or ensemble_steps(_get(f"{base}/models/{endpoints.model_name}/config"))
            if steps:
                self._before = totals(_get(f"{base}/models/stats"))
                self._base, self._steps = base, steps
        except (OSError, ValueError, urllib.error.URLError):
            return

    def stop(self) -> list[Metric]:
        if not self._base:
            return []
        try:
            after = totals(_get(f"{self._base}/models/stats"))
        except (OSError, ValueError, urllib.error.URLError):
            return []
        finally:
            self._base = ""
        return step_metrics(self._steps, self._before, after)


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("triton_composing", TritonComposingCollector)
