"""What the pages show, as values: a model's ranked table, the compare view of two variants, the runs list.

Built from a `Snapshot` (the kernel's ranking, the CLI's knob cells), never from SQL; the templates only lay
them out.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import attrs

from modelyzer.frontends.cli.live import knob_cells
from modelyzer.frontends.web.snapshot import Snapshot
from modelyzer.kernel import metrics, ranking
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.models import ModelSpec, Result
from modelyzer.kernel.store import Run

#: columns of the ranked table besides the knobs: (tag, digits), then any constrained or objective tag
VALUE_COLUMNS = (("perf_throughput", 1), ("perf_latency_p99", 2), ("perf_latency_avg", 2))


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "–"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


#: short column headers of the common tags (others: the metric registry's header)
SHORT = {"perf_throughput": "infer/s", "perf_latency_p99": "p99 ms", "perf_latency_avg": "avg ms"}


def label(tag: str, short: bool = False) -> str:
    if short and tag in SHORT:
        return SHORT[tag]
    info = metrics.get(tag)
    return info.header if info is not None else tag


@attrs.frozen
class Column:
    tag: str
    header: str
    digits: int = 2


@attrs.frozen
class Row:
    """One config of the ranked table, at its best measurement."""

    rank: int
    tied: bool
    name: str
    is_default: bool
    knobs: tuple[str, ...]  # instances, max batch, dynamic batching, load
    values: dict[str, float]
    passing: bool
    measurements: int

    @property
    def rank_text(self) -> str:
        return f"{self.rank}≈" if self.tied else str(self.rank)


def columns(spec: ModelSpec, ranked: list[RankedConfig]) -> list[Column]:
    measured = {m.tag for rc in ranked for m in rc.best.measurement.metrics}
    tags = [(t, d) for t, d in VALUE_COLUMNS if t in measured]
    for tag in [c.tag for c in spec.constraints] + [o.tag for o in spec.objectives]:
        tag = ranking.ALIASES.get(tag, tag)
        if tag not in {t for t, _ in tags} and tag in measured:
            tags.append((tag, 2))
    return [Column(tag, label(tag, short=True), digits) for tag, digits in tags]


def ranked_rows(snapshot: Snapshot, model: str) -> list[Row]:
    spec = snapshot.spec(model)
    tie = snapshot.tie(model)
    rows = []
    for i, rc in enumerate(snapshot.ranked(model), 1):
        variant = rc.best.run_config.variant
        rows.append(Row(rank=i, tied=bool(tie and variant.name in tie.names), name=rc.variant_name,
                        is_default=variant.is_default, knobs=knob_cells(rc.best.run_config, spec.cpu_only),
                        values=ranking.measurement_values(rc.best.measurement), passing=rc.passing,
                        measurements=len(rc.results)))
    return rows


def constraint_text(spec: ModelSpec) -> str:
    parts = []
    for c in spec.constraints:
        if c.min is not None:
            parts.append(f"{c.tag} ≥ {c.min:g}")
        if c.max is not None:
            parts.append(f"{c.tag} ≤ {c.max:g}")
    return ", ".join(parts) or "none"


def tie_text(tie: ranking.Tie | None) -> str:
    if tie is None:
        return ""
    return (f"{', '.join(tie.names)} are statistically tied within ±{tie.within:.1f}% (95% confidence); "
            f"{tie.names[0]} is ranked first by the tie-break rule: {ranking.TIE_BREAK_RULE}")


# ---- compare ------------------------------------------------------------------------------------------------


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A config as dotted keys → JSON text of each leaf (lists of dicts indexed: `instance_group[0].count`)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key in sorted(value):
            if not str(key).startswith("_"):
                out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
    else:
        out[prefix] = json.dumps(value)
    return out


@attrs.frozen
class DiffLine:
    key: str
    a: str
    b: str

    @property
    def changed(self) -> bool:
        return self.a != self.b


@attrs.frozen
class MetricLine:
    tag: str
    header: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> str:
        """B relative to A in percent (with the better direction marked)."""
        if self.a is None or self.b is None or self.a == 0:
            return ""
        pct = (self.b - self.a) / abs(self.a) * 100
        info = metrics.get(self.tag)
        better = info is not None and pct * info.direction > 0
        return f"{pct:+.1f}%" + (" ✓" if better and abs(pct) >= 0.05 else "")


@attrs.frozen
class Compare:
    a: Row
    b: Row
    diff: list[DiffLine]
    metrics: list[MetricLine]
    loads: list[tuple[str, dict[str, float] | None, dict[str, float] | None]]  # load → values of A, B


def compare(snapshot: Snapshot, model: str, a: str, b: str) -> Compare | None:
    rows = {r.name: r for r in ranked_rows(snapshot, model)}
    ranked = {rc.variant_name: rc for rc in snapshot.ranked(model)}
    if a not in rows or b not in rows:
        return None
    fa = flatten(dict(ranked[a].best.run_config.variant.config))
    fb = flatten(dict(ranked[b].best.run_config.variant.config))
    diff = [DiffLine(k, fa.get(k, "–"), fb.get(k, "–")) for k in sorted(fa.keys() | fb.keys())]
    diff.sort(key=lambda d: not d.changed)
    va, vb = rows[a].values, rows[b].values
    tags = [t for t in dict.fromkeys([*va, *vb]) if not t.endswith(metrics.CI_SUFFIX) and t not in ranking.ALIASES]
    lines = [MetricLine(t, label(t), va.get(t), vb.get(t)) for t in sorted(tags, key=lambda t: (metrics.get(t) is None, t))]
    return Compare(rows[a], rows[b], diff, lines, per_load(ranked[a].results, ranked[b].results))


def per_load(ra: tuple[Result, ...], rb: tuple[Result, ...]) -> list[tuple[str, dict[str, float] | None,
                                                                          dict[str, float] | None]]:
    def by_load(results: tuple[Result, ...]) -> dict[str, dict[str, float]]:
        return {r.run_config.load.describe(): ranking.measurement_values(r.measurement)
                for r in results if r.measurement.ok}

    la, lb = by_load(ra), by_load(rb)
    order = sorted(la.keys() | lb.keys(), key=lambda s: (len(s), s))
    return [(load, la.get(load), lb.get(load)) for load in order]


# ---- runs -----------------------------------------------------------------------------------------------------


@attrs.frozen
class RunLine:
    id: int
    status: str
    started: str
    host: str
    version: str
    mode: str
    search: str
    measured: int
    skipped: int
    failed: int
    wall: str


def run_lines(runs: list[Run]) -> list[RunLine]:
    return [RunLine(r.id, r.status or "unknown", when(r.started_at), r.hostname, r.version,
                    str(r.config.get("triton_launch_mode") or "–"), str(r.config.get("run_config_search_mode") or "–"),
                    r.measured, r.skipped, r.failed, f"{r.wall_seconds:.0f} s" if r.wall_seconds else "–")
            for r in reversed(runs)]
