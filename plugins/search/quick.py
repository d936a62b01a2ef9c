"""The `quick` search strategy: Model Analyzer's hill climbing, then a load sweep that uses what it measured.

Search space (`search_space.config_space`): max_batch_size (powers of two, batching models only) × instance
count, plus every `model_config_parameters` leaf that lists choices (e.g. the dynamic batching queue delay);
each dimension is bounded by the `run_config_search_*` options (Model Analyzer's quick search is unbounded
unless they are set). Composing models (ensembles, BLS) are not dimensions yet: a RunConfig carries one variant.

Evaluating a coordinate: Model Analyzer measures it once, at `2 × max_batch_size × instances`. Here that
formula load is snapped onto the sweep's grid (`formula_load`) so the sweep reuses it, and with a latency-like
(`max`) constraint the coordinate is judged by its best *passing* load: the first load is the formula scaled
by what the nearest evaluated coordinate needed, a failing load is lowered by the violation (Little's law,
`lower_load`), a passing one below the formula is raised while it passes and gains. Without this a big
config that passes at a lower load looks like a failure and the climb never gets there.

The climb (`HillClimb`, Model Analyzer §3.3, whose algorithm is the floor here): start at the all-minimum
coordinate; measure neighbours within radius 3 (fast mode: the ones covering the most new per-dimension
values; slow mode near a constraint boundary: the ±1 neighbours); step by the objective-weighted gradient
(thresholds 0.09 / 0.3 / 1.0 → 1..3 index steps; a failing home follows the constraint-violation gradient),
or in slow mode to the best passing neighbour; step back toward the best coordinate when a home fails after
one passed; stop when the home stays or comes back twice. Beyond Model Analyzer: when the gradient says
"stay", the ±1 neighbours of the final home are checked (slow mode) before stopping; measured neighbours are
used even when fewer than three exist; a coordinate whose smaller-or-equal neighbour (in max_batch_size,
instances, queue delay) fails a latency-like constraint by more than 2× at its lowest load is not measured.

After the climb (unless `concurrency_sweep_disable`): the load sweep (`load_sweep.Sweep`) of the
`num_configs_per_model` best variants and the default config, started from their measured loads — Model
Analyzer's sweeper never sees a measurement (bug 9.2.1).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import SearchStrategy
from modelyzer.kernel.models import STATUS_SKIPPED, ConfigVariant, Measurement, ModelSpec, Result, RunConfig
from modelyzer.plugins.search.common import (
    Judge,
    LoadPlan,
    formula_load,
    load_plan,
    make_run_config,
)
from modelyzer.plugins.search.joint import Exhaustive, JointSpace, evaluate_group, space_of
from modelyzer.plugins.search.load_sweep import STEP_GAIN, Walk, WalkDriver, sweeps_for
from modelyzer.plugins.search.space import ConfigSpace

RADIUS = 3
MIN_INITIALIZED = 3
TRANSLATION_LIST = (0.09, 0.3, 1.0)

Coord = tuple[int, ...]


class HillClimb:
    """Model Analyzer's neighbourhood hill climbing over the coordinates of a ConfigSpace.

    Driven from outside: `wanted(n, pending)` returns up to n coordinates to measure next (an empty list
    while it waits for `pending` ones, or when `done`), `record(coord, measurement)` feeds a result back.
    """

    def __init__(self, space: ConfigSpace | JointSpace, judge: Judge) -> None:
        self.space = space
        self.judge = judge
        self.limits = [len(d) - 1 for d in space.dimensions]
        self.results: dict[Coord, Measurement] = {}
        self.visits: Counter[Coord] = Counter()
        self.home_passed = False
        self.polished: set[Coord] = set()
        self.done = False
        self._move(tuple(0 for _ in self.limits), slow=False)

    # neighbourhood -----------------------------------------------------------------------------------------
    def _move(self, home: Coord, slow: bool) -> None:
        self.home = home
        self.forced_slow = slow
        self.home_checked = False
        self.visits[home] += 1
        offsets = itertools.product(range(-RADIUS, RADIUS + 1), repeat=len(self.limits))
        self.neighborhood: list[Coord] = []
        for offset in offsets:
            if math.sqrt(sum(o * o for o in offset)) > RADIUS:
                continue
            coord = tuple(h + o for h, o in zip(home, offset, strict=True))
            if all(0 <= c <= hi for c, hi in zip(coord, self.limits, strict=True)):
                self.neighborhood.append(coord)

    def _neighbours(self) -> list[Coord]:
        return [c for c in self.neighborhood if c != self.home]

    def _adjacent(self) -> list[Coord]:
        return [c for c in self._neighbours() if sum(abs(a - b) for a, b in zip(c, self.home, strict=True)) == 1]

    def record(self, coord: Coord, measurement: Measurement) -> None:
        self.results[coord] = measurement

    def best(self) -> Coord | None:
        best: Coord | None = None
        for coord, m in self.results.items():
            if m.ok and (best is None or self.judge.better(m, self.results[best])):
                best = coord
        return best

    def predicted_failing(self, coord: Coord) -> bool:
        """A measured coordinate ≤ `coord` in every load-increasing dimension (equal elsewhere) fails widely."""
        dims = self.space.dimensions
        for other, m in self.results.items():
            if m.ok and self.judge.deep_failing(m) and all(
                (c >= o) if d.load_increasing else (c == o) for c, o, d in zip(coord, other, dims, strict=True)
            ):
                return True
        return False

    # the algorithm -----------------------------------------------------------------------------------------
    def _slow(self) -> bool:
        if self.forced_slow:
            return True
        home = self.results.get(self.home)
        if home is None or not home.ok:
            return False
        measured = [self.results[c] for c in self._neighbours() if c in self.results and self.results[c].ok]
        if self.judge.passes(home):
            return any(not self.judge.passes(m) for m in measured)
        return any(self.judge.passes(m) for m in measured)

    def _known(self, coord: Coord) -> bool:
        return coord in self.results or self.predicted_failing(coord)

    def _initialized(self) -> bool:
        if self._slow():
            return all(self._known(c) for c in self._adjacent())
        valid = [c for c in self._neighbours() if c in self.results and self.results[c].ok]
        return len(valid) >= MIN_INITIALIZED

    def _check_home(self) -> None:
        """Step back when the home has no measurement, or fails after an earlier home passed."""
        self.home_checked = True
        home = self.results[self.home]
        if home.ok and self.judge.passes(home):
            self.home_passed = True
            return
        if home.ok and not self.home_passed:
            return
        target = self.best()
        if target is None:
            self.done = True
            return
        nearest = min(self.neighborhood, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, target, strict=True)))
        if nearest == self.home:
            self.done = True
            return
        self._move(nearest, slow=True)

    def _step(self) -> None:
        home = self.results[self.home]
        if self._slow():
            candidates = [c for c in self.neighborhood if c in self.results and self.judge.passes(self.results[c])]
            if not candidates:
                self.done = True
                return
            new = candidates[0]
            for c in candidates[1:]:
                if self.judge.better(self.results[c], self.results[new]):
                    new = c
        else:
            new = self._gradient_step(home)
            if new == self.home and self.home not in self.polished and home.ok:
                self.polished.add(self.home)  # before stopping, check every ±1 neighbour of the final home
                self.forced_slow = True
                return
        if new == self.home or self.visits[new] >= 2:
            self.done = True
            return
        self._move(new, slow=False)

    def _gradient_step(self, home: Measurement) -> Coord:
        num = [0.0] * len(self.limits)
        den = [0.0] * len(self.limits)
        home_passes = home.ok and self.judge.passes(home)
        for coord in self._neighbours():
            m = self.results.get(coord)
            if m is None or not m.ok:
                continue
            if home_passes or not home.ok:
                weight = self.judge.gain(m, home) if home.ok else 1.0
            else:
                weight = self.judge.failure(home) - self.judge.failure(m)
            for d, (c, h) in enumerate(zip(coord, self.home, strict=True)):
                offset = c - h
                if offset:
                    num[d] += weight if offset > 0 else -weight
                    den[d] += abs(offset)
        step = []
        for n, dn in zip(num, den, strict=True):
            value = n / dn if dn else 0.0
            magnitude = sum(1 for t in TRANSLATION_LIST if abs(value) > t)
            step.append(int(math.copysign(magnitude, value)) if magnitude else 0)
        return tuple(
            min(max(h + s, 0), hi) for h, s, hi in zip(self.home, step, self.limits, strict=True)
        )

    def _pick(self, n: int, pending: set[Coord]) -> list[Coord]:
        if self._slow():
            free = [c for c in self._adjacent() if not self._known(c) and c not in pending]
            return free[:n]
        candidates = [c for c in self._neighbours() if not self._known(c) and c not in pending]
        covered = [{c[d] for c in self.neighborhood if c in self.results or c in pending} | {self.home[d]}
                   for d in range(len(self.limits))]
        picks: list[Coord] = []
        while candidates and len(picks) < n:
            chosen = max(candidates, key=lambda c: sum(1 for d, v in enumerate(c) if v not in covered[d]))
            picks.append(chosen)
            candidates.remove(chosen)
            for d, v in enumerate(chosen):
                covered[d].add(v)
        return picks

    def wanted(self, n: int, pending: set[Coord]) -> list[Coord]:
        while not self.done:
            if self.home not in self.results:
                if self.home in pending:
                    return [] if self.forced_slow else self._pick(n, pending)
                return [self.home] + ([] if self.forced_slow else self._pick(n - 1, pending | {self.home}))
            if not self.home_checked:
                self._check_home()
                continue
            if self._initialized():
                self._step()
                continue
            picks = self._pick(n, pending)
            if picks or pending:
                return picks
            if any(c in self.results and self.results[c].ok for c in self._neighbours()):
                self._step()  # every neighbour is known but fewer than MIN_INITIALIZED are valid
                continue
            self.done = True
        return []


class QuickSearch(SearchStrategy):
    """Hill climbing over the config space, then the load sweep of the best variants (module docstring); a
    concurrent group's joint space (`joint`) is climbed the same way."""

    searches_groups = True

    def __init__(self, spec: ModelSpec, base_config: dict[str, Any], config: ProfileConfig) -> None:
        self.spec = spec
        self.judge = Judge(spec)
        self.plan = load_plan(spec, config)
        self.space: ConfigSpace | JointSpace = space_of(spec, base_config, config)
        self.climb: HillClimb | Exhaustive = self._climb(config)
        self.top_n = config.num_configs_per_model
        self.sweep_enabled = not config.concurrency_sweep_disable
        self.measured: dict[str, Measurement] = {}
        self.results: list[Result] = []
        self.driver = WalkDriver(self.measured)
        self._evaluating: set[Coord] = set()
        self._factors: dict[Coord, float] = {}  # coordinate → its best passing load / its formula load
        self._fail_factors: dict[Coord, float] = {}  # coordinate → its first failing load / its formula load
        self.upper_constraints = any(c.max is not None for c in spec.constraints)
        self._sweeping = False
        default = self.space.default_variant()
        if self._legal_batch(default) is not None:
            self.driver.add(self._evaluate(default, None), "default")

    def _climb(self, config: ProfileConfig) -> HillClimb | Exhaustive:
        return HillClimb(self.space, self.judge)

    def _legal_batch(self, variant: ConfigVariant) -> int | None:
        if variant.members:
            return next((b for b in self.plan.batch_sizes
                         if not any(0 < v.max_batch_size < b for v in variant.members)), None)
        return next((b for b in self.plan.batch_sizes if not 0 < variant.max_batch_size < b), None)

    def _evaluate(self, variant: ConfigVariant, coord: Coord | None) -> Walk:
        """Measure a variant near its formula load and record its best measurement for the climb.

        With a latency-like (`max`) constraint the first load is the formula scaled by what the nearest
        evaluated coordinate needed (`_start_load`); from there the load goes down while a `max` constraint
        fails (`lower_load`), or back up toward the formula while it passes and still gains."""
        batch = self._legal_batch(variant)
        if batch is None:
            if coord is not None:
                self._record(coord, Measurement("", status=STATUS_SKIPPED, error="batch size > max_batch_size"))
            return
        if variant.members:  # a concurrent group: every model at its own formula load (lowered while over budget)
            m = yield from evaluate_group(self.spec, variant, self.plan, self.judge, batch)
            if coord is not None:
                self._record(coord, m)
            return
        formula = formula_load(variant, self.plan)
        value = self._start_load(coord, formula)
        points: list[tuple[int | str, Measurement]] = []
        m = yield make_run_config(self.spec, variant, self.plan.mode, batch, value)
        points.append((value, m))
        if m.ok and self.judge.load_failure(m) > 0:
            while points[-1][1].ok and self.judge.load_failure(points[-1][1]) > 0:
                lower = lower_load(self.plan, value, self.judge, points[-1][1])
                if lower is None:
                    break
                value = lower
                points.append((value, (yield make_run_config(self.spec, variant, self.plan.mode, batch, value))))
        elif m.ok and value != formula:
            ceiling = self._failing_load(coord, formula)
            for higher in [v for v in self.plan.numeric if int(value) < v <= min(int(formula), ceiling)]:
                m = yield make_run_config(self.spec, variant, self.plan.mode, batch, higher)
                points.append((higher, m))
                previous = points[-2][1]
                if not m.ok or self.judge.load_failure(m) > 0 or self.judge.gain(m, previous) <= STEP_GAIN:
                    break
        if coord is None:
            return
        best = self.judge.best([p for _, p in points])
        chosen = best if best is not None else points[-1][1]
        if self.plan.mode != "request_intervals":
            passing = [int(v) for v, p in points if self.judge.passes(p)]
            load = max(passing) if passing else min(int(v) for v, _ in points)
            self._factors[coord] = load / int(formula)
            failing = [int(v) for v, p in points if p.ok and self.judge.load_failure(p) > 0 and int(v) > load]
            if failing:
                self._fail_factors[coord] = min(failing) / int(formula)
        self._record(coord, chosen)

    def _start_load(self, coord: Coord | None, formula: int | str) -> int | str:
        """The formula load scaled by the nearest evaluated coordinate's (passing load / formula load), snapped
        down onto the grid: neighbouring configs need about the same share of their formula load."""
        if coord is None or self.plan.mode == "request_intervals" or not self.upper_constraints:
            return formula
        grid = list(self.plan.numeric)
        value = int(formula)
        nearest = self._nearest(coord, self._factors)
        if nearest is not None:
            target = value * self._factors[nearest]
            value = max([v for v in grid if v <= target] or [grid[0]])
        return value

    def _nearest(self, coord: Coord, known: dict[Coord, float]) -> Coord | None:
        if not known:
            return None
        return min(known, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, coord, strict=True)))

    def _failing_load(self, coord: Coord | None, formula: int | str) -> int:
        """The load at which the nearest coordinate that failed a `max` constraint started failing, scaled to
        this coordinate's formula load (no upward probe there); unbounded when none is known."""
        nearest = self._nearest(coord, self._fail_factors) if coord is not None else None
        return int(int(formula) * self._fail_factors[nearest]) if nearest is not None else 1 << 62

    def _record(self, coord: Coord, measurement: Measurement) -> None:
        self._evaluating.discard(coord)
        self.climb.record(coord, measurement)

    def propose(self, slots: int = 1) -> list[RunConfig]:
        slots = max(slots, 1)
        batch = self.driver.propose(slots)
        while len(batch) < slots and not self.climb.done:
            coords = self.climb.wanted(slots - len(batch), set(self._evaluating))
            if not coords:
                break
            for coord in coords:
                self._evaluating.add(coord)
                self.driver.add(self._evaluate(self.space.variant(coord), coord), str(coord))
            batch += self.driver.propose(slots - len(batch))
        if batch or not self.driver.done or not self.climb.done:
            return batch
        if self._sweeping or not self.sweep_enabled:
            return []
        self._sweeping = True
        for sweep in sweeps_for(self.spec, self.plan, self.judge, self.results, self.top_n,
                                recorded_loads=self.recorded_loads):
            self.driver.add(sweep.walk(), f"sweep {sweep.variant.params}")
        return self.driver.propose(slots)

    def observe(self, results: list[Result]) -> None:
        self.results.extend(results)
        self.driver.observe(results)

    @property
    def done(self) -> bool:
        return self.climb.done and self.driver.done and (self._sweeping or not self.sweep_enabled)

    def space_size(self) -> int:
        return int(self.space.size)

    def total_estimate(self) -> int:
        """Upper bound: every coordinate not yet measured (at every load), then full sweeps of the top variants."""
        loads = len(self.plan.values)
        per_sweep = len(self.plan.batch_sizes) * (loads + self.plan.binary_steps)
        if self._sweeping:
            return self.driver.remaining(per_sweep)
        climb = 0 if self.climb.done else max(self.space.size - len(self.climb.results), 0) * loads
        return climb + self.driver.remaining(loads) + (self.top_n + 1) * per_sweep * self.sweep_enabled


def lower_load(plan: LoadPlan, value: int | str, judge: Judge, failing: Measurement) -> int | None:
    """The next load to try below `value` when `failing` breaks a `max` constraint: by Little's law the
    latency shrinks with the load at a saturated server, so aim at `value / violation` (at least one grid
    step down; at least halved for request rate, whose latency is not proportional), or None at the bottom."""
    if plan.mode == "request_intervals":
        return None
    ratio = 1.0 + judge.load_failure(failing)
    if plan.mode == "request_rate":
        ratio = max(ratio, 2.0)
    target = int(value) / ratio
    lower = [v for v in plan.numeric if v < int(value)]
    if not lower:
        return None
    fitting = [v for v in lower if v <= target]
    return max(fitting) if fitting else min(lower)


class JointBruteSearch(QuickSearch):
    """brute for a concurrent group: every combination of the (small) joint space at its formula loads, then
    the load sweep of the best ones (`joint` module docstring)."""

    def _climb(self, config: ProfileConfig) -> HillClimb | Exhaustive:
        assert isinstance(self.space, JointSpace)
        return Exhaustive(self.space, config)


@hookimpl
def register_search_strategies(register: Any) -> None:
    register("quick", QuickSearch)
