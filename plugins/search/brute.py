"""The `brute` search strategy: Model Analyzer's brute-force search with its load sweep and binary search.

Variants (model configs) come first from the default config, then either
- *automatic* mode: instance count min..max (outer) × max_batch_size powers of two (inner, batching models
  only), one instance group of KIND_CPU/KIND_GPU, `dynamic_batching {}` unless the model uses sequence
  batching; the max_batch_size walk of one instance count stops once the best throughput stops rising; or
- *manual* mode (`model_config_parameters` given or `run_config_search_disable`): the cross product of the
  parameters (`generate_combinations`), `max_batch_size` as the inner loop, deep-merged into the base config.

Every variant is measured under a load sweep: client batch sizes (outer) × concurrency or request rate
(inner), with the throughput-plateau early exit, then a binary search wherever a constraint flips from
passing to failing between two swept load values (onto recorded loads only when the load generator answers a
recording: `SearchStrategy.recorded_loads`). A failed measurement ends the variant's sweep.

The search is split into independent *walks* (the default config, each instance count, each manual variant
or max_batch_size line). A walk is sequential (its next experiment depends on its last result), walks are
not: `propose(slots=N)` returns the next RunConfig of up to N walks, `propose(1)` reproduces Model
Analyzer's order. Walks are generators that receive each Measurement through `send()`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Generator
from typing import Any

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import SearchStrategy
from modelyzer.kernel.models import (
    ConfigVariant,
    Measurement,
    ModelSpec,
    Result,
    RunConfig,
)
from modelyzer.kernel.ranking import passes
from modelyzer.plugins.search.common import (
    batching_overlay,
    bisection_load,
    boundary,
    deep_merge,
    doubled_list,
    gain_valid,
    generate_combinations,
    is_ensemble,
    load_plan,
    make_run_config,
    throughput,
)
from modelyzer.plugins.search.load_sweep import WalkDriver

__all__ = [
    "BruteSearch",
    "boundary",
    "deep_merge",
    "doubled_list",
    "gain_valid",
    "generate_combinations",
    "throughput",
]

log = logging.getLogger("modelyzer")

Walk = Generator[RunConfig, Measurement, None]
VariantWalk = Generator[RunConfig, Measurement, "float | None"]


# --- the strategy -------------------------------------------------------------------------------------------
@attrs.define(eq=False)
class _Walk:
    """One sequential line of search and where it stands."""

    label: str
    variants: list[ConfigVariant]
    plateau: bool
    variants_left: int = 0
    done_in_variant: int = 0
    state: Any = None  # the WalkDriver's view of this walk (next, finished, awaiting)


class BruteSearch(SearchStrategy):
    """Brute-force search over one model (see the module docstring). A concurrent group (the default search
    mode; an explicit brute is refused with it, as Model Analyzer does) or a model with composing models
    (ensemble, BLS) is searched by `quick.JointBruteSearch`, every combination, when the product of the models'
    spaces is small (`joint.BRUTE_PRODUCT_LIMIT`), else by quick's climb over the joint space (one line says so)."""

    searches_groups = True

    def __new__(cls, spec: ModelSpec, base_config: dict[str, Any], config: ProfileConfig) -> Any:
        if (spec.members or spec.composing) and cls is BruteSearch:
            from modelyzer.plugins.search.joint import BRUTE_PRODUCT_LIMIT, JointSpace, space_of  # noqa: PLC0415
            from modelyzer.plugins.search.quick import JointBruteSearch, QuickSearch  # noqa: PLC0415 - imports brute

            space = space_of(spec, base_config, config)
            assert isinstance(space, JointSpace)
            if space.size <= BRUTE_PRODUCT_LIMIT:
                return JointBruteSearch(spec, base_config, config)
            sizes = " × ".join(str(s.size) for s in space.spaces)
            log.info("%s: the product of the models' spaces has %s = %d combinations (brute measures at most %d): "
                     "climbing it with quick instead", spec.name, sizes, space.size, BRUTE_PRODUCT_LIMIT)
            return QuickSearch(spec, base_config, config)
        return super().__new__(cls)

    def __init__(self, spec: ModelSpec, base_config: dict[str, Any], config: ProfileConfig) -> None:
        self.spec = spec
        self.base_config = copy.deepcopy(dict(base_config))
        self.config = config
        self._setup_loads()
        self._driver = WalkDriver({})
        self._walks = self._build_walks()
        for walk in self._walks:
            walk.variants_left = len(walk.variants)
            walk.state = self._driver.add(self._walk(walk), walk.label)

    # load plan ------------------------------------------------------------------------------------------
    def _setup_loads(self) -> None:
        plan = load_plan(self.spec, self.config)
        self.batch_sizes = list(plan.batch_sizes)
        self.mode = plan.mode
        self.loads: list[int | str] = list(plan.values)
        self.early_exit = plan.early_exit
        self.binary_steps = plan.binary_steps

    # variants -------------------------------------------------------------------------------------------
    def _variant(self, overlay: dict[str, Any]) -> ConfigVariant:
        return ConfigVariant(self.spec.name, config=deep_merge(self.base_config, overlay), params=overlay)

    def _build_walks(self) -> list[_Walk]:
        default = ConfigVariant(self.spec.name, config=copy.deepcopy(self.base_config), is_default=True)
        walks = [_Walk("default", [default], plateau=False)]
        manual = bool(self.spec.model_config_parameters or self.config.run_config_search_disable)
        return walks + (self._manual_walks() if manual else self._automatic_walks())

    def _automatic_walks(self) -> list[_Walk]:
        kind = "KIND_CPU" if self.spec.cpu_only else "KIND_GPU"
        batching = int(self.base_config.get("max_batch_size", 0) or 0) > 0
        low = self.config.run_config_search_min_model_batch_size
        high = self.config.run_config_search_max_model_batch_size
        walks = []
        first = self.config.run_config_search_min_instance_count
        last = self.config.run_config_search_max_instance_count
        if not self.spec.tunes("instance_group") or is_ensemble(self.base_config):
            first = last = 0  # the server has no instance groups: the batch-size walk (if any) on its own
        batching = batching and self.spec.tunes("max_batch_size")
        for count in range(max(first, 1) if last else 0, last + 1):
            groups = {"instance_group": [{"count": count, "kind": kind}]} if count else {}
            if not groups and not batching:
                break  # nothing the server acts on to vary: the default config only
            if not batching:
                walks.append(_Walk(f"instances={count}", [self._variant(groups)], plateau=True))
                continue
            extra = batching_overlay(self.base_config)
            variants = [
                self._variant({**groups, "max_batch_size": mbs, **extra}) for mbs in doubled_list(low, high)
            ]
            walks.append(_Walk(f"instances={count}", variants, plateau=True))
        return walks

    def _manual_walks(self) -> list[_Walk]:
        params = copy.deepcopy(self.spec.model_config_parameters)
        mbs = params.pop("max_batch_size", None)
        mbs_list: list[Any] = [None] if mbs is None else (list(mbs) if isinstance(mbs, list) else [mbs])
        plateau = self.config.early_exit_enable and len(mbs_list) > 1
        walks = []
        for i, combo in enumerate(generate_combinations(params) if params else [{}]):
            if self.spec.cpu_only:
                for group in combo.get("instance_group") or []:
                    if isinstance(group, dict):
                        group.setdefault("kind", "KIND_CPU")
            overlays = [combo if m is None else {**combo, "max_batch_size": m} for m in mbs_list]
            if not combo and mbs is None:
                continue  # search disabled and nothing to vary: the default config only
            variants = [self._variant(o) for o in overlays]
            if plateau:
                walks.append(_Walk(f"manual#{i}", variants, plateau=True))
            else:
                walks.extend(_Walk(f"manual#{i}.{j}", [v], plateau=False) for j, v in enumerate(variants))
        return walks

    # walks ----------------------------------------------------------------------------------------------
    def _run_config(self, variant: ConfigVariant, batch_size: int, value: int | str) -> RunConfig:
        return make_run_config(self.spec, variant, self.mode, batch_size, value)

    def _walk(self, walk: _Walk) -> Walk:
        bests: list[float] = []
        for variant in walk.variants:
            walk.done_in_variant = 0
            best = yield from self._variant_walk(variant, walk)
            walk.variants_left -= 1
            if not walk.plateau or walk.done_in_variant == 0:
                continue  # (nothing was measurable: every client batch size exceeds max_batch_size)
            if best is None or (bests and best <= max(bests)):
                return  # no valid measurement, or throughput stopped rising: next instance count
            bests.append(best)

    def _variant_walk(self, variant: ConfigVariant, walk: _Walk) -> VariantWalk:
        """Load sweep of one variant; returns its best throughput (None: no valid measurement)."""
        best: float | None = None
        batch_bests: list[float] = []
        for batch_size in self.batch_sizes:
            if 0 < variant.max_batch_size < batch_size:
                continue  # the server would reject it; Model Analyzer skips these too
            points: list[tuple[int | str, Measurement]] = []
            for value in self.loads:
                measurement = yield self._run_config(variant, batch_size, value)
                walk.done_in_variant += 1
                if not measurement.ok:
                    return best
                points.append((value, measurement))
                best = max(best or 0.0, throughput(measurement))
                if self.early_exit and not gain_valid([throughput(m) for _, m in points]):
                    break
            if self.binary_steps:
                extra = yield from self._binary_search(variant, batch_size, points, walk)
                if extra is None:
                    return best
                points.extend(extra)
                best = max([best or 0.0, *(throughput(m) for _, m in extra)])
            batch_bests.append(max(throughput(m) for _, m in points))
            if self.early_exit and not gain_valid(batch_bests):
                break
        return best

    def _binary_search(
        self,
        variant: ConfigVariant,
        batch_size: int,
        points: list[tuple[int | str, Measurement]],
        walk: _Walk,
    ) -> Generator[RunConfig, Measurement, list[tuple[int | str, Measurement]] | None]:
        """Bisect between the last passing and the first failing load; None if a measurement failed."""
        found = boundary([(int(v), self._ok(m)) for v, m in points])
        extra: list[tuple[int | str, Measurement]] = []
        if found is None:
            return extra
        passing, failing = found
        tried = {int(v) for v, _ in points}
        recorded = self.recorded_loads(self._run_config(variant, batch_size, passing)) if self.recorded_loads else None
        for _ in range(self.binary_steps):
            middle = bisection_load(passing, failing, recorded)
            if middle is None or middle in tried:
                break
            tried.add(middle)
            measurement = yield self._run_config(variant, batch_size, middle)
            walk.done_in_variant += 1
            if not measurement.ok:
                return None
            extra.append((middle, measurement))
            if self._ok(measurement):
                passing = middle
            else:
                failing = middle
        return extra

    def _ok(self, measurement: Measurement) -> bool:
        return passes(self.spec.constraints, measurement.values())

    # driver: the walks run side by side in a WalkDriver (shared with quick/optuna's load sweeps) ---------
    def propose(self, slots: int = 1) -> list[RunConfig]:
        return self._driver.propose(slots)

    def observe(self, results: list[Result]) -> None:
        self._driver.observe(results)

    @property
    def done(self) -> bool:
        return self._driver.done

    def space_size(self) -> int:
        return sum(len(w.variants) for w in self._walks)

    def total_estimate(self) -> int:
        """Upper bound of RunConfigs not yet proposed (those awaiting results are not counted)."""
        per_variant = len(self.batch_sizes) * (len(self.loads) + self.binary_steps)
        return sum(
            max(w.variants_left * per_variant - w.done_in_variant - w.state.awaiting, 0)
            for w in self._walks
            if not w.state.finished
        )


@hookimpl
def register_search_strategies(register: Any) -> None:
    register("brute", BruteSearch)
