"""What every search strategy shares: config overlays, the load plan, judging measurements, persisted state.

- `generate_combinations` / `deep_merge`: `model_config_parameters` → config overlays → full model configs
  (Model Analyzer's list semantics, following the ModelConfig protobuf schema).
- `doubled_list`, `gain_valid`, `boundary`: the power-of-two load grid, the throughput-plateau rule and the
  constraint boundary of a sweep (Model Analyzer §3.2/§3.5).
- `LoadPlan` / `load_plan()`: which load a model is profiled by (concurrency, request rate or perf_analyzer's
  request intervals), the values searched, client batch sizes, early exit and binary-search steps.
- `make_run_config()`: one RunConfig of a spec under one load; `formula_load()`: the load a variant is first
  measured at by quick (and by optuna with `use_concurrency_formula`).
- `Judge`: a spec's objectives and constraints applied to measurements (passes, failure, comparisons).
- `SearchState`: JSON values by (scope, name) kept by the Store in the results DB (`search_state`), so a
  strategy can keep state across resumes (the optuna seed).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from google.protobuf.descriptor import FieldDescriptor
from tritonclient.grpc import model_config_pb2

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.models import ConfigVariant, Constraint, LoadSpec, Measurement, ModelSpec, RunConfig
from modelyzer.kernel.ranking import failures, measurement_values, score
from modelyzer.kernel.store import Store

THROUGHPUT = "perf_throughput"
MINIMUM_TRIES = 4  # results needed before the plateau rule may stop a sweep
MINIMUM_GAIN = 0.05  # relative throughput gain over the last MINIMUM_TRIES results that keeps a sweep going


# --- model_config_parameters → overlays ----------------------------------------------------------------
def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _dict_combos(
    value: dict[str, Any], field_for: Callable[[str], FieldDescriptor | None], path: str
) -> list[dict[str, Any]]:
    keys = list(value)
    choices = [_field_combos(value[k], field_for(k), f"{path}.{k}") for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def _element_combos(value: Any, field: FieldDescriptor | None, path: str) -> list[Any]:
    """Alternatives of one value that is not itself a list of choices (a message expands its fields)."""
    if not isinstance(value, dict):
        return [value]
    if field is not None and _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        return _dict_combos(value, lambda _key: value_field, path)
    fields = field.message_type.fields_by_name if field is not None and field.message_type is not None else {}
    return _dict_combos(value, fields.get, path)


def _field_combos(value: Any, field: FieldDescriptor | None, path: str) -> list[Any]:
    """Alternatives of one field value, Model Analyzer style.

    Singular field: a list is a list of choices (each expanded). Repeated field (e.g. `instance_group`,
    `preferred_batch_size`): a list is the field's value, each element expanded and combined, so
    `instance_group: [{kind: KIND_GPU, count: [1, 2]}]` gives two instance groups; a list of lists is a list
    of choices of whole values. Unknown fields are treated as singular.
    """
    if field is not None and field.is_repeated and not _is_map(field):
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            alternatives = value
        else:
            alternatives = [value if isinstance(value, list) else [value]]
        out: list[Any] = []
        for alternative in alternatives:
            per_element = [_element_combos(e, field, path) for e in alternative]
            out.extend(list(combo) for combo in itertools.product(*per_element))
        return out
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"model_config_parameters{path}: empty list of choices")
        return [c for alternative in value for c in _element_combos(alternative, field, path)]
    return _element_combos(value, field, path)


def generate_combinations(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Expand `model_config_parameters` (without `max_batch_size`) into the list of config overlays."""
    return _dict_combos(params, model_config_pb2.ModelConfig.DESCRIPTOR.fields_by_name.get, "")


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by `overlay`: nested dicts merge, everything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def doubled_list(low: int, high: int) -> list[int]:
    """Powers-of-two walk from `low` (0 counts as 1) while ≤ `high`; at least `[max(low, 1)]`."""
    value = max(int(low), 1)
    out = []
    while value <= high:
        out.append(value)
        value *= 2
    return out or [max(int(low), 1)]


# --- plateau rule and constraint boundary ----------------------------------------------------------------
def throughput(measurement: Measurement) -> float:
    return float(measurement.values().get(THROUGHPUT, 0.0) or 0.0)


def gain_valid(throughputs: Sequence[float]) -> bool:
    """False when the last MINIMUM_TRIES values gained at most MINIMUM_GAIN over the first of them."""
    if len(throughputs) < MINIMUM_TRIES:
        return True
    last = list(throughputs[-MINIMUM_TRIES:])
    first, best = last[0], max(last)
    if first <= 0:
        return best > 0
    return (best - first) / first > MINIMUM_GAIN


def boundary(points: Sequence[tuple[int, bool]]) -> tuple[int, int] | None:
    """The last (passing value, failing value) pair of neighbours in a sweep sorted by value, if any."""
    for i in range(len(points) - 1, 0, -1):
        if points[i - 1][1] and not points[i][1]:
            return points[i - 1][0], points[i][0]
    return None


def bisection_load(passing: int, failing: int, recorded: Sequence[int] | None = None) -> int | None:
    """The load to measure between a passing and a failing one: their middle, or, when the load generator answers
    only `recorded` loads (`SearchStrategy.recorded_loads`), the recorded load strictly between them nearest to
    the middle (ties: the lower); None when there is none (or no integer strictly between them, or below 1)."""
    middle = (passing + failing) // 2
    if recorded is not None:
        inside = [v for v in recorded if min(passing, failing) < v < max(passing, failing)]
        return min(inside, key=lambda v: (abs(v - middle), v)) if inside else None
    if middle < 1 or middle in (passing, failing) or not min(passing, failing) < middle < max(passing, failing):
        return None
    return middle


# --- the load plan -------------------------------------------------------------------------------------------
@attrs.frozen
class LoadPlan:
    """How a model is loaded: `mode` (concurrency / request_rate / request_intervals) and the values.

    `values` is sorted; `searched` says it is the power-of-two grid between the search bounds (not a user list,
    not disabled search, not request intervals). `early_exit` is Model Analyzer's rule (on when searched or
    `early_exit_enable`), `binary_steps` the bisection budget at a constraint boundary.
    """

    mode: str
    values: tuple[int | str, ...]
    batch_sizes: tuple[int, ...]
    searched: bool
    early_exit: bool
    binary_steps: int
    low: int = 1
    high: int = 1024

    @property
    def numeric(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.values) if self.mode != "request_intervals" else ()


def load_plan(spec: ModelSpec, config: ProfileConfig) -> LoadPlan:
    """The load plan of `spec` under `config` (Model Analyzer's PerfAnalyzerConfigGenerator rules)."""
    disabled = config.run_config_search_disable
    batch_sizes = tuple(sorted({max(int(b), 1) for b in spec.batch_sizes})) or (1,)
    intervals = spec.perf_analyzer_flags.get("request-intervals")
    rate_keys = {"run_config_search_min_request_rate", "run_config_search_max_request_rate"}
    rate = bool(spec.request_rate or config.request_rate_search_enable or rate_keys & config.user_set)
    if rate:
        kind, listed = "request_rate", spec.request_rate
        low, high = config.run_config_search_min_request_rate, config.run_config_search_max_request_rate
    else:
        kind, listed = "concurrency", spec.concurrency
        low, high = config.run_config_search_min_concurrency, config.run_config_search_max_concurrency
    user = sorted({int(v) for v in listed if int(v) > 0})
    low = max(low, 1)
    high = max(high, low)
    values: tuple[int | str, ...]
    if intervals:
        values = (str(intervals),)  # perf_analyzer's own schedule: one load, nothing to sweep
    elif user or disabled:
        values = tuple(user) or (1,)
    else:
        values = tuple(doubled_list(low, high))
    searched = not intervals and not user and not disabled
    early_exit = config.early_exit_enable or searched
    steps = config.run_config_search_max_binary_search_steps
    return LoadPlan(
        mode="request_intervals" if intervals else kind,
        values=values,
        batch_sizes=batch_sizes,
        searched=searched,
        early_exit=early_exit,
        binary_steps=steps if searched and spec.constraints else 0,
        low=low,
        high=high,
    )


def make_run_config(spec: ModelSpec, variant: ConfigVariant, mode: str, batch_size: int, value: int | str) -> RunConfig:
    """One RunConfig of `spec`: `variant` under client batch `batch_size` and load `value` of `mode`; for a
    concurrent group every model under that load (`RunConfig.group`)."""
    if spec.members and variant.members:
        return RunConfig.group(tuple(make_run_config(m, v, mode, batch_size, value)
                                     for m, v in zip(spec.members, variant.members, strict=True)))
    if mode == "request_intervals":
        load = LoadSpec(batch_size=batch_size, request_intervals=str(value))
    elif mode == "request_rate":
        load = LoadSpec(batch_size=batch_size, request_rate=max(int(value), 1))
    else:
        load = LoadSpec(batch_size=batch_size, concurrency=max(int(value), 1))
    return RunConfig(
        model=spec.name,
        variant=variant,
        load=load,
        perf_analyzer_flags=spec.perf_analyzer_flags,
        server_flags=spec.triton_server_flags,
        server_env=spec.triton_server_environment,
    )


def formula_load(variant: ConfigVariant, plan: LoadPlan) -> int | str:
    """The load a variant is first measured at: Model Analyzer's `2 × max_batch_size × instances` for
    concurrency, snapped onto the plan's values (so the later sweep reuses it; clamped by both search bounds,
    unlike Model Analyzer's bug 9.2.3); the middle of the grid for request rate; the intervals file as is."""
    if plan.mode == "request_intervals":
        return plan.values[0]
    values = list(plan.numeric)
    if plan.mode == "request_rate":
        return values[(len(values) - 1) // 2]
    wanted = 2 * max(variant.max_batch_size, 1) * variant.instance_count
    wanted = min(max(wanted, plan.low), plan.high)
    return min(values, key=lambda v: (abs(math.log2(v) - math.log2(wanted)), v))


#: the model config's scheduling choices (one of them only); a config with another than dynamic batching keeps it
OTHER_SCHEDULERS = ("sequence_batching", "ensemble_scheduling")


def is_ensemble(base_config: dict[str, Any]) -> bool:
    """An ensemble runs no instances of its own: its variants are its composing models' (not its instance groups)."""
    return base_config.get("platform") == "ensemble" or "ensemble_scheduling" in base_config


def batching_overlay(base_config: dict[str, Any]) -> dict[str, Any]:
    """What a batching variant adds: dynamic batching, unless the config already schedules otherwise."""
    return {} if any(k in base_config for k in OTHER_SCHEDULERS) else {"dynamic_batching": {}}


def kind_of(spec: ModelSpec) -> str:
    return "KIND_CPU" if spec.cpu_only else "KIND_GPU"


# --- judging measurements ------------------------------------------------------------------------------------
WIDE_MARGIN = 1.0  # a relative constraint violation above this (e.g. latency > 2× its budget) is "deep" failing


@attrs.frozen
class Judge:
    """A model's objectives and constraints applied to measurements.

    `better(a, b)`: a successful measurement beats a failed one, a passing one beats a failing one, two failing
    ones compare by total violation, two passing ones by the weighted objective score (ranking.score).
    `load_failure` only counts `max` constraints (latency, memory): those get worse as load, batch size or
    instance count grow, so a wide `load_failure` means "do not go further up".
    """

    spec: ModelSpec

    def values(self, m: Measurement) -> dict[str, float]:
        return measurement_values(m)

    def failure(self, m: Measurement) -> float:
        return failures(self.spec.constraints, self.values(m)) if m.ok else float("inf")

    def passes(self, m: Measurement) -> bool:
        return m.ok and self.failure(m) == 0

    def load_failure(self, m: Measurement) -> float:
        if not m.ok:
            return 0.0
        upper = [Constraint(c.tag, max=c.max) for c in self.spec.constraints if c.max is not None]
        return failures(upper, self.values(m))

    def deep_failing(self, m: Measurement) -> bool:
        return self.load_failure(m) > WIDE_MARGIN

    def gain(self, a: Measurement, b: Measurement) -> float:
        """Weighted relative objective gain of `a` over `b` (positive: `a` is better)."""
        return score(self.values(a), self.values(b), self.spec.objectives)

    def better(self, a: Measurement, b: Measurement) -> bool:
        if a.ok != b.ok:
            return a.ok
        if not a.ok:
            return False
        fa, fb = self.failure(a), self.failure(b)
        if (fa == 0) != (fb == 0):
            return fa == 0
        if fa > 0:
            return fa < fb
        return self.gain(a, b) > 0

    def best(self, measurements: Sequence[Measurement]) -> Measurement | None:
        best: Measurement | None = None
        for m in measurements:
            if best is None or self.better(m, best):
                best = m
        return best


# --- state kept across resumes ----------------------------------------------------------------------------
class SearchState:
    """JSON values by (scope, name) in the results DB's search state (`Store.search_state`; None path: in memory)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._memory: dict[tuple[str, str], Any] = {}
        self.store: Store | None = None
        if path is not None and str(path) != ":memory:":
            self.store = Store(path)

    @classmethod
    def for_config(cls, config: ProfileConfig) -> SearchState:
        """The state table of the profile's results DB (`results_db`)."""
        return cls(config.results_db)

    def get(self, scope: str, name: str) -> Any:
        if self.store is None:
            return self._memory.get((scope, name))
        return self.store.search_state(scope, name)

    def set(self, scope: str, name: str, value: Any) -> None:
        if self.store is None:
            self._memory[(scope, name)] = value
            return
        self.store.set_search_state(scope, name, value)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
