"""Measuring a concurrent group: one load generator per model, all at once, their windows lined up.

Model Analyzer runs its perf_analyzers under one `mpiexec` so that they agree on stability; here no MPI is
needed: every model's generator is asked for fixed windows (`LoadGenerator.together`: the same window length
and number for every model) and all are started at the same moment, one thread each. The result keeps each
model's own values under `tag@model` and the group's combined value under the plain tag (throughput summed,
latencies averaged: `metrics.combine`); GPU values are the server's, taken once. `window_overlap` is the share
of the group's measuring time during which every model's generator was measuring (intersection ÷ union of
their runs, %), so a user sees how much of the windows really overlapped.

Ctrl-C while the generators run: the load-generator processes started by this measurement are killed (they run
in their own sessions, out of reach of the terminal's SIGINT) and KeyboardInterrupt propagates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import attrs
import psutil

from modelyzer.kernel import metrics
from modelyzer.kernel.errors import LoadGeneratorError
from modelyzer.kernel.interfaces import LoadGenerator
from modelyzer.kernel.models import Endpoints, Metric, RunConfig

OVERLAP = "window_overlap"
metrics.register_metric(metrics.MetricInfo(OVERLAP, "Window Overlap (%)", "%", metrics.HIGHER))
JOIN_POLL_SECONDS = 0.2


@attrs.define
class _Run:
    """One model's generator run: its metrics or its error, and when it ran."""

    metrics: list[Metric] = attrs.field(factory=list)
    error: BaseException | None = None
    started: float = 0.0
    finished: float = 0.0


@attrs.frozen
class GroupOutcome:
    metrics: list[Metric]
    window_seconds: float
    overlap: float
    retry_seconds: float = 0.0


def overlap_percent(spans: Sequence[tuple[float, float]]) -> float:
    """Intersection ÷ union of the time spans, in percent (100 for one span)."""
    if not spans:
        return 0.0
    union = max(e for _, e in spans) - min(s for s, _ in spans)
    common = min(e for _, e in spans) - max(s for s, _ in spans)
    return 100.0 * max(common, 0.0) / union if union > 0 else 100.0


def combine_group(members: Sequence[RunConfig], per_model: Sequence[list[Metric]]) -> list[Metric]:
    """Each model's non-GPU values as `tag@model`, their combination under the tag, GPU values once."""
    out: list[Metric] = []
    by_tag: dict[str, list[float]] = {}
    gpu_seen: set[tuple[str, str]] = set()
    gpu: list[Metric] = []
    for member, measured in zip(members, per_model, strict=True):
        for m in measured:
            if m.gpu_uuid is not None:
                if (m.tag, m.gpu_uuid) not in gpu_seen:
                    gpu_seen.add((m.tag, m.gpu_uuid))
                    gpu.append(m)
                continue
            out.append(Metric(metrics.model_tag(m.tag, member.model), m.value))
            by_tag.setdefault(m.tag, []).append(m.value)
    combined = [Metric(tag, metrics.combine(tag, values)) for tag, values in by_tag.items()]
    return combined + out + gpu


def measure_together(
    generators: Sequence[LoadGenerator], members: Sequence[RunConfig], endpoints: Sequence[Endpoints]
) -> GroupOutcome:
    """Run every member's generator at once (see the module docstring); LoadGeneratorError naming the model
    when one fails."""
    runs = [_Run() for _ in members]
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    gate = threading.Barrier(len(members))

    def work(i: int) -> None:
        run = runs[i]
        try:
            rc = generators[i].together(members[i])
            gate.wait(timeout=30)
            run.started = time.time()
            run.metrics = generators[i].measure(rc, endpoints[i])
        except BaseException as err:  # noqa: BLE001 - reported by the caller, per model
            run.error = err
        finally:
            run.finished = time.time()

    threads = [threading.Thread(target=work, args=(i,), daemon=True, name=f"loadgen-{m.model}")
               for i, m in enumerate(members)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(JOIN_POLL_SECONDS)
    except KeyboardInterrupt:
        _kill_new_children(before)
        raise
    for member, run in zip(members, runs, strict=True):
        if run.error is not None:
            status = getattr(run.error, "status", None)
            error = LoadGeneratorError(f"{member.model}: {run.error}")
            if status:
                error.status = status
            raise error from run.error
    spans = [(r.started, r.finished) for r in runs]
    overlap = overlap_percent(spans)
    windows = [g.last_window_seconds for g in generators[: len(members)]]
    window = max((w for w in windows if w), default=max(e - s for s, e in spans))
    measured = combine_group(members, [r.metrics for r in runs])
    retries = max((float(g.last_retry_seconds or 0.0) for g in generators[: len(members)]), default=0.0)
    return GroupOutcome(measured + [Metric(OVERLAP, overlap)], float(window), overlap, retries)


def _kill_new_children(before: set[int]) -> None:
    """Kill the processes this measurement started (the generators'), not the server started before it."""
    for proc in psutil.Process().children(recursive=True):
        if proc.pid not in before:
            try:
                proc.kill()
            except psutil.Error:
                pass
