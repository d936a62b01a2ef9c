"""How precise a perf_analyzer measurement is: its per-window results, their confidence intervals, a stopping rule.

perf_analyzer run with ``-v`` prints one line per measurement window ("pass")::

    Pass [2] throughput: 3924.65 infer/sec. p99 latency: 1578 usec
    Pass [2] throughput: 3924.65 infer/sec. Avg latency: 312 usec (standard deviation 40 usec)

``parse_windows`` reads them. ``Precision`` summarises the windows kept so far: their number, the mean, and the
95% confidence interval of the mean (Student's t, half-width relative to the mean, in %) of the throughput and
of the per-window latency, and the throughput's coefficient of variation. ``met(target)`` is the sequential
stopping rule: both half-widths within ``target`` % (``measurement_precision``).

Consecutive windows of one perf_analyzer run are correlated (same connections, same server state), so the
windows' interval alone is optimistic. From ``MIN_RUNS`` runs on, the interval is also computed from the runs'
own means (each run is one sample: between-run variation counts in full) and the wider of the two is the
measurement's — the honest interval of a value that is the mean of the runs.

The stored metrics (``WINDOWS``, ``THROUGHPUT_CI``, ``LATENCY_CI``, ``THROUGHPUT_CV``, ``PRECISION_TARGET_MET``)
follow the kernel's convention ``<tag>_ci`` for the relative half-width of a metric's interval, which the
ranking reads to tell measurements apart from noise.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Sequence

import attrs

from modelyzer.kernel import metrics
from modelyzer.kernel.models import Metric

PASS_LINE = re.compile(
    r"Pass \[(?P<n>\d+)\] throughput: (?P<tput>[\d.eE+-]+) infer/sec\. "
    r"(?:p(?P<pct>\d+) latency|Avg latency): (?P<lat>[\d.eE+-]+) usec"
)

WINDOWS = "measurement_windows"
THROUGHPUT_CI = metrics.ci_tag("perf_throughput")
THROUGHPUT_CV = "perf_throughput_cv"
PRECISION_TARGET_MET = "precision_target_met"

#: two-sided 95% Student's t quantiles by degrees of freedom (1…30); above 30, the normal 1.96 is within 2%
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)

metrics.register_metric(metrics.MetricInfo(WINDOWS, "Measurement Windows", "", metrics.HIGHER, pooled="sum"))
metrics.register_metric(metrics.MetricInfo(THROUGHPUT_CV, "Throughput CV (%)", "%", metrics.LOWER))
metrics.register_metric(metrics.MetricInfo(PRECISION_TARGET_MET, "Precision Target Met", "", metrics.HIGHER,
                                           pooled="max"))
for _base in ("perf_throughput", "perf_latency_p99", "perf_latency_avg", "perf_latency_p95", "perf_latency_p90",
              "perf_latency_p50"):
    _info = metrics.get(_base)
    metrics.register_metric(metrics.MetricInfo(
        metrics.ci_tag(_base), f"{_info.header.rsplit(' (', 1)[0] if _info else _base} ±95% CI (%)", "%",
        metrics.LOWER))


def t95(dof: int) -> float:
    """The two-sided 95% Student's t quantile with `dof` degrees of freedom."""
    return T95[dof - 1] if 1 <= dof <= len(T95) else 1.96


@attrs.frozen
class Window:
    """One perf_analyzer measurement window: throughput (infer/s) and latency (ms; p<N> or average)."""

    throughput: float
    latency_ms: float


def parse_windows(output: str) -> tuple[list[Window], str]:
    """The windows of one perf_analyzer run's ``-v`` output, and the latency tag they carry (``perf_latency_p99``
    with ``--percentile=99``, ``perf_latency_avg`` without)."""
    windows, tag = [], "perf_latency_avg"
    for match in PASS_LINE.finditer(output):
        windows.append(Window(float(match["tput"]), float(match["lat"]) / 1000.0))
        if match["pct"]:
            tag = f"perf_latency_p{match['pct']}"
    return windows, tag


def half_width(values: Sequence[float]) -> float | None:
    """The 95% CI half-width of the mean of `values`, relative to the mean, in % (None: fewer than 2 or mean 0)."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean == 0:
        return None
    return 100.0 * t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values)) / abs(mean)


MIN_RUNS = 3  # runs from which their means give an interval too (two would give Student's t of 12.7)


@attrs.frozen
class Precision:
    """The precision of the windows kept for one measurement (see the module docstring); `run_sizes`: how many
    of the windows, in order, each perf_analyzer run gave (empty: one run)."""

    windows: tuple[Window, ...]
    latency_tag: str = "perf_latency_p99"
    run_sizes: tuple[int, ...] = ()

    def _runs(self) -> list[tuple[Window, ...]]:
        if not self.run_sizes:
            return [self.windows]
        out, start = [], 0
        for size in self.run_sizes:
            out.append(self.windows[start:start + size])
            start += size
        return [run for run in out if run]

    def _ci(self, value: Callable[[Window], float]) -> float | None:
        """The windows' interval; from `MIN_RUNS` runs on, the runs' means' interval when it is wider."""
        ci = half_width([value(w) for w in self.windows])
        runs = self._runs()
        if len(runs) >= MIN_RUNS:
            between = half_width([statistics.fmean(value(w) for w in run) for run in runs])
            if between is not None and (ci is None or between > ci):
                ci = between
        return ci

    @property
    def throughput_ci(self) -> float | None:
        return self._ci(lambda w: w.throughput)

    @property
    def latency_ci(self) -> float | None:
        return self._ci(lambda w: w.latency_ms)

    @property
    def throughput_cv(self) -> float | None:
        values = [w.throughput for w in self.windows]
        if len(values) < 2 or statistics.fmean(values) == 0:
            return None
        return 100.0 * statistics.stdev(values) / statistics.fmean(values)

    def met(self, target: float) -> bool:
        """Both intervals within ±`target` % (the sequential stopping rule)."""
        cis = (self.throughput_ci, self.latency_ci)
        return all(ci is not None and ci <= target for ci in cis)

    def describe(self, target: float | None = None) -> str:
        """"9 windows, throughput ±3.1%, p99 ±4.2%" (and "(target ±5%)")."""
        parts = [f"{len(self.windows)} windows"]
        for name, ci in (("throughput", self.throughput_ci), (self.latency_tag.rsplit("_", 1)[-1], self.latency_ci)):
            if ci is not None:
                parts.append(f"{name} ±{ci:.1f}%")
        return ", ".join(parts) + (f" (target ±{target:g}%)" if target else "")

    def metrics(self, target: float | None) -> list[Metric]:
        """What is stored with the measurement: windows, CI half-widths, CV, and whether the target was met."""
        out = [Metric(WINDOWS, float(len(self.windows)))]
        for tag, value in ((THROUGHPUT_CI, self.throughput_ci), (metrics.ci_tag(self.latency_tag), self.latency_ci),
                           (THROUGHPUT_CV, self.throughput_cv)):
            if value is not None:
                out.append(Metric(tag, value))
        if target:
            out.append(Metric(PRECISION_TARGET_MET, 1.0 if self.met(target) else 0.0))
        return out


def mean_metrics(runs: Sequence[Sequence[Metric]]) -> list[Metric]:
    """The metrics of several perf_analyzer runs of one RunConfig (each of the same number of windows): every
    tag's (and GPU's) mean over the runs that report it, in the first run's order."""
    values: dict[tuple[str, str | None], list[float]] = {}
    for run in runs:
        for m in run:
            values.setdefault((m.tag, m.gpu_uuid), []).append(m.value)
    return [Metric(tag, statistics.fmean(vals), gpu_uuid=uuid) for (tag, uuid), vals in values.items()]
