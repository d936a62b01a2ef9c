"""bench/concurrent: quick vs brute (vs optuna) on concurrent multi-model groups, offline, synthetic surfaces.

Run: `.venv/bin/python bench/concurrent_models.py [--surface NAME]... [--noise 0,0.03,0.1] [--seeds 0-2]
[--optuna-seeds 0-2] [--slots N] [--no-big]`

A concurrent group (`kernel.models.group_spec`) is searched over the joint space of its models
(`plugins/search/joint.JointSpace`: each model's max_batch_size × instance count). Every strategy is driven
in-process as the engine drives it (propose → measure → observe; no executor, no server), and each group
RunConfig is answered by an analytic surface defined here (SYNTHETIC, not recorded): the models share one
device (a GPU, or CPU cores); a model's batch fills with its in-flight requests per instance, up to its
max_batch_size (none without dynamic batching: the default config); per-request device time is lowest at a
middling batch; busy instances beyond the device's lanes are time-sliced with a contention overhead, so the
device caps the sum and too many instances lose; latency is Little's law over the closed loop (it grows with
the load); optional p99 budgets and weighting per model. Noise is multiplicative (log-normal, `--noise` σ),
a fixed function of (seed, combination, loads): the same RunConfig always measures the same.

Per space, two noise-free optima over the WHOLE product (every combination and the default one), ranked by
the group's `Judge` (per-model objectives `perf_throughput@model` with the normalised weighting, per-model
constraints): over the loads quick and brute measure (each model at its formula load `2 × max_batch_size ×
instances`, or one common load of the sweep — every integer up to the grid's top when a budget makes the
sweep bisect), and over any grid load per model as well (optuna asks each model's load relative to its own
formula load; column "vs all"). Then, per noise level and seed: quick, brute (`JointBruteSearch`, every
combination; the bounds keep the product at its `BRUTE_PRODUCT_LIMIT` of 64) and optuna when
`plugins/search/optuna.py` declares `searches_groups` (else skipped). A strategy picks its best by what it
measured (noisy) and is judged by that pick's noise-free value. Printed per run: measurements used; `until
2%`, the measurement after which its pick is within 2% of the optimum ("-": never); whether its final pick
is within 2% ("=opt": the optimum's combination) and its ratio to both optima. "Within 2%": same pass/fail
as the optimum and (2+s)/(2−s) ≥ 0.98, s the weighted score of the pick over the optimum (bench/search's
measure). Then a summary per strategy, and quick alone on a bigger space (`big` bounds), where brute is
refused (`BruteSearch` climbs it with quick). Numbers only; no assertions.
"""

from __future__ import annotations

import argparse  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path
from typing import Any  # noqa: E402

import attrs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelyzer.kernel import metrics  # noqa: E402
from modelyzer.kernel.config import ProfileConfig, config_from_dict  # noqa: E402
from modelyzer.kernel.interfaces import SearchStrategy  # noqa: E402
from modelyzer.kernel.models import (  # noqa: E402
    MEMBERS_KEY,
    STATUS_SKIPPED,
    ConfigVariant,
    Constraint,
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
    group_spec,
)
from modelyzer.kernel.ranking import failures, score  # noqa: E402
from modelyzer.plugins.search import optuna as optuna_plugin  # noqa: E402
from modelyzer.plugins.search.brute import BruteSearch  # noqa: E402
from modelyzer.plugins.search.common import Judge, LoadPlan, SearchState, load_plan, make_run_config  # noqa: E402
from modelyzer.plugins.search.joint import BRUTE_PRODUCT_LIMIT, JointSpace, formula_run_config, joint_space  # noqa: E402
from modelyzer.plugins.search.quick import JointBruteSearch, QuickSearch  # noqa: E402

WITHIN = 0.98
TAGS = ("perf_throughput", "perf_latency_avg", "perf_latency_p99")
Factory = Callable[[ModelSpec, dict[str, Any], ProfileConfig], SearchStrategy]


# --- the synthetic surfaces -----------------------------------------------------------------------------------
@attrs.frozen
class Model:
    """One model's cost on the shared device: a batch of b takes `fixed_ms + item_ms · b · (1 + b / knee)` of
    device time (per request it is lowest near b = √(fixed·knee/item): bigger batches pay for memory traffic)."""

    name: str
    fixed_ms: float
    item_ms: float
    knee: float = 1e9
    p99_ms: float | None = None
    weighting: float = 1.0


@attrs.frozen
class Surface:
    """Models sharing one device: `lanes` batches run side by side; more busy instances are time-sliced and each
    one beyond the lanes slows every batch by `contention` more. `client_ms` is the client's round trip."""

    name: str
    text: str
    models: tuple[Model, ...]
    lanes: float
    contention: float
    cpu: bool = False
    client_ms: float = 0.3
    bounds: dict[str, int] = attrs.field(factory=dict)  # search bounds keeping the product ≤ BRUTE_PRODUCT_LIMIT
    big: dict[str, int] = attrs.field(factory=dict)  # a bigger space (quick only), {} for none
    max_concurrency: int = 128

    def spec(self) -> ModelSpec:
        members = tuple(
            ModelSpec(m.name, cpu_only=self.cpu, weighting=m.weighting,
                      constraints=(Constraint("perf_latency_p99", max=m.p99_ms),) if m.p99_ms else ())
            for m in self.models)
        return group_spec(members)

    def base_config(self) -> dict[str, Any]:
        return {MEMBERS_KEY: [{"model": m.name, "config": {"name": m.name, "max_batch_size": 8}} for m in self.models]}

    def config(self, bounds: dict[str, int]) -> ProfileConfig:
        values: dict[str, Any] = {
            "profile_models": ",".join(m.name for m in self.models),
            "run_config_profile_models_concurrently_enable": True,
            "run_config_search_max_concurrency": self.max_concurrency,
            **bounds,
        }
        return config_from_dict(values, check_paths=False)


#: 4 max_batch_sizes × 2 instance counts per model: 8 × 8 = 64 combinations, brute's limit
PAIR_BOUNDS = {"run_config_search_min_model_batch_size": 2, "run_config_search_max_model_batch_size": 16,
               "run_config_search_max_instance_count": 2}
#: 6 × 4 per model: 24 × 24 = 576 combinations (brute refused)
PAIR_BIG = {"run_config_search_max_model_batch_size": 32, "run_config_search_max_instance_count": 4}

SURFACES = {
    s.name: s
    for s in (
        Surface(
            "gpu-pair", "2 models on one GPU (a light, b heavy), throughput, equal weighting",
            (Model("a", fixed_ms=1.5, item_ms=0.15, knee=24), Model("b", fixed_ms=4.0, item_ms=1.2, knee=6)),
            lanes=3, contention=0.08,
            bounds=PAIR_BOUNDS, big=PAIR_BIG,
        ),
        Surface(
            "gpu-pair-p99", "the same pair with p99 budgets and weighting a 2 : b 1",
            (Model("a", fixed_ms=1.5, item_ms=0.15, knee=24, p99_ms=6, weighting=2),
             Model("b", fixed_ms=4.0, item_ms=1.2, knee=6, p99_ms=25, weighting=1)),
            lanes=3, contention=0.08,
            bounds=PAIR_BOUNDS, big=PAIR_BIG,
        ),
        Surface(
            "cpu-trio", "3 models on a 5-core CPU (a batches little, b and c more), throughput, equal weighting",
            (Model("a", fixed_ms=0.3, item_ms=1.0, knee=4), Model("b", fixed_ms=3.0, item_ms=0.5, knee=32),
             Model("c", fixed_ms=1.0, item_ms=0.2, knee=16)),
            lanes=5, contention=0.15, cpu=True, max_concurrency=64,
            bounds={"run_config_search_min_model_batch_size": 2, "run_config_search_max_model_batch_size": 4,
                    "run_config_search_max_instance_count": 2},
        ),
    )
}


def _noise(sigma: float, *key: Any) -> float:
    """exp(σ·z), z a standard normal fixed by `key` (Box–Muller over a hash)."""
    if sigma <= 0:
        return 1.0
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / (2 ** 64 + 2)
    u2 = int.from_bytes(digest[8:], "big") / 2 ** 64
    return math.exp(sigma * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2))


def _knobs(variant: ConfigVariant) -> tuple[int, int]:
    """(largest batch the server forms, instances): no dynamic batching (the default config) batches nothing."""
    return (variant.max_batch_size if variant.dynamic_batching else 1), variant.instance_count


def evaluate(surface: Surface, knobs: Sequence[tuple[int, int]], loads: Sequence[int], sigma: float,
             seed: int) -> dict[str, dict[str, float]]:
    """Each model's (throughput, avg and p99 latency) with `knobs[i]` = (batch, instances) at concurrency
    `loads[i]`, all served together. A model's batch is its in-flight requests per instance (1..batch); its
    busy instances share the device's lanes; latency is Little's law over the closed loop."""
    shape = []
    for (batch, count), load in zip(knobs, loads, strict=True):
        b = min(max(load / count, 1.0), batch)
        shape.append((b, min(count, load / b)))
    busy = sum(s[1] for s in shape)
    stretch = max(1.0, busy / surface.lanes) * (1 + surface.contention * max(0.0, busy - surface.lanes))
    key = (seed, tuple(knobs), tuple(loads))
    out = {}
    for model, (b, active), load in zip(surface.models, shape, loads, strict=True):
        service = (model.fixed_ms + model.item_ms * b * (1 + b / model.knee)) * stretch
        x = active * b / (service + surface.client_ms) * 1000 * _noise(sigma, key, model.name, "x")
        latency = load / x * 1000
        p99 = (1.2 * latency + 0.5 * service) * _noise(sigma / 2, key, model.name, "p99")
        out[model.name] = {"perf_throughput": x, "perf_latency_avg": latency, "perf_latency_p99": p99}
    return out


def measurement(surface: Surface, rc: RunConfig, sigma: float, seed: int) -> Measurement:
    """A group RunConfig measured on the surface: per-model values (`tag@model`) and combined plain tags."""
    knobs = [_knobs(m.variant) for m in rc.members]
    loads = [int(m.load.concurrency or 1) for m in rc.members]
    per = evaluate(surface, knobs, loads, sigma, seed)
    values = [Metric(metrics.model_tag(tag, name), v[tag]) for name, v in per.items() for tag in TAGS]
    values += [Metric(tag, metrics.combine(tag, [v[tag] for v in per.values()])) for tag in TAGS]
    return Measurement(rc.key, metrics=tuple(values))


# --- the optimum over the whole product --------------------------------------------------------------------------
def combination(variant: ConfigVariant) -> str:
    """`a 8×2, b 4×1` (max_batch_size × instances per model; `default` for a model's default config)."""
    return ", ".join(f"{v.model} default" if v.is_default else f"{v.model} {v.max_batch_size}×{v.instance_count}"
                     for v in variant.members)


def describe_load(rc: RunConfig) -> str:
    """`concurrency 8` (one common load) or `concurrency 16,4` (each model's own, in the group's order)."""
    loads = [m.load.concurrency for m in rc.members]
    return "concurrency " + (str(loads[0]) if len(set(loads)) == 1 else ",".join(str(v) for v in loads))


def load_assignments(spec: ModelSpec, variant: ConfigVariant, plan: LoadPlan, per_model: bool) -> list[tuple[int, ...]]:
    """The load assignments a combination can be measured at: each model at its formula load (quick, brute,
    optuna's first trial) and one common load (the sweep; every integer up to the grid's top when a budget makes
    the sweep bisect); with `per_model` also each model at any grid value (optuna asks each model's load
    relative to its own formula load)."""
    formula = formula_run_config(spec, variant, plan, 1)
    out = {tuple(int(m.load.concurrency or 1) for m in formula.members)}
    common = range(1, plan.numeric[-1] + 1) if spec.constraints else plan.numeric
    out.update((c,) * len(spec.members) for c in common)
    if per_model:
        out.update(itertools.product(plan.numeric, repeat=len(spec.members)))
    return sorted(out)


def group_run_config(spec: ModelSpec, variant: ConfigVariant, loads: Sequence[int]) -> RunConfig:
    return RunConfig.group(tuple(make_run_config(m, v, "concurrency", 1, load)
                                 for m, v, load in zip(spec.members, variant.members, loads, strict=True)))


def optimum(surface: Surface, spec: ModelSpec, space: JointSpace, config: ProfileConfig, per_model: bool) -> Result:
    """The noise-free best over every combination (and the default one) at every load assignment of
    `load_assignments`, ranked by the group's Judge."""
    judge = Judge(spec)
    plan = load_plan(spec, config)
    variants = [space.default_variant()] + [
        space.variant(c) for c in itertools.product(*(range(len(d)) for d in space.dimensions))]
    best: Result | None = None
    for variant in variants:
        knobs = [_knobs(v) for v in variant.members]
        local: tuple[dict[str, float], tuple[int, ...]] | None = None
        for loads in load_assignments(spec, variant, plan, per_model):  # plain values; a Measurement for the best
            per = evaluate(surface, knobs, loads, 0.0, 0)
            flat = {metrics.model_tag(tag, name): v[tag] for name, v in per.items() for tag in TAGS}
            if local is None or _better(judge, flat, local[0]):
                local = (flat, loads)
        assert local is not None
        rc = group_run_config(spec, variant, local[1])
        m = measurement(surface, rc, 0.0, 0)
        if best is None or judge.better(m, best.measurement):
            best = Result(rc, m)
    assert best is not None
    return best


def _better(judge: Judge, a: dict[str, float], b: dict[str, float]) -> bool:
    """`Judge.better` on plain per-model values (both measured)."""
    fa, fb = failures(judge.spec.constraints, a), failures(judge.spec.constraints, b)
    if (fa == 0) != (fb == 0):
        return fa == 0
    if fa > 0:
        return fa < fb
    return score(a, b, judge.spec.objectives) > 0


# --- driving a strategy -------------------------------------------------------------------------------------------
def drive(strategy: SearchStrategy, surface: Surface, sigma: float, seed: int, slots: int,
          limit: int = 5000) -> list[Result]:
    """Propose/measure/observe until done, answering from the surface; results in measurement order."""
    out: list[Result] = []
    while len(out) < limit:
        batch = strategy.propose(slots)
        if not batch:
            break
        results = []
        for rc in batch:
            if any(0 < m.variant.max_batch_size < m.load.batch_size for m in rc.members):
                results.append(Result(rc, Measurement(rc.key, status=STATUS_SKIPPED)))
                continue
            result = Result(rc, measurement(surface, rc, sigma, seed))
            results.append(result)
            out.append(result)
        strategy.observe(results)
    return out


def ratio(judge: Judge, best: Measurement, optimum: Measurement) -> float:
    """best/optimum of the weighted objective (bench/search's measure: score s ↔ ratio (2+s)/(2−s))."""
    s = score(judge.values(best), judge.values(optimum), judge.spec.objectives)
    return (2 + s) / (2 - s)


def within(judge: Judge, best: Measurement, opt: Measurement) -> bool:
    return judge.passes(best) == judge.passes(opt) and ratio(judge, best, opt) >= WITHIN


@attrs.frozen
class Outcome:
    """One strategy run: measurements used, the measurement after which its best is within 2% of the optimum
    (None: never), and its final best: within 2%?, the optimum's combination?, its ratios to both optima."""

    n: int
    until: int | None
    final_within: bool
    same: bool
    final_ratio: float
    all_ratio: float
    best: str


def outcome(results: Sequence[Result], judge: Judge, opt: Result, all_opt: Result,
            truth: Callable[[RunConfig], Measurement]) -> Outcome:
    """The strategy's best so far is chosen on what it measured (noisy); judged on its noise-free `truth`."""
    best: Result | None = None
    until: int | None = None
    for i, r in enumerate(results, 1):
        if r.measurement.ok and (best is None or judge.better(r.measurement, best.measurement)):
            best = r
            if until is None and within(judge, truth(r.run_config), opt.measurement):
                until = i
    if best is None:
        return Outcome(len(results), None, False, False, 0.0, 0.0, "-")
    true = truth(best.run_config)
    return Outcome(
        n=len(results), until=until, final_within=within(judge, true, opt.measurement),
        same=best.run_config.variant.config_hash == opt.run_config.variant.config_hash,
        final_ratio=ratio(judge, true, opt.measurement), all_ratio=ratio(judge, true, all_opt.measurement),
        best=f"{combination(best.run_config.variant)} @ {describe_load(best.run_config)}")


def optuna_factory() -> Callable[[int], Factory] | None:
    """OptunaSearch with a seed, when it declares it searches concurrent groups; else None."""
    cls = getattr(optuna_plugin, "OptunaSearch", None)
    if cls is None or not getattr(cls, "searches_groups", False):
        return None

    def make(seed: int) -> Factory:
        return lambda spec, base, config: cls(spec, base, config, seed=seed, state=SearchState(None))

    return make


# --- the table ------------------------------------------------------------------------------------------------------
HEADER = (f"    {'noise':<6} {'seed':<5} {'strategy':<10} {'measured':>8} {'until 2%':>9}  {'final':<18} "
          f"{'vs all':>6}  final best")


def row(sigma: float, seed: int, name: str, o: Outcome) -> str:
    until = str(o.until) if o.until is not None else "-"
    final = ("within" if o.final_within else "off") + (" =opt" if o.same else "") + f" {o.final_ratio:.3f}"
    return f"    {sigma:<6.2f} {seed:<5} {name:<10} {o.n:>8} {until:>9}  {final:<18} {o.all_ratio:>6.3f}  {o.best}"


def summary(name: str, outs: list[Outcome]) -> str:
    reached = [o.until for o in outs if o.until is not None]
    until = f"{statistics.median(reached):.0f}" if reached else "-"
    return (f"    {name:<10} measured median {statistics.median(o.n for o in outs):.0f} [max {max(o.n for o in outs)}], "
            f"within 2% after median {until} [max {max(reached) if reached else '-'}] ({len(reached)}/{len(outs)} "
            f"runs get there), ends within 2% in {sum(o.final_within for o in outs)}/{len(outs)}")


def describe_optimum(label: str, opt: Result, judge: Judge, surface: Surface) -> str:
    values = judge.values(opt.measurement)
    per = ", ".join(f"{m.name} {values[metrics.model_tag('perf_throughput', m.name)]:.0f}/s "
                    f"p99 {values[metrics.model_tag('perf_latency_p99', m.name)]:.1f} ms" for m in surface.models)
    passes = "" if judge.passes(opt.measurement) else " — FAILS the constraints"
    return f"  {label}: {combination(opt.run_config.variant)} @ {describe_load(opt.run_config)} ({per}){passes}"


def bench_space(surface: Surface, bounds: dict[str, int], noises: list[float], seeds: list[int], slots: int,
                optuna_seeds: list[int]) -> dict[str, list[Outcome]]:
    """Every strategy that may search this space (brute only when the product fits), per noise level and seed."""
    spec, base, config = surface.spec(), surface.base_config(), surface.config(bounds)
    space = joint_space(spec, base, config)
    judge = Judge(spec)
    factories: list[tuple[str, Factory]] = [("quick", QuickSearch)]
    if isinstance(BruteSearch(spec, base, config), JointBruteSearch):  # type: ignore[call-arg]
        factories.append(("brute", JointBruteSearch))
    make_optuna = optuna_factory()
    if make_optuna is not None:
        factories += [(f"optuna/{s}", make_optuna(s)) for s in optuna_seeds]
    sizes = " × ".join(str(s.size) for s in space.spaces)
    bounds_text = ", ".join(f"{k.replace('run_config_search_', '')} {v}" for k, v in bounds.items())
    print(f"  space ({bounds_text}): product {sizes} = {space.size} combinations (+ the default); brute "
          + ("measures all of them" if any(n == "brute" for n, _ in factories)
             else f"refused (over its limit {BRUTE_PRODUCT_LIMIT}: BruteSearch climbs with quick)")
          + ("" if make_optuna else "; optuna skipped (it does not declare searches_groups)"))
    opt = optimum(surface, spec, space, config, per_model=False)
    all_opt = optimum(surface, spec, space, config, per_model=True)
    print(describe_optimum("optimum at formula or common loads (quick and brute measure these)", opt, judge, surface))
    print(describe_optimum("optimum with any grid load per model (optuna's trials may; 'vs all')", all_opt, judge,
                           surface))
    print(HEADER)
    outs: dict[str, list[Outcome]] = {}
    for sigma in noises:
        for seed in (seeds if sigma > 0 else seeds[:1]):
            for name, factory in factories:
                try:
                    results = drive(factory(spec, base, config), surface, sigma, seed, slots)
                except Exception as exc:  # noqa: BLE001 - optuna's group support may still be in the works
                    if not name.startswith("optuna"):
                        raise
                    print(f"    {sigma:<6.2f} {seed:<5} {name:<10} failed: {type(exc).__name__}: {exc}")
                    continue
                o = outcome(results, judge, opt, all_opt, lambda rc: measurement(surface, rc, 0.0, 0))
                outs.setdefault(name.split("/")[0], []).append(o)
                print(row(sigma, seed, name, o))
    for name, os_ in outs.items():
        print(summary(name, os_))
    return outs


def bench_surface(surface: Surface, noises: list[float], seeds: list[int], slots: int, optuna_seeds: list[int],
                  big: bool) -> None:
    spec = surface.spec()
    budgets = ", ".join(f"{m.name} p99 ≤ {m.p99_ms:g} ms" for m in surface.models if m.p99_ms) or "no constraint"
    weights = " : ".join(f"{o.tag} {o.weight:.2f}" for o in spec.objectives)
    print(f"\n{surface.name} (SYNTHETIC): {surface.text}")
    print(f"  {budgets}; objectives {weights}; concurrency 1..{surface.max_concurrency}")
    bench_space(surface, surface.bounds, noises, seeds, slots, optuna_seeds)
    if big and surface.big:
        bench_space(surface, surface.big, noises, seeds, slots, [])


def number_list(text: str, kind: Callable[[str], Any] = int) -> list[Any]:
    out: list[Any] = []
    for part in text.split(","):
        if kind is int and "-" in part:
            low, high = part.split("-", 1)
            out.extend(range(int(low), int(high) + 1))
        elif part.strip():
            out.append(kind(part))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--surface", action="append", choices=sorted(SURFACES), default=[],
                        help="a synthetic surface; repeatable (default: all)")
    parser.add_argument("--noise", default="0,0.03,0.1", help="noise levels σ (log-normal; default 0,0.03,0.1)")
    parser.add_argument("--seeds", default="0-2", help="noise seeds, e.g. 0-2 or 1,7 (default 0-2; one run at σ 0)")
    parser.add_argument("--slots", type=int, default=1, help="RunConfigs proposed per batch (default 1)")
    parser.add_argument("--optuna-seeds", default="0-2", help="optuna seeds when it searches groups (default 0-2)")
    parser.add_argument("--no-big", action="store_true", help="skip quick on the bigger space (brute refused)")
    args = parser.parse_args(argv)
    names = args.surface or list(SURFACES)
    print(f"bench/concurrent — quick vs brute over the product on synthetic concurrent surfaces (slots={args.slots}); "
          "until 2%: measurements until the best so far is within 2% of the optimum")
    for name in names:
        bench_surface(SURFACES[name], number_list(args.noise, float), number_list(args.seeds), args.slots,
                      number_list(args.optuna_seeds), not args.no_big)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
