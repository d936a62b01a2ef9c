"""The optuna search's parameters: what a trial asks for, the load relative to a config's saturation point, and
how many trials a search space gets (`min/max_percentage_of_search_space`, `optuna_min/max_trials`)."""

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


def relative_load(variant: Any, plan: LoadPlan, index: int) -> int:
    """Concurrency for load index `index` of a searched grid: the grid value nearest to the formula load
    `2 × max_batch_size × instances` times `2**(index − offset)`, so index `offset` is "about saturated"
    whatever the config (TPE models config and load nearly independently), lower indices go down to 1/128 of
    it and higher ones up to 8×. Same number of choices and same values as the grid (clamped to its ends)."""
    values = list(plan.numeric)
    up = min(3, (len(values) - 1) // 3)
    offset = len(values) - 1 - up
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
