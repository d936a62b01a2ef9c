"""The `optuna` search strategy: a seeded TPE study (ask/tell) over config knobs and load, then the load sweep.

Parameters (`<model>::<knob>`, Model Analyzer §3.4): every dimension of `search_space.config_space`
(max_batch_size as powers of two between the search bounds, instance count, and *any*
`model_config_parameters` leaf that lists choices: numbers as ordered indices, others categorical), the load
and the client batch size when several are given. A searched concurrency grid is asked *relative* to the
formula load `2 × max_batch_size × instances` (`relative_load`: same values, but an index means "this share
of saturation" for every config, so TPE can model config and load apart); a user list or request rate is
asked as is; with `use_concurrency_formula` the load is the formula, clamped by both search bounds (Model
Analyzer's bug 9.2.3 ignored the maximum).

Trials: between `min_percentage_of_search_space` and `max_percentage_of_search_space` of the search space
(`optuna_min_trials` / `optuna_max_trials` when set; both kinds set: the tighter bounds). The first trials after
the default are a warm start (`_warm_start`: the ordered config knobs all lowest — quick's start —, all highest,
all middle, each highest alone, at the saturating load); every new best point then queues its ±1 neighbours
along the ordered config knobs (a greedy climb, the side the scores rise toward first; they replace the previous
best's), and with a latency-like constraint a passing trial queues its config one load step higher. Queued
points are asked first; TPE samples whenever the queue is empty. After the minimum,
TPE stops once `optuna_early_exit_threshold` trials brought no improvement above 1% (noise does not count);
then a polish, still within the maximum: the ±1 neighbours of the best point along each ordered config
parameter, greedily, while they improve. A trial that breaks a latency-like constraint makes the same config
at a load lowered by the violation (Little's law) the next trial; one predicted to fail by more than 2× (a
measured point at lower-or-equal config and load already does) is told that failure without a measurement.

Score (maximized): the weighted relative objective gain over the default config (measured first, the
baseline) when a trial passes the constraints, `-2 − violation` when it fails them (below every passing
trial), −10 for a failed measurement; a `not_recorded` replay answer is a failed trial TPE ignores.

Seed and resume: the seed (`optuna_seed`, else random on a fresh profile) is stored in the results DB (`search_state`, scoped by
model and search space); a resumed profile gets the same seed, asks the same trials, the engine answers them
from the stored measurements, and the study goes on where it stopped. With several slots, several trials are
asked at once (TPE's constant liar keeps them apart). After the trials (unless `concurrency_sweep_disable`):
the load sweep of the best variants and the default, fed with every measurement taken (`load_sweep`).
"""

from __future__ import annotations

import math
import random
import warnings
from typing import TYPE_CHECKING, Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import SearchStrategy
from modelyzer.kernel.models import (
    STATUS_NOT_RECORDED,
    ConfigVariant,
    Measurement,
    ModelSpec,
    Result,
    RunConfig,
    stable_hash,
)
from modelyzer.plugins.search.common import (
    Judge,
    SearchState,
    formula_load,
    load_plan,
    make_run_config,
)
from modelyzer.plugins.search.joint import JointSpace, space_of
from modelyzer.plugins.search.load_sweep import WalkDriver, sweeps_for
from modelyzer.plugins.search.optuna_params import Param, load_offset, relative_load, trial_bounds, warm_start
from modelyzer.plugins.search.space import ConfigSpace

if TYPE_CHECKING:  # pragma: no cover
    import optuna

FAILED_SCORE = -10.0
MIN_IMPROVEMENT = 0.01  # a score gain below this (1% relative objective gain) is noise for the early exit
STARTUP_TRIALS = 6  # trials (the warm start's included) before TPE models the space (optuna's default is 10)


class OptunaSearch(SearchStrategy):
    """TPE over config knobs and load, then the load sweep of the best variants (module docstring); a concurrent
    group's joint space (`joint`) is asked the same way, each model's load relative to its own formula load."""

    searches_groups = True

    def __init__(
        self,
        spec: ModelSpec,
        base_config: dict[str, Any],
        config: ProfileConfig,
        *,
        seed: int | None = None,
        state: SearchState | None = None,
    ) -> None:
        self.spec = spec
        self.judge = Judge(spec)
        self.plan = load_plan(spec, config)
        self.space: ConfigSpace | JointSpace = space_of(spec, base_config, config)
        self.formula = config.use_concurrency_formula and self.plan.mode == "concurrency"
        # a searched concurrency grid is asked relative to the formula load (see relative_load)
        self.relative_load = self.plan.mode == "concurrency" and self.plan.searched
        self.params = self._params()
        self.size = 1
        for p in self.params:
            self.size *= p.size
        self.min_trials, self.max_trials = trial_bounds(self.size, config)
        self.threshold = config.optuna_early_exit_threshold
        self.top_n = config.num_configs_per_model
        self.sweep_enabled = not config.concurrency_sweep_disable
        self.scope = f"optuna/{spec.name}/{self._space_hash()}"
        self.state = state if state is not None else SearchState.for_config(config)
        self.seed = self._seed(seed if seed is not None else config.optuna_seed)
        if state is None:
            self.state.close()  # only the seed lives there
        self.study = self._study()
        self.measured: dict[str, Measurement] = {}
        self.results: list[Result] = []
        self._points: dict[tuple[int, ...], Measurement] = {}  # parameter indices → measurement
        self._pending: dict[str, list[tuple[optuna.trial.Trial, tuple[int, ...]]]] = {}
        self._untold: list[tuple[optuna.trial.Trial, Measurement]] = []
        self.baseline: Measurement | None = None
        self._trial_points: dict[int, tuple[int, ...]] = {}
        self._queued: list[tuple[int, ...]] = []  # points asked next, in order (TPE samples when it is empty)
        self._climbing: set[tuple[int, ...]] = set()  # the queued neighbours of the best point (the greedy climb)
        self._asked_points: set[tuple[int, ...]] = set()
        self.best_point: tuple[int, ...] | None = None
        self.polishing = False
        names = [p.name.split("::", 1)[1] for p in self.params]
        self.load_param = names.index(self.plan.mode) if self.plan.mode in names else None
        self.asked = 0
        self.told = 0
        self.best_score: float | None = None
        self.best_trial = -1
        default = self.space.default_variant()
        self._default: RunConfig | None = (
            self._group_run_config(default, None, self._batch(0)) if default.members
            else self._run_config(default, formula_load(default, self.plan), self._batch(0)))
        self.sweeper: WalkDriver | None = None
        self._finished = False
        self.upper_constraints = any(c.max is not None for c in spec.constraints)
        for point in self._warm_start():
            self._enqueue(point)

    # parameters, seed, study ---------------------------------------------------------------------------
    def _params(self) -> list[Param]:
        out = [Param(f"{self.spec.name}::{d.name}", len(d), d.ordered, d.load_increasing) for d in self.space.dimensions]
        if self.plan.mode != "request_intervals" and not self.formula and len(self.plan.values) > 1:
            out.append(Param(f"{self.spec.name}::{self.plan.mode}", len(self.plan.values), True, True))
        if len(self.plan.batch_sizes) > 1:
            out.append(Param(f"{self.spec.name}::batch_sizes", len(self.plan.batch_sizes), True, False))
        return out

    def _space_hash(self) -> str:
        return stable_hash(
            {
                "base": self.space.base_config,
                "dims": [[d.name, list(map(str, d.labels))] for d in self.space.dimensions],
                "fixed": self.space.fixed,
                "loads": list(self.plan.values),
                "batch_sizes": list(self.plan.batch_sizes),
                "formula": self.formula,
            }
        )

    def _seed(self, explicit: int | None) -> int:
        stored = self.state.get(self.scope, "seed")
        seed = explicit if explicit is not None else (int(stored) if stored is not None else random.randint(0, 10000))
        if stored is None or int(stored) != seed:
            self.state.set(self.scope, "seed", seed)
        return seed

    def _warm_start(self) -> list[tuple[int, ...]]:
        """The first trials after the default (`optuna_params.warm_start`)."""
        load = None
        if self.load_param is not None:
            size = self.params[self.load_param].size
            load = (self.load_param, load_offset(self.plan) if self.relative_load else (size - 1) // 2)
        return warm_start(self.params, len(self.space.dimensions), load)

    def _study(self) -> optuna.study.Study:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = optuna.samplers.TPESampler(
                seed=self.seed, n_startup_trials=STARTUP_TRIALS, multivariate=True, constant_liar=True
            )
            return optuna.create_study(direction="maximize", sampler=sampler, study_name=self.spec.name)

    # trials → RunConfigs --------------------------------------------------------------------------------
    def _batch(self, index: int) -> int:
        return self.plan.batch_sizes[index]

    def _run_config(self, variant: Any, value: int | str, batch_size: int) -> RunConfig | None:
        if 0 < variant.max_batch_size < batch_size:
            return None
        return make_run_config(self.spec, variant, self.plan.mode, batch_size, value)

    def _group_run_config(self, variant: ConfigVariant, load_index: int | None, batch_size: int) -> RunConfig | None:
        """A concurrent group's trial: each model at the asked load relative to its own formula load (the same
        share of saturation for every model), or at its formula load (the default, one load, the formula)."""
        if any(0 < v.max_batch_size < batch_size for v in variant.members):
            return None
        members = []
        for member, v in zip(self.spec.members, variant.members, strict=True):
            if load_index is None or self.formula or self.plan.mode == "request_intervals" or len(self.plan.values) == 1:
                value = formula_load(v, self.plan)
            elif self.relative_load:
                value = relative_load(v, self.plan, load_index)
            else:
                value = self.plan.values[load_index]
            members.append(make_run_config(member, v, self.plan.mode, batch_size, value))
        return RunConfig.group(tuple(members))

    def _ask(self, trial: optuna.trial.Trial) -> tuple[tuple[int, ...], RunConfig | None]:
        indices = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for p in self.params:
                if p.ordered:
                    indices.append(trial.suggest_int(p.name, 0, p.size - 1))
                else:
                    indices.append(int(trial.suggest_categorical(p.name, list(range(p.size)))))
        dims = len(self.space.dimensions)
        variant = self.space.variant(indices[:dims])
        rest = dict(zip([p.name.split("::", 1)[1] for p in self.params[dims:]], indices[dims:], strict=True))
        if variant.members:
            return tuple(indices), self._group_run_config(variant, rest.get(self.plan.mode), self._batch(
                rest.get("batch_sizes", 0)))
        if self.formula or self.plan.mode == "request_intervals" or len(self.plan.values) == 1:
            value = formula_load(variant, self.plan)
        elif self.relative_load:
            value = relative_load(variant, self.plan, rest[self.plan.mode])
        else:
            value = self.plan.values[rest[self.plan.mode]]
        batch = self._batch(rest.get("batch_sizes", 0))
        return tuple(indices), self._run_config(variant, value, batch)

    def _predicted_failure(self, point: tuple[int, ...]) -> Measurement | None:
        """A measured point ≤ `point` in every load-increasing parameter (equal elsewhere) failing widely."""
        for other, m in self._points.items():
            if m.ok and self.judge.deep_failing(m) and all(
                (a >= b) if p.load_increasing else (a == b) for a, b, p in zip(point, other, self.params, strict=True)
            ):
                return m
        return None

    def _tpe_stopped(self) -> bool:
        return self.told >= self.min_trials and self.told - 1 - self.best_trial >= self.threshold

    def _can_ask(self) -> bool:
        """Within max trials: queued trials, else TPE until its early exit, else nothing (polish is queued)."""
        if self.asked >= self.max_trials:
            return False
        return bool(self._queued) or not (self._tpe_stopped() or self.polishing)

    def _start_polish(self) -> None:
        """TPE is done and every trial told: queue the neighbours of its best point (greedy local refinement)."""
        if not self.polishing and self._tpe_stopped() and self.best_point is not None and self.told == self.asked:
            self.polishing = True
            self._enqueue_neighbours(self.best_point)

    def _trial_batch(self, slots: int) -> list[RunConfig]:
        batch: list[RunConfig] = []
        if self._default is not None and self._default.key not in self.measured and self._default.key not in self._pending:
            batch.append(self._default)
            self._pending[self._default.key] = []
        while len(batch) < slots:
            self._start_polish()
            if not self._can_ask():
                break
            trial = self._next_trial()
            self.asked += 1
            point, rc = self._ask(trial)
            self._trial_points[trial.number] = point
            self._asked_points.add(point)
            if point in self._queued:
                self._queued.remove(point)
            if rc is None:
                self._tell(trial, Measurement("", status="skipped", error="batch size > max_batch_size"))
                continue
            predicted = self._predicted_failure(point)
            if predicted is not None:
                self._tell(trial, predicted)
            elif rc.key in self.measured:
                self._points[point] = self.measured[rc.key]
                self._tell(trial, self.measured[rc.key])
            elif rc.key in self._pending:
                self._pending[rc.key].append((trial, point))
            else:
                self._pending[rc.key] = [(trial, point)]
                batch.append(rc)
        return batch

    # scores -------------------------------------------------------------------------------------------------
    def score(self, m: Measurement) -> float:
        """Relative gain over the default when passing; below every passing trial when failing."""
        if not m.ok:
            return FAILED_SCORE
        failure = self.judge.failure(m)
        if failure > 0:
            return -2.0 - min(failure, 7.0)
        if self.baseline is None:
            return 0.0
        return self.judge.gain(m, self.baseline)

    def _tell(self, trial: optuna.trial.Trial, m: Measurement) -> None:
        self._untold.append((trial, m))
        self._flush()

    def _flush(self) -> None:
        """Tell trials in order once the baseline (the default, else the first successful trial) is known."""
        import optuna

        if self.baseline is None and self._default is not None and self._default.key not in self.measured:
            return
        while self._untold:
            trial, m = self._untold.pop(0)
            if self.baseline is None and m.ok:
                self.baseline = m
            if m.status == STATUS_NOT_RECORDED:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                value = self.score(m)
                self.study.tell(trial, value)
                point = self._trial_points.get(trial.number)
                if self.best_score is None or value > self.best_score:
                    if self.best_score is None or value > self.best_score + MIN_IMPROVEMENT:
                        self.best_trial = self.told  # noise-level gains do not postpone the early exit
                    self.best_score, self.best_point = value, point
                    if point is not None:
                        self._enqueue_neighbours(point, load=not self.polishing and self.upper_constraints)
                if point is not None and m.ok and self.judge.load_failure(m) > 0:
                    self._enqueue_lower_load(point, m)
                elif point is not None and m.ok and self.upper_constraints and self.judge.passes(m):
                    self._enqueue_higher_load(point)
            self.told += 1

    # trials the study is asked to run next --------------------------------------------------------------
    def _known(self, point: tuple[int, ...]) -> bool:
        return point in self._asked_points or point in self._queued or self._predicted_failure(point) is not None

    def _enqueue(self, point: tuple[int, ...], front: bool = False) -> None:
        if self._known(point):
            return
        self._queued.insert(0, point) if front else self._queued.append(point)

    def _next_trial(self) -> optuna.trial.Trial:
        """The first queued point as a trial (handed to the study right before it is asked), else TPE's sample."""
        while self._queued:
            point = self._queued.pop(0)
            self._climbing.discard(point)
            if point in self._asked_points:
                continue
            params: dict[str, Any] = {p.name: index for p, index in zip(self.params, point, strict=True)}
            self.study.enqueue_trial(params, skip_if_exists=False)
            break
        return self.study.ask()

    def _enqueue_neighbours(self, point: tuple[int, ...], load: bool = False) -> None:
        """The ±1 neighbours of a new best point along every ordered config parameter (and the load with `load`)
        are asked next, instead of those of the previous best: a greedy climb between TPE's trials, and the
        polish after them (there the load is refined by the sweep that follows)."""
        self._queued = [q for q in self._queued if q not in self._climbing]
        self._climbing.clear()
        for i, p in enumerate(self.params):
            if not p.ordered or (i == self.load_param and not load):
                continue
            for step in ((1,) if i == self.load_param else (self._trend(i), -self._trend(i))):
                if 0 <= point[i] + step < p.size:
                    neighbour = point[:i] + (point[i] + step,) + point[i + 1 :]
                    if not self._known(neighbour):
                        self._climbing.add(neighbour)
                        self._enqueue(neighbour)

    def _trend(self, i: int) -> int:
        """+1 when the scores measured so far rise with parameter `i` (their covariance), else −1: the climb
        tries that side of the best point first."""
        told = [(point[i], self.score(m)) for point, m in self._points.items() if m.ok]
        if len(told) < 2:
            return 1
        mean_x = sum(x for x, _ in told) / len(told)
        mean_s = sum(v for _, v in told) / len(told)
        return 1 if sum((x - mean_x) * (v - mean_s) for x, v in told) >= 0 else -1

    def _enqueue_higher_load(self, point: tuple[int, ...]) -> None:
        """A trial passed a latency-like constraint: ask the same config one load step higher, so every passing
        config is bracketed by the constraint (as quick raises a passing load) and the sweep ranks it by what it
        reaches at the boundary, not by a load that left headroom."""
        i = self.load_param
        if i is not None and point[i] + 1 < self.params[i].size:
            self._enqueue(point[:i] + (point[i] + 1,) + point[i + 1 :])

    def _enqueue_lower_load(self, point: tuple[int, ...], m: Measurement) -> None:
        """A latency-like constraint failed: ask the same config at a load lowered by the violation (Little's
        law: at a saturated server latency is proportional to the load)."""
        if self.load_param is None:
            return
        i = self.load_param
        steps = max(1, math.ceil(math.log2(1.0 + self.judge.load_failure(m))))
        lower = max(point[i] - steps, 0)
        if lower < point[i]:
            self._enqueue(point[:i] + (lower,) + point[i + 1 :])

    # the strategy --------------------------------------------------------------------------------------------
    def propose(self, slots: int = 1) -> list[RunConfig]:
        slots = max(slots, 1)
        if self.sweeper is None and not self._finished:
            batch = self._trial_batch(slots)
            if batch or self._pending:
                return batch
            if not self.sweep_enabled:
                self._finished = True
                return []
            self.sweeper = WalkDriver(self.measured)
            for sweep in sweeps_for(self.spec, self.plan, self.judge, self.results, self.top_n,
                                    recorded_loads=self.recorded_loads):
                self.sweeper.add(sweep.walk(), f"sweep {sweep.variant.params}")
        if self.sweeper is None:
            return []
        batch = self.sweeper.propose(slots)
        if not batch and self.sweeper.done:
            self._finished = True
        return batch

    def observe(self, results: list[Result]) -> None:
        for result in results:
            key = result.run_config.key
            self.measured[key] = result.measurement
            self.results.append(result)
            if self._default is not None and key == self._default.key and result.measurement.ok:
                self.baseline = result.measurement
            for trial, point in self._pending.pop(key, []):
                self._points[point] = result.measurement
                self._untold.append((trial, result.measurement))
        self._flush()
        if self.sweeper is not None:
            self.sweeper.observe(results)

    @property
    def done(self) -> bool:
        return self._finished

    def space_size(self) -> int:
        return int(self.space.size)

    def total_estimate(self) -> int:
        """Upper bound: the trials not yet asked, then full sweeps of the top variants and the default."""
        per_sweep = len(self.plan.batch_sizes) * (len(self.plan.values) + self.plan.binary_steps)
        if self.sweeper is not None:
            return self.sweeper.remaining(per_sweep)
        trials = max(self.max_trials - self.asked, 0) if self._can_ask() else 0
        default = int(self._default is not None and self._default.key not in self.measured)
        return trials + default + (self.top_n + 1) * per_sweep * self.sweep_enabled


@hookimpl
def register_search_strategies(register: Any) -> None:
    register("optuna", OptunaSearch)
