"""Searching models profiled concurrently: the joint space of a group and its exhaustive (brute) walk.

A concurrent group (`ModelSpec.members`) is searched over the concatenation of its models' config spaces
(`JointSpace`: each model's max_batch_size, instance count and listed `model_config_parameters` dimensions,
named `<model>.<dimension>`): one coordinate is one variant per model, served together. Quick climbs it with its
own hill climbing (`quick.HillClimb` sees only dimensions), optuna samples it, brute walks every coordinate
(`Exhaustive`) — only when the product is small (`BRUTE_PRODUCT_LIMIT`; quick climbs bigger ones), as the
product of the models' spaces grows too fast to be measured whole.

Each combination is first measured with every model at its own formula load (`2 × max_batch_size ×
instances`, Model Analyzer's; a model breaking its latency budget there is measured again at a load lowered by
its violation, `evaluate_group`), then the best combinations (and the default one) are swept with one common
load for every model, as Model Analyzer does (its concurrent rows read "4,8" then "1,1", "2,2", …).
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Sequence
from typing import Any

import attrs

from modelyzer.kernel.composing import COMPOSING_BASES_KEY
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.models import MEMBERS_KEY, ConfigVariant, Constraint, Measurement, ModelSpec, RunConfig
from modelyzer.kernel.ranking import failures
from modelyzer.plugins.search.common import Judge, LoadPlan, formula_load, make_run_config
from modelyzer.plugins.search.space import ConfigSpace, Dimension, config_space

#: the largest product of the models' spaces brute measures whole (quick or optuna search bigger ones)
BRUTE_PRODUCT_LIMIT = 64

Coord = tuple[int, ...]


def member_bases(spec: ModelSpec, base_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Each model's base config from a group's (`_members`), in the group's order."""
    by_model = {str(e.get("model")): dict(e.get("config") or {}) for e in base_config.get(MEMBERS_KEY) or []}
    return [by_model.get(m.name, {}) for m in spec.members]


@attrs.frozen
class JointSpace:
    """The models' config spaces side by side: a coordinate is theirs concatenated (see the module docstring)."""

    spec: ModelSpec
    spaces: tuple[ConfigSpace, ...]

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        return tuple(attrs.evolve(d, name=f"{s.spec.name}.{d.name}") for s in self.spaces for d in s.dimensions)

    @property
    def base_config(self) -> dict[str, Any]:
        return {MEMBERS_KEY: [{"model": s.spec.name, "config": s.base_config} for s in self.spaces]}

    @property
    def fixed(self) -> dict[str, Any]:
        return {s.spec.name: s.fixed for s in self.spaces}

    @property
    def size(self) -> int:
        size = 1
        for s in self.spaces:
            size *= s.size
        return size

    def split(self, coordinate: Sequence[int]) -> list[Coord]:
        """Each model's part of a joint coordinate."""
        parts, at = [], 0
        for s in self.spaces:
            n = len(s.dimensions)
            parts.append(tuple(coordinate[at:at + n]))
            at += n
        return parts

    def overlay(self, coordinate: Sequence[int]) -> dict[str, Any]:
        return {s.spec.name: s.overlay(part) for s, part in zip(self.spaces, self.split(coordinate), strict=True)}

    def variant(self, coordinate: Sequence[int]) -> ConfigVariant:
        parts = self.split(coordinate)
        return ConfigVariant.group(tuple(s.variant(p) for s, p in zip(self.spaces, parts, strict=True)))

    def default_variant(self) -> ConfigVariant:
        return ConfigVariant.group(tuple(s.default_variant() for s in self.spaces))


@attrs.frozen
class ComposingSpace(JointSpace):
    """A model with composing models (an ensemble, a BLS model): its own space first, then each composing
    model's; a coordinate is the top variant serving one variant of each composing model
    (`ConfigVariant.with_composing`)."""

    def variant(self, coordinate: Sequence[int]) -> ConfigVariant:
        parts = self.split(coordinate)
        top, *composing = (s.variant(p) for s, p in zip(self.spaces, parts, strict=True))
        return top.with_composing(tuple(composing))

    def default_variant(self) -> ConfigVariant:
        top, *composing = (s.default_variant() for s in self.spaces)
        return top.with_composing(tuple(composing))


def composing_space(spec: ModelSpec, base_config: dict[str, Any], config: ProfileConfig) -> ComposingSpace:
    """The space of a model with composing models (`ModelSpec.composing`, their bases in `_composing_bases`)."""
    top = {k: v for k, v in base_config.items() if not str(k).startswith("_")}
    by_model = {str(e.get("model")): dict(e.get("config") or {}) for e in base_config.get(COMPOSING_BASES_KEY) or []}
    spaces = [config_space(attrs.evolve(spec, composing=()), top, config)]
    spaces += [config_space(c, by_model.get(c.name, {}), config) for c in spec.composing]
    return ComposingSpace(spec, tuple(spaces))


def space_of(spec: ModelSpec, base_config: dict[str, Any], config: ProfileConfig) -> ConfigSpace | JointSpace:
    """The search space of `spec`: a concurrent group's joint space, a pipeline's composing space, or its own."""
    if spec.members:
        return joint_space(spec, base_config, config)
    if spec.composing:
        return composing_space(spec, base_config, config)
    return config_space(spec, base_config, config)


def joint_space(spec: ModelSpec, base_config: dict[str, Any], config: ProfileConfig) -> JointSpace:
    """The joint space of a concurrent group (each model's `config_space` under its own spec)."""
    bases = member_bases(spec, base_config)
    return JointSpace(spec, tuple(config_space(m, b, config) for m, b in zip(spec.members, bases, strict=True)))


def group_run_config(spec: ModelSpec, variant: ConfigVariant, plan: LoadPlan, batch_size: int,
                     loads: Sequence[int | str]) -> RunConfig:
    """A group's RunConfig with each model at its own load."""
    return RunConfig.group(tuple(make_run_config(m, v, plan.mode, batch_size, value)
                                 for m, v, value in zip(spec.members, variant.members, loads, strict=True)))


def formula_run_config(spec: ModelSpec, variant: ConfigVariant, plan: LoadPlan, batch_size: int) -> RunConfig:
    """A group's first measurement: every model at its own formula load."""
    return group_run_config(spec, variant, plan, batch_size, [formula_load(v, plan) for v in variant.members])


def evaluate_group(spec: ModelSpec, variant: ConfigVariant, plan: LoadPlan, judge: Judge,
                   batch_size: int) -> Generator[RunConfig, Measurement, Measurement]:
    """A combination's measurement for the climb: every model at its own formula load (Model Analyzer's); while a
    model breaks its latency-like (`max`) constraint, that model's load is lowered by its own violation (Little's
    law, at least one grid step) and the combination measured again. Returns the best of what was measured."""
    loads: list[int | str] = [formula_load(v, plan) for v in variant.members]
    points: list[Measurement] = []
    rc = formula_run_config(spec, variant, plan, batch_size)
    while True:
        m = yield rc
        points.append(m)
        if not m.ok or judge.load_failure(m) <= 0 or plan.mode == "request_intervals":
            break
        values = judge.values(m)
        lowered = [_lowered(plan, load, failures(_upper(member), values)) for member, load in
                   zip(spec.members, loads, strict=True)]
        if lowered == loads:
            break
        loads = lowered
        rc = group_run_config(spec, variant, plan, batch_size, loads)
    best = judge.best(points)
    return best if best is not None else points[-1]


def _upper(member: ModelSpec) -> list[Constraint]:
    return [Constraint(f"{c.tag}@{member.name}", max=c.max) for c in member.constraints if c.max is not None]


def _lowered(plan: LoadPlan, value: int | str, violation: float) -> int | str:
    """`value` ÷ (1 + violation) snapped down onto the grid, at least one step lower; unchanged without a
    violation or at the bottom of the grid."""
    if violation <= 0:
        return value
    lower = [v for v in plan.numeric if v < int(value)]
    if not lower:
        return value
    fitting = [v for v in lower if v <= int(value) / (1.0 + violation)]
    return max(fitting) if fitting else max(lower)


class Exhaustive:
    """Every coordinate of a small joint space, in order: brute's "climb" (same driving API as `HillClimb`)."""

    def __init__(self, space: JointSpace, config: ProfileConfig) -> None:
        self.space = space
        self.results: dict[Coord, Measurement] = {}
        self._todo = list(itertools.product(*(range(len(d)) for d in space.dimensions)))
        self.done = not self._todo

    def wanted(self, n: int, pending: set[Coord]) -> list[Coord]:
        picks = [c for c in self._todo if c not in self.results and c not in pending][:n]
        for c in picks:
            self._todo.remove(c)
        self.done = not self._todo
        return picks

    def record(self, coord: Coord, measurement: Measurement) -> None:
        self.results[coord] = measurement
