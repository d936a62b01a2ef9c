"""What the controller accepts as an agent's result: checks a Measurement before it can reach the results DB.

An agent is another process on another host; its result is input, not truth. `check_measurement` returns the
reason to reject one (None when it is fine):
- a metric that is not a finite number (NaN, ±inf: SQLite would store NULL and the ranking would break on it);
- a negative value of a metric the registry knows (throughput, latency, memory, utilization… are never
  negative; a plugin's unregistered metric is only checked for finiteness);
- status `ok` without any metric, or without the throughput the RunConfig's objectives rank by
  (`required_metrics`): "ok" with nothing to rank would be ranked as 0 infer/s.

The hub rejects such a result, acknowledges it (the agent forgets it) and requeues the RunConfig a bounded
number of times; then it stores a `failed` measurement carrying the reason (`plugins/agents/hub.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.models import Measurement, RunConfig

MAX_INVALID = 3  # invalid results of one RunConfig before it is stored as failed (requeued until then)


def _throughput(tag: str) -> bool:
    info = metrics.get(tag)
    return info is not None and info.direction == metrics.HIGHER and info.unit.endswith("/sec")


def required_metrics(config: ProfileConfig) -> Callable[[RunConfig], frozenset[str]]:
    """RunConfig → the throughput tags its models' objectives rank by (each must be in an `ok` result)."""
    per_model = {spec.name: frozenset(o.tag for o in spec.objectives if _throughput(o.tag)) for spec in config.models}
    default = frozenset(o.tag for o in config.objectives if _throughput(o.tag))

    def required(rc: RunConfig) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for member in rc.members or (rc,):
            out |= per_model.get(member.model, default)
        return out

    return required


def check_measurement(m: Measurement, required: frozenset[str] = frozenset()) -> str | None:
    """The reason to reject `m` (see the module docstring), or None."""
    for metric in m.metrics:
        value = metric.value
        where = f"{metric.tag}" + (f" of GPU {metric.gpu_uuid}" if metric.gpu_uuid else "")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{where} is not a number ({value!r})"
        if not math.isfinite(value):
            return f"{where} is {value!r}, not a finite number"
        base = metrics.split_model_tag(metric.tag)[0].removesuffix(metrics.CI_SUFFIX)
        if value < 0 and metrics.get(base) is not None:
            return f"{where} is negative ({value:g})"
    if not m.ok:
        return None
    if not m.metrics:
        return "status ok without any metric"
    present = {metrics.split_model_tag(metric.tag)[0] for metric in m.metrics}
    missing = sorted(required - present)
    if missing:
        return f"status ok without {', '.join(missing)} (the objectives rank by it)"
    return None


__all__ = ["MAX_INVALID", "check_measurement", "required_metrics"]
