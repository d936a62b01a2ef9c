"""The parameter (load) sweep that quick and optuna run over their best configs, and the walk driver.

A *walk* is a generator that yields RunConfigs and receives their Measurements through `send()`: one
sequential line of search. `WalkDriver` runs several walks side by side (`propose(slots)` takes the next
RunConfig of up to `slots` walks, so a batch is always independent), answers a walk at once when its next
RunConfig was already measured (by another walk, the search phase before, or a resumed run), and never
proposes the same key twice.

`sweep()` is the load sweep of one variant, fed with what is already known about it (the fix for Model
Analyzer's bug 9.2.1, where the sweeper never saw a measurement):
- the grid is the plan's values: powers of two between the search bounds, or the user's list (concurrency or
  request rate); request intervals are a single load; client batch sizes are the outer loop;
- a searched grid is *climbed from its lowest load*, geometrically (the grid's powers of two): up while the
  objective still gains more than `step_gain` — the throughput knee, two steps in a row without that gain (one
  can be noise), ends it — or while a load measured before
  (by the search phase) further up is better than the best so far; so every swept config's peak is found from
  below, the default's too, also when throughput collapses at high load (a config first measured at
  concurrency 256 that peaks at 2). Loads the search phase measured are reused, not measured again. When even
  the lowest load fails a latency-like (`max`) constraint there is nothing lower: the sweep ends; a user list
  is measured in full (plateau exit only with `early_exit_enable`);
- a `max` constraint failing means the sweep never goes higher; between the last passing and the first
  failing load it bisects (at most `run_config_search_max_binary_search_steps`, only while the failing side
  still promises more than `step_gain`), never below load 1, onto recorded loads when the load generator
  answers a recording (`SearchStrategy.recorded_loads`);
- a failed measurement ends the batch size; a `not_recorded` one (replay) is skipped as missing.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Sequence

import attrs

from modelyzer.kernel.interfaces import RecordedLoads
from modelyzer.kernel.models import (
    STATUS_NOT_RECORDED,
    ConfigVariant,
    Measurement,
    ModelSpec,
    Result,
    RunConfig,
)
from modelyzer.plugins.search.common import Judge, LoadPlan, bisection_load, make_run_config

Walk = Generator[RunConfig, Measurement, None]
STEP_GAIN = 0.01  # a load step (or a client batch size) must gain more than this to keep the sweep going
KNEE_STEPS = 2  # consecutive load steps without that gain end a climb (a single flat step can be noise)
LOAD_MONOTONE = frozenset({"perf_throughput", "output_token_throughput"})  # never better at a lower load


# --- the walk driver ------------------------------------------------------------------------------------------
@attrs.define(eq=False)
class _Walk:
    gen: Walk
    label: str
    next: RunConfig | None = None
    finished: bool = False
    awaiting: bool = False
    proposed: int = 0


class WalkDriver:
    """Runs walks side by side over a shared `measured` map (RunConfig key → Measurement)."""

    def __init__(self, measured: dict[str, Measurement]) -> None:
        self.measured = measured
        self._walks: list[_Walk] = []
        self._pending: dict[str, list[_Walk]] = {}

    def add(self, gen: Walk, label: str = "") -> _Walk:
        """Start `gen` (it runs up to its first unmeasured RunConfig) and return its state."""
        walk = _Walk(gen, label)
        self._walks.append(walk)
        self._step(walk, None)
        return walk

    def _step(self, walk: _Walk, measurement: Measurement | None) -> None:
        try:
            rc = walk.gen.send(measurement) if measurement is not None else next(walk.gen)
            while rc.key in self.measured:
                rc = walk.gen.send(self.measured[rc.key])
        except StopIteration:
            walk.finished, walk.next = True, None
            return
        walk.next = rc

    def propose(self, slots: int = 1) -> list[RunConfig]:
        batch: list[RunConfig] = []
        for walk in self._walks:
            if len(batch) >= max(slots, 1):
                break
            if not walk.finished and walk.next is not None and walk.next.key in self.measured:
                self._step(walk, self.measured[walk.next.key])
            if walk.finished or walk.awaiting or walk.next is None:
                continue
            key = walk.next.key
            walk.awaiting = True
            if key not in self._pending:
                batch.append(walk.next)
                walk.proposed += 1
            self._pending.setdefault(key, []).append(walk)
        return batch

    def observe(self, results: Sequence[Result]) -> None:
        for result in results:
            key = result.run_config.key
            self.measured[key] = result.measurement
            for walk in self._pending.pop(key, []):
                walk.awaiting = False
                self._step(walk, result.measurement)

    @property
    def done(self) -> bool:
        return all(w.finished for w in self._walks)

    def remaining(self, per_walk: int) -> int:
        """Upper bound of RunConfigs still to come when each walk proposes at most `per_walk`."""
        return sum(max(per_walk - w.proposed, 0) for w in self._walks if not w.finished and not w.awaiting)


# --- one variant's load sweep ---------------------------------------------------------------------------------


@attrs.define
class Sweep:
    """The load sweep of one variant (see the module docstring). `walk()` is the generator to drive."""

    spec: ModelSpec
    plan: LoadPlan
    judge: Judge
    variant: ConfigVariant
    start_batch: int | None = None
    step_gain: float = STEP_GAIN
    points: dict[tuple[int, int | str], Measurement] = attrs.field(factory=dict)
    recorded_loads: RecordedLoads | None = None  # the strategy's (`SearchStrategy.recorded_loads`): bisect onto them

    def _rc(self, batch_size: int, value: int | str) -> RunConfig:
        return make_run_config(self.spec, self.variant, self.plan.mode, batch_size, value)

    def _measure(self, batch_size: int, value: int | str) -> Generator[RunConfig, Measurement, Measurement]:
        key = (batch_size, value)
        if key not in self.points:
            self.points[key] = yield self._rc(batch_size, value)
        return self.points[key]

    def _best(self) -> Measurement | None:
        return self.judge.best(list(self.points.values()))

    def walk(self) -> Walk:
        legal = [b for b in self.plan.batch_sizes if not 0 < self.variant.max_batch_size < b]
        if self.start_batch in legal:  # start with the client batch size already measured
            legal.remove(self.start_batch)
            legal.insert(0, self.start_batch)
        previous_best: Measurement | None = None
        for batch_size in legal:
            yield from self._batch_sweep(batch_size)
            best_here = self.judge.best([m for (b, _), m in self.points.items() if b == batch_size])
            if best_here is None:
                continue
            if (
                self.plan.early_exit
                and previous_best is not None
                and not self._improves(best_here, previous_best)
            ):
                break
            if previous_best is None or self.judge.better(best_here, previous_best):
                previous_best = best_here

    def _improves(self, new: Measurement, old: Measurement) -> bool:
        """`new` is better than `old` by more than the step gain (or fixes a constraint `old` broke)."""
        if not self.judge.better(new, old):
            return False
        if self.judge.passes(new) and not self.judge.passes(old):
            return True
        return self.judge.gain(new, old) > self.step_gain

    def _batch_sweep(self, batch_size: int) -> Walk:
        plan = self.plan
        if plan.mode == "request_intervals":
            yield from self._measure(batch_size, plan.values[0])
            return
        grid = list(plan.numeric)
        if not plan.early_exit:
            yield from self._full(batch_size, grid)
            return
        i = 0  # from the lowest load up: the peak is found from below (module docstring)
        first = yield from self._measure(batch_size, grid[i])
        while first.status == STATUS_NOT_RECORDED and i + 1 < len(grid):
            i += 1
            first = yield from self._measure(batch_size, grid[i])
        if not first.ok or self.judge.load_failure(first) > 0:
            return  # failed, or even the lowest load breaks a latency-like constraint: nothing lower to try
        yield from self._up(batch_size, grid, i)

    def _full(self, batch_size: int, grid: list[int]) -> Walk:
        """Every value of a user list, ascending; stops only where a `max` constraint already fails widely."""
        for value in grid:
            m = yield from self._measure(batch_size, value)
            if m.status == STATUS_NOT_RECORDED:
                continue
            if not m.ok or self.judge.deep_failing(m):
                return

    def _up(self, batch_size: int, grid: list[int], i: int) -> Walk:
        """Climb from passing index `i` to the knee (or bisect the latency boundary when a load breaks it)."""
        last_passing = grid[i]
        best = self.points[(batch_size, grid[i])]
        flat = 0  # consecutive steps without gain: the knee is two of them (one can be noise)
        for value in grid[i + 1 :]:
            m = yield from self._measure(batch_size, value)
            if m.status == STATUS_NOT_RECORDED:
                continue
            if not m.ok:
                return
            if self.judge.load_failure(m) > 0:
                yield from self._bisect(batch_size, last_passing, value)
                return
            gained = self._improves(m, best)
            if self.judge.better(m, best):
                best = m
            last_passing = value
            flat = 0 if gained else flat + 1
            if flat >= KNEE_STEPS and not self._better_known_above(batch_size, grid, value, best):
                return  # the knee

    def _better_known_above(self, batch_size: int, grid: list[int], value: int, best: Measurement) -> bool:
        """A load above `value` already measured (passing) that beats `best` by more than the step gain."""
        return any(
            (m := self.points.get((batch_size, v))) is not None and m.ok and self.judge.passes(m)
            and self._improves(m, best) for v in grid if v > value)

    def _bisect(self, batch_size: int, passing: int, failing: int) -> Walk:
        """Binary search between a passing and a failing load while the failing side promises a gain."""
        recorded = self.recorded_loads(self._rc(batch_size, passing)) if self.recorded_loads else None
        for _ in range(self.plan.binary_steps):
            middle = bisection_load(passing, failing, recorded)
            if middle is None:
                return
            low, high = self.points[(batch_size, passing)], self.points[(batch_size, failing)]
            if high.ok and self.judge.gain(high, low) * crossing(self.judge, low, high) <= self.step_gain:
                return  # nothing to win between them: the constraint binds about where the objective stops
            m = yield from self._measure(batch_size, middle)
            if not m.ok:
                return
            if self.judge.load_failure(m) == 0:
                passing = middle
            else:
                failing = middle


# --- which variants get a sweep -------------------------------------------------------------------------------
def boundary_bonus(best: Result, group: Sequence[Result], judge: Judge) -> float:
    """Objective gain a variant probably has between its best passing load and a failing load at most twice
    as high (a `max` constraint broken): the gain of the failing point, scaled by where the constraint metric
    crosses its bound (linear interpolation). 0 without such a bracket. Used to rank variants for the sweep, since on a coarse
    load grid the best config at the constraint boundary often measures a little below another one."""
    load = best.run_config.load
    if not judge.passes(best.measurement) or load.mode == "request_intervals" or not isinstance(load.value, int):
        return 0.0
    above = [
        r for r in group
        if r.measurement.ok and r.run_config.load.batch_size == load.batch_size
        and isinstance(r.run_config.load.value, int) and load.value < r.run_config.load.value <= 2 * load.value
        and judge.load_failure(r.measurement) > 0
    ]
    if not above:
        return 0.0
    fail = min(above, key=lambda r: int(r.run_config.load.value or 0))
    gain = judge.gain(fail.measurement, best.measurement)
    return gain * crossing(judge, best.measurement, fail.measurement) if gain > 0 else 0.0


def crossing(judge: Judge, passing: Measurement, failing: Measurement) -> float:
    """Where, between a passing and a failing measurement (0 → 1), the violated `max` constraints cross
    their bounds, by linear interpolation of each constrained metric (the earliest crossing)."""
    low, high = judge.values(passing), judge.values(failing)
    fraction = 1.0
    for c in judge.spec.constraints:
        if c.max is None or c.tag not in low or c.tag not in high or high[c.tag] <= c.max:
            continue
        span = high[c.tag] - low[c.tag]
        fraction = min(fraction, (c.max - low[c.tag]) / span if span > 0 else 0.0)
    return max(fraction, 0.0)


def top_variants(results: Sequence[Result], judge: Judge, top_n: int, include_default: bool = True) -> list[Result]:
    """The best result of each of the `top_n` best variants (passing ones if any pass), plus the default's.

    Variants are told apart by their config (not their name): the results come straight from a strategy.
    Passing variants are ordered by their best measurement plus their `boundary_bonus`.
    """
    by_variant: dict[str, list[Result]] = {}
    for r in results:
        if r.measurement.ok:
            by_variant.setdefault(r.run_config.variant.config_hash, []).append(r)
    bests: list[Result] = []
    bonus: dict[int, float] = {}
    for group in by_variant.values():
        best = judge.best([r.measurement for r in group])
        chosen = next(r for r in group if r.measurement is best)
        bests.append(chosen)
        bonus[id(chosen)] = boundary_bonus(chosen, group, judge)

    def cmp(a: Result, b: Result) -> int:
        pa, pb = judge.passes(a.measurement), judge.passes(b.measurement)
        if pa and pb:
            value = judge.gain(a.measurement, b.measurement) + bonus[id(a)] - bonus[id(b)]
            return -1 if value > 0 else (1 if value < 0 else 0)
        if judge.better(a.measurement, b.measurement):
            return -1
        return 1 if judge.better(b.measurement, a.measurement) else 0

    bests.sort(key=functools.cmp_to_key(cmp))
    if any(judge.passes(r.measurement) for r in bests):
        chosen_list = [r for r in bests if judge.passes(r.measurement)][:top_n]
    else:
        chosen_list = bests[:top_n]
    if include_default:
        chosen_list += [r for r in bests if r.run_config.variant.is_default and r not in chosen_list]
    return chosen_list


def sweeps_for(
    spec: ModelSpec, plan: LoadPlan, judge: Judge, results: Sequence[Result], top_n: int, step_gain: float = STEP_GAIN,
    recorded_loads: RecordedLoads | None = None,
) -> list[Sweep]:
    """A Sweep for each top variant and the default (the default's first: its peak is the reference of "gain over
    default", and the search measured it at one load only), climbing from the lowest load with the client batch
    size measured best first, fed with every load already measured (bisecting onto `recorded_loads` when the
    load generator answers only those)."""
    out = []
    chosen = top_variants(results, judge, top_n)
    for r in sorted(chosen, key=lambda r: not r.run_config.variant.is_default):
        sweep = Sweep(spec, plan, judge, r.run_config.variant, start_batch=r.run_config.load.batch_size,
                      step_gain=step_gain, recorded_loads=recorded_loads)
        for other in results:  # everything already known about this variant's loads
            if other.run_config.variant.config_hash == r.run_config.variant.config_hash:
                load = other.run_config.load
                if load.mode == plan.mode and load.value is not None:
                    sweep.points[(load.batch_size, load.value)] = other.measurement
        out.append(sweep)
    return out
