"""bench/search: brute vs quick vs optuna on recorded performance surfaces, offline.

Run: `.venv/bin/python bench/search.py [--surface DB]... [--slots N] [--optuna-seeds 0-9] [--latency-budget MS]`

Each surface is a results DB: a recorded brute-force profile, a Model Analyzer checkpoint imported with
`modelyzer import-ma-checkpoint`, or one of the small DBs kept in `bench/surfaces/` (by default all of them;
the `synthetic-*` ones are an analytic model, labelled as such). Every strategy is driven in-process exactly as
the engine drives it (propose → measure → observe), and every RunConfig is answered by the `replay` plugin's
recording lookup (`plugins/replay.Recording`: same variant config and load → the recorded metrics; anything
else → a `not_recorded` measurement, counted as a measurement the strategy spent).

The search options are inferred from what the DB recorded (instance counts, max batch sizes, loads, client
batch sizes, CPU or GPU), so brute under replay repeats the recorded run. Each strategy runs twice: without
constraints and with a p99 latency budget (the DB's `bench_surface` budget, `--latency-budget`, or the median
recorded p99). The optimum is the best measurement of the whole recorded surface (every measurement the DB holds for
the model, judged under the same constraints: the best passing one when any passes), not brute's best, which
misses it when the optimum lies off brute's path. Printed per strategy: measurements used (of which not
recorded), their share of brute's, the best objective found relative to that optimum, whether that best passes
the constraints, and how many measurements it took to come within 2% of the optimum. optuna is run with 10
seeds by default: median [worst] over them. Strategies get the recording's loads (`recorded_loads`) as the
engine gives them under replay. Numbers only; no assertions.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelyzer.kernel.config import ProfileConfig, config_from_dict  # noqa: E402
from modelyzer.kernel.interfaces import SearchStrategy  # noqa: E402
from modelyzer.kernel.models import (  # noqa: E402
    STATUS_FAILED,
    STATUS_NOT_RECORDED,
    STATUS_SKIPPED,
    Constraint,
    Measurement,
    ModelSpec,
    Result,
)
from modelyzer.kernel.ranking import score  # noqa: E402
from modelyzer.kernel.store import Store  # noqa: E402
from modelyzer.plugins.launchers.replay import Recording  # noqa: E402
from modelyzer.plugins.search.brute import BruteSearch  # noqa: E402
from modelyzer.plugins.search.common import Judge, SearchState, doubled_list  # noqa: E402
from modelyzer.plugins.search.optuna import OptunaSearch  # noqa: E402
from modelyzer.plugins.search.quick import QuickSearch  # noqa: E402

SURFACES = ROOT / "bench" / "surfaces"
WITHIN = 0.98
Factory = Callable[[ModelSpec, dict[str, Any], ProfileConfig], SearchStrategy]


# --- what a DB recorded → the search options that reproduce it ---------------------------------------------
def infer(store: Store, model: str) -> tuple[ModelSpec, ProfileConfig, str]:
    """(spec without constraints, config, description) reproducing the recorded search."""
    results = [r for r in store.results(model) if r.measurement.status not in (STATUS_SKIPPED, STATUS_NOT_RECORDED)]
    variants = [v for v in store.variants(model) if not v.is_default]
    values: dict[str, Any] = {"profile_models": model}  # the YAML keys of the recorded search
    counts = sorted({v.instance_count for v in variants}) or [1]
    sizes = sorted({v.max_batch_size for v in variants if v.max_batch_size > 0})
    values.update(run_config_search_min_instance_count=counts[0], run_config_search_max_instance_count=counts[-1])
    if sizes:
        values.update(run_config_search_min_model_batch_size=sizes[0], run_config_search_max_model_batch_size=sizes[-1])
    cpu_only = bool(variants) and all(v.instance_kind == "KIND_CPU" for v in variants)
    loads = [r.run_config.load for r in results]
    rate = any(load.request_rate is not None for load in loads)
    kind = "request_rate" if rate else "concurrency"
    recorded = sorted({int(load.value) for load in loads if load.mode == kind and load.value is not None})
    batch_sizes = tuple(sorted({load.batch_size for load in loads})) or (1,)
    spec_load: dict[str, tuple[int, ...]] = {}
    if len(recorded) > 2 and recorded == doubled_list(recorded[0], recorded[-1]):
        values[f"run_config_search_min_{kind}"], values[f"run_config_search_max_{kind}"] = recorded[0], recorded[-1]
        if rate:
            values["request_rate_search_enable"] = True
        load_text = f"{kind} {recorded[0]}..{recorded[-1]} (powers of two)"
    else:
        spec_load[kind] = tuple(recorded) or (1,)
        load_text = f"{kind} {list(recorded)}"
    spec = ModelSpec(model, cpu_only=cpu_only, batch_sizes=batch_sizes, **spec_load)  # type: ignore[arg-type]
    where = "CPU" if cpu_only else "GPU"
    text = (f"{len(variants) + 1} variants ({where}, instances {counts[0]}..{counts[-1]}, max_batch_size "
            f"{sizes[0] if sizes else 0}..{sizes[-1] if sizes else 0}), {load_text}, batch sizes {list(batch_sizes)}")
    return spec, config_from_dict(values, check_paths=False), text


def surface_label(store: Store, model: str) -> str:
    """The `bench_surface` label of a DB made by bench/surfaces/make.py ("SYNTHETIC: …"), else "recorded"."""
    label = store.surface_label(model)
    return label.label if label else "recorded"


def budget(store: Store, model: str, override: float | None) -> tuple[float, str]:
    """The p99 budget (ms) of the constrained runs and where it comes from."""
    if override is not None:
        return override, "--latency-budget"
    label = store.surface_label(model)
    if label is not None:
        return label.latency_budget, "the surface's budget"
    p99 = [r.measurement.values().get("perf_latency_p99") for r in store.results(model) if r.measurement.ok]
    known = [v for v in p99 if v is not None]
    return (statistics.median(known) if known else 0.0), "median recorded p99"


# --- driving a strategy under replay ----------------------------------------------------------------------------
def replayed(strategy: SearchStrategy, recording: Recording) -> SearchStrategy:
    """The strategy as the engine builds it under replay: it knows the recorded loads (`recorded_loads`)."""
    strategy.recorded_loads = recording.recorded_loads
    return strategy


def drive(strategy: SearchStrategy, recording: Recording, slots: int, limit: int = 20000) -> list[Result]:
    """Propose/measure/observe until done, answering from the recording; results in measurement order."""
    out: list[Result] = []
    while len(out) < limit:
        batch = strategy.propose(slots)
        if not batch:
            break
        results = []
        for rc in batch:
            if 0 < rc.variant.max_batch_size < rc.load.batch_size:
                results.append(Result(rc, Measurement(rc.key, status=STATUS_SKIPPED)))
                continue
            recorded = recording.lookup(rc)
            if recorded is None:
                m = Measurement(rc.key, status=STATUS_NOT_RECORDED, error="not recorded")
            elif not recorded.ok:
                m = Measurement(rc.key, status=STATUS_FAILED, error=recorded.error)
            else:
                m = Measurement(rc.key, metrics=recorded.metrics)
            result = Result(rc, m)
            results.append(result)
            out.append(result)
        strategy.observe(results)
    return out


def ratio(judge: Judge, best: Measurement, optimum: Measurement) -> float:
    """best/optimum of the weighted objective (exact for one objective: score s ↔ ratio (2+s)/(2−s))."""
    s = score(judge.values(best), judge.values(optimum), judge.spec.objectives)
    return (2 + s) / (2 - s)


def surface_optimum(store: Store, model: str, judge: Judge) -> Measurement | None:
    """The best measurement recorded for `model` under the judge's constraints (a passing one when any passes)."""
    return judge.best([r.measurement for r in store.results(model) if r.measurement.ok])


def evaluate(results: Sequence[Result], judge: Judge, optimum: Measurement | None) -> dict[str, Any]:
    best: Measurement | None = None
    until: int | None = None
    for i, r in enumerate(results, 1):
        if r.measurement.ok and (best is None or judge.better(r.measurement, best)):
            best = r.measurement
        if until is None and best is not None and optimum is not None and judge.passes(best) == judge.passes(optimum):
            if ratio(judge, best, optimum) >= WITHIN:
                until = i
    return {
        "n": len(results),
        "missing": sum(r.measurement.status == STATUS_NOT_RECORDED for r in results),
        "ratio": ratio(judge, best, optimum) if best is not None and optimum is not None else 0.0,
        "passes": best is not None and judge.passes(best),
        "until": until,
    }


# --- the table ------------------------------------------------------------------------------------------------
def row(name: str, runs: list[dict[str, Any]], brute_n: int) -> str:
    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    n = [r["n"] for r in runs]
    ratios = [r["ratio"] for r in runs]
    untils = [r["until"] for r in runs]
    reached = [u for u in untils if u is not None]
    if len(runs) == 1:
        used = f"{n[0]:>4} ({runs[0]['missing']:>3})"
        share = f"{n[0] / brute_n:6.1%}"
        best = f"{ratios[0]:6.3f}"
        until = f"{untils[0] if untils[0] is not None else '-':>5}"
        ok = "yes" if runs[0]["passes"] else "NO"
    else:
        used = f"{med('n'):>4.0f} ({med('missing'):>3.0f}) [max {max(n)}]"
        share = f"{med('n') / brute_n:6.1%} [max {max(n) / brute_n:.1%}]"
        best = f"{statistics.median(ratios):6.3f} [worst {min(ratios):.3f}]"
        worst = "never" if len(reached) < len(runs) else f"{max(reached)}"
        median = statistics.median(u if u is not None else math.inf for u in untils)
        until = (f"{median:>5.0f}" if median != math.inf else "    -") + f" [worst {worst}] ({len(reached)}/{len(runs)} within 2%)"
        ok = "yes" if all(r["passes"] for r in runs) else f"{sum(r['passes'] for r in runs)}/{len(runs)}"
    return f"    {name:<18} {used:<24} {share:<22} {best:<24} {ok:<6} {until}"


def bench_surface(path: Path, slots: int, seeds: list[int], latency: float | None) -> None:
    store = Store(path)
    recording = Recording(path)
    for model in store.models():
        spec, config, text = infer(store, model)
        base = store.base_config(model)
        limit, source = budget(store, model, latency)
        print(f"\n{path.name} — model {model} ({surface_label(store, model)}): {text}")
        for constrained in (False, True):
            constraints = (Constraint("perf_latency_p99", max=limit),) if constrained else ()
            run_spec = attrs.evolve(spec, constraints=constraints)
            judge = Judge(run_spec)
            title = f"p99 ≤ {limit:g} ms ({source})" if constrained else "no constraint"
            brute = drive(replayed(BruteSearch(run_spec, base, config), recording), recording, slots)
            optimum = surface_optimum(store, model, judge)
            tag = run_spec.objectives[0].tag
            opt_text = "-" if optimum is None else f"{judge.values(optimum).get(tag, 0):.1f}"
            brute_best = judge.best([r.measurement for r in brute if r.measurement.ok])
            brute_text = "-" if brute_best is None else f"{judge.values(brute_best).get(tag, 0):.1f}"
            print(f"  {title}: surface optimum {tag} = {opt_text} (brute's best {brute_text})")
            print(f"    {'strategy':<18} {'measurements (n/r)':<24} {'of brute':<22} {'best / optimum':<24} "
                  f"{'passes':<6} until within 2%")
            brute_n = max(len(brute), 1)
            print(row("brute", [evaluate(brute, judge, optimum)], brute_n))
            quick = drive(replayed(QuickSearch(run_spec, base, config), recording), recording, slots)
            print(row("quick", [evaluate(quick, judge, optimum)], brute_n))
            runs = []
            for seed in seeds:
                strategy = replayed(OptunaSearch(run_spec, base, config, seed=seed, state=SearchState(None)), recording)
                runs.append(evaluate(drive(strategy, recording, slots), judge, optimum))
            print(row(f"optuna ({len(seeds)} seeds)" if len(seeds) > 1 else f"optuna (seed {seeds[0]})", runs, brute_n))
    store.close()


def seed_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            out.extend(range(int(low), int(high) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--surface", action="append", type=Path, default=[],
                        help="a results DB (recorded profile or imported checkpoint); repeatable")
    parser.add_argument("--no-builtin", action="store_true", help="skip the DBs in bench/surfaces/")
    parser.add_argument("--slots", type=int, default=1, help="RunConfigs proposed per batch (default 1)")
    parser.add_argument("--optuna-seeds", default="0-9", help="optuna seeds, e.g. 0-9 or 1,7 (default 0-9)")
    parser.add_argument("--latency-budget", type=float, default=None, help="p99 budget in ms for every surface")
    args = parser.parse_args(argv)
    paths = list(args.surface) + ([] if args.no_builtin else sorted(SURFACES.glob("*.db")))
    if not paths:
        parser.error("no surface: pass --surface DB")
    seeds = seed_list(args.optuna_seeds)
    print(f"bench/search — brute vs quick vs optuna under replay (slots={args.slots}); "
          "measurements (n/r): used (not recorded)")
    for path in paths:
        bench_surface(path, args.slots, seeds, args.latency_budget)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
