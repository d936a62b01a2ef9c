"""Objectives, constraints and ranking — Model Analyzer's weighted comparator without its bugs.

Score of A relative to B for one model: `S = Σ_k w_k · d_k / mean(a_k, b_k)` with normalized objective
weights, `d_k = a_k − b_k` for higher-is-better metrics and `b_k − a_k` for lower-is-better ones; positive
means A is better. Unlike Model Analyzer: GPU metrics count (they are aggregated across GPUs first), and an
objective missing on both sides is skipped instead of discarding the others. A variant is ranked by its best
passing measurement (or its best measurement when none passes); failed measurements never rank.

Noise: when measurements carry their precision (the relative 95% CI half-width of a metric under
`metrics.ci_tag`, e.g. `perf_throughput_ci`), two configs are **statistically tied** when the weighted score
between them is within their combined noise: `|S(a, b)| ≤ Σ w_k (ci_a,k + ci_b,k) / 100` over the objectives
whose CI both measurements carry (for one objective: their intervals overlap). The configs tied with the
score leader (same constraint verdict) are the tied leaders; `rank()` orders them by the tie-break rule —
fewer resources first (total instance count, then max batch size, then memory used), then lower p99 latency, then
the score — so the best config is the cheapest one the measurements cannot tell from the leader, and `tie()`
reports them with the noise they are tied within. Measurements without CIs (older DBs, imported checkpoints)
are never tied.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from modelyzer.kernel import metrics
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.models import Constraint, Measurement, Objective, Result

# tags that name another tag's value: Model Analyzer's deprecated `perf_latency`, and `cpu_free_ram`
ALIASES = {"perf_latency": "perf_latency_p99", "cpu_free_ram": "cpu_available_ram"}


def at_workload(results: Iterable[Result], workload: dict[str, Any]) -> list[Result]:
    """The results measured under `workload` (the reference one ranks; the others are reported beside it)."""
    return [r for r in results if dict(r.run_config.load.workload) == dict(workload)]


def measurement_values(measurement: Measurement) -> dict[str, float]:
    """Non-GPU values plus GPU values combined across GPUs (memory summed, utilization/power averaged); in a
    concurrent multi-model measurement also each model's own values (`tag@model`, GPU values shared)."""
    values = measurement.values()
    per_tag: dict[str, list[float]] = {}
    for m in measurement.metrics:
        if m.gpu_uuid is not None:
            per_tag.setdefault(m.tag, []).append(m.value)
    models = {model for tag in values for model in [metrics.split_model_tag(tag)[1]] if model}
    for tag, vals in per_tag.items():
        values.setdefault(tag, metrics.combine(tag, vals))
        for model in models:  # a concurrent group's models share the GPUs: each sees their combined value
            values.setdefault(metrics.model_tag(tag, model), values[tag])
    for alias, tag in ALIASES.items():
        if alias not in values and tag in values:
            values[alias] = values[tag]
    return values


def normalized(objectives: Sequence[Objective]) -> list[tuple[str, float]]:
    total = sum(o.weight for o in objectives) or 1.0
    return [(o.tag, o.weight / total) for o in objectives]


def score(a: dict[str, float], b: dict[str, float], objectives: Sequence[Objective]) -> float:
    """Weighted relative gain of `a` over `b` (positive: `a` is better)."""
    total = 0.0
    for tag, weight in normalized(objectives):
        av, bv = a.get(tag), b.get(tag)
        if av is None and bv is None:
            continue
        if av is None:
            return -1.0
        if bv is None:
            return 1.0
        mean = (av + bv) / 2
        if mean == 0:
            continue
        info = metrics.get(tag)
        direction = info.direction if info else metrics.HIGHER
        total += weight * direction * (av - bv) / mean
    return total


def gain_percent(a: dict[str, float], b: dict[str, float], objectives: Sequence[Objective]) -> float:
    """Summary-report gain of `a` over `b` in percent: Σ w_k · pct_k."""
    total = 0.0
    for tag, weight in normalized(objectives):
        av, bv = a.get(tag), b.get(tag)
        if av is None or bv is None:
            continue
        info = metrics.get(tag)
        if info is None or info.direction == metrics.HIGHER:
            pct = (av - bv) / bv * 100 if bv else 0.0
        else:
            pct = (bv - av) / av * 100 if av else 0.0
        total += weight * pct
    return total


#: the tie-break rule, as reports state it
TIE_BREAK_RULE = "fewer instances, then a smaller max batch size, then less memory, then lower p99 latency"


@attrs.frozen
class Tie:
    """The leaders the measurements cannot tell apart: names in tie-break order (the first is ranked best), and
    the largest relative CI half-width (%) of an objective among them."""

    names: tuple[str, ...]
    within: float


def noise(a: dict[str, float], b: dict[str, float], objectives: Sequence[Objective]) -> float | None:
    """The combined relative noise of the weighted score between two measurements' values (None: no objective
    carries a CI on both sides)."""
    total, known = 0.0, False
    for tag, weight in normalized(objectives):
        ca, cb = a.get(metrics.ci_tag(tag)), b.get(metrics.ci_tag(tag))
        if ca is None or cb is None:
            continue
        known = True
        total += weight * (ca + cb) / 100.0
    return total if known else None


def tied(a: dict[str, float], b: dict[str, float], objectives: Sequence[Objective]) -> bool:
    """Whether the score between `a` and `b` is within their noise (see the module docstring)."""
    n = noise(a, b, objectives)
    return n is not None and abs(score(a, b, objectives)) <= n


def resources(rc: RankedConfig) -> tuple[float, ...]:
    """The tie-break key of a config at its best measurement: instances, max batch size, memory, p99 latency."""
    variant = rc.best.run_config.variant
    parts = variant.members or (variant,)
    values = measurement_values(rc.best.measurement)
    memory = values.get("gpu_used_memory", values.get("cpu_used_ram", 0.0))
    return (float(sum(v.instance_count + sum(c.instance_count for c in v.composing) for v in parts)),
            float(sum(v.max_batch_size for v in parts)), memory, values.get("perf_latency_p99", 0.0))


def _by_score(objectives: Sequence[Objective]) -> Any:
    def cmp(x: RankedConfig, y: RankedConfig) -> int:
        if x.passing != y.passing:
            return -1 if x.passing else 1
        s = score(measurement_values(x.best.measurement), measurement_values(y.best.measurement), objectives)
        return -1 if s > 0 else (1 if s < 0 else 0)

    return functools.cmp_to_key(cmp)


def tied_leaders(ranked: Sequence[RankedConfig], objectives: Sequence[Objective]) -> list[RankedConfig]:
    """The configs tied with the score leader (itself first), in tie-break order; [] when the leader stands alone."""
    by_score = sorted(ranked, key=_by_score(objectives))
    if len(by_score) < 2:
        return []
    leader = by_score[0]
    lead = measurement_values(leader.best.measurement)
    group = [leader] + [r for r in by_score[1:] if r.passing == leader.passing
                        and tied(measurement_values(r.best.measurement), lead, objectives)]
    if len(group) < 2:
        return []
    order = {id(r): i for i, r in enumerate(group)}
    return sorted(group, key=lambda r: (*resources(r), order[id(r)]))


def tie(ranked: Sequence[RankedConfig], objectives: Sequence[Objective]) -> Tie | None:
    """The tied leaders of a ranking and the noise they are tied within (None: the best config stands alone)."""
    group = tied_leaders(ranked, objectives)
    if not group:
        return None
    cis = [measurement_values(r.best.measurement).get(metrics.ci_tag(tag)) for r in group for tag, _ in
           normalized(objectives)]
    return Tie(tuple(r.variant_name for r in group), max((c for c in cis if c is not None), default=0.0))


def failures(constraints: Iterable[Constraint], values: dict[str, float]) -> float:
    """Sum of relative violations (0 when every constraint is met; a missing metric counts as met)."""
    total = 0.0
    for c in constraints:
        v = values.get(c.tag)
        if v is None:
            continue
        if c.min is not None and v < c.min:
            total += (c.min - v) / c.min if c.min else 1.0
        if c.max is not None and v > c.max:
            total += (v - c.max) / c.max if c.max else 1.0
    return total


def passes(constraints: Iterable[Constraint], values: dict[str, float]) -> bool:
    return failures(constraints, values) == 0


def best_result(results: Sequence[Result], objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> tuple[Result, bool] | None:
    """The best successful result: best passing if any passes, else best overall; None if none succeeded."""
    ok = [r for r in results if r.measurement.ok]
    if not ok:
        return None
    passing = [r for r in ok if passes(constraints, measurement_values(r.measurement))]
    pool = passing or ok
    best = pool[0]
    for r in pool[1:]:
        if score(measurement_values(r.measurement), measurement_values(best.measurement), objectives) > 0:
            best = r
    return best, bool(passing)


def rank(
    results: Sequence[Result],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    top_n: int | None = None,
    include_default: bool = True,
) -> list[RankedConfig]:
    """Rank variants best-first. With `top_n`, keep the best n (passing ones if any pass) plus the default."""
    by_variant: dict[str, list[Result]] = {}
    for r in results:
        by_variant.setdefault(r.run_config.variant.name, []).append(r)
    ranked: list[RankedConfig] = []
    for name, rs in by_variant.items():
        found = best_result(rs, objectives, constraints)
        if found is None:
            continue
        best, ok = found
        ranked.append(RankedConfig(name, best, ok, tuple(rs)))

    ranked.sort(key=_by_score(objectives))
    leaders = tied_leaders(ranked, objectives)  # the tied leaders first, cheapest first
    ranked = leaders + [r for r in ranked if all(r is not x for x in leaders)]
    if top_n is None:
        return ranked
    any_pass = any(r.passing for r in ranked)
    top = [r for r in ranked if r.passing == any_pass][:top_n] if any_pass else ranked[:top_n]
    if include_default:
        for entry in ranked:
            if entry.best.run_config.variant.is_default and entry not in top:
                top.append(entry)
    return top


def sorted_measurements(results: Sequence[Result], objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> list[Result]:
    """A variant's measurements for tables: passing best→worst, then failing best→worst, then failed runs."""

    def cmp(x: Result, y: Result) -> int:
        s = score(measurement_values(x.measurement), measurement_values(y.measurement), objectives)
        return -1 if s > 0 else (1 if s < 0 else 0)

    ok = [r for r in results if r.measurement.ok]
    passing = [r for r in ok if passes(constraints, measurement_values(r.measurement))]
    failing = [r for r in ok if r not in passing]
    return (
        sorted(passing, key=functools.cmp_to_key(cmp))
        + sorted(failing, key=functools.cmp_to_key(cmp))
        + [r for r in results if not r.measurement.ok]
    )
