"""The optuna search's parameters: what a trial asks for, the load relative to a config's saturation point, the
warm-start design, and how many trials a search space gets (`min/max_percentage_of_search_space`,
`optuna_min/max_trials`)."""

from __future__ import annotations

import math
from typing import Any

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.plugins.search.common import LoadPlan, formula_load


@attrs.frozen
class Param:
    """One optuna parameter: `size` choices, asked as an int index (ordered) or a categorical index."""

    name: str
    size: int
    ordered: bool
    load_increasing: bool


def load_offset(plan: LoadPlan) -> int:
    """The index of a searched grid that `relative_load` maps to the formula load ("about saturated")."""
    size = len(plan.numeric)
    return size - 1 - min(3, (size - 1) // 3)


def relative_load(variant: Any, plan: LoadPlan, index: int) -> int:
    """Concurrency for load index `index` of a searched grid: the grid value nearest to the formula load
    `2 × max_batch_size × instances` times `2**(index − offset)`, so index `offset` is "about saturated"
    whatever the config (TPE models config and load nearly independently), lower indices go down to 1/128 of
    it and higher ones up to 8×. Same number of choices and same values as the grid (clamped to its ends)."""
    values = list(plan.numeric)
    offset = load_offset(plan)
    base = int(formula_load(variant, plan))
    wanted = base * 2.0 ** (index - offset)
    return min(values, key=lambda v: (abs(math.log2(v) - math.log2(max(wanted, 1e-9))), v))


def trial_bounds(size: int, config: ProfileConfig) -> tuple[int, int]:
    """(min, max) trials: percentages of the space, or the trial options when set (both: the tighter)."""
    low = max(int(size * config.min_percentage_of_search_space / 100), 1)
    high = max(int(size * config.max_percentage_of_search_space / 100), 1)
    trial_keys = {"optuna_min_trials", "optuna_max_trials"} & config.user_set
    pct_keys = {"min_percentage_of_search_space", "max_percentage_of_search_space"} & config.user_set
    min_trials = config.optuna_min_trials
    max_trials = config.optuna_max_trials
    if trial_keys and pct_keys:
        low, high = max(low, min_trials), min(high, max_trials)
    elif trial_keys:
        low, high = min_trials, max_trials
    high = max(high, 1)
    return min(low, high), high


def warm_start(params: list[Param], dims: int, load: tuple[int, int] | None) -> list[tuple[int, ...]]:
    """The first trials: a space-filling design of the ordered config knobs (the first `dims` params) — all at
    their lowest choice (quick's start), all highest, all middle, then each highest with the others lowest — with
    the load param `load[0]` at index `load[1]` (the saturating load) and every other param at its first choice.
    TPE starts from these instead of random points (most random loads are far from a config's peak)."""
    ordered = [i for i, p in enumerate(params[:dims]) if p.ordered and p.size > 1]

    def point(levels: dict[int, int]) -> tuple[int, ...]:
        fixed = {load[0]: load[1]} if load is not None else {}
        return tuple(levels.get(i, fixed.get(i, 0)) for i in range(len(params)))

    top = {i: params[i].size - 1 for i in ordered}
    points = [point({i: 0 for i in ordered}), point(top), point({i: (top[i] + 1) // 2 for i in ordered})]
    if len(ordered) > 1:
        points += [point({j: (top[j] if j == i else 0) for j in ordered}) for i in ordered]
    return list(dict.fromkeys(points))
