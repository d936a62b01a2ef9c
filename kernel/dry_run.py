"""The dry run of a profile (`modelyzer check`, `modelyzer profile --dry-run`): everything that can be checked without
measuring, and the plan.

`dry_run(config)` checks the plugins the config names (`assembly.check_plugin_names`), what the engine cannot do
(`profile.check_supported`), every ensemble step, then — when RunConfigs run on this host — the launcher
(`Launcher.check`: server binary, docker engine) and the load generator (`LoadGenerator.check`: perf_analyzer), the
GPUs, the export path, and finally builds each model's search strategy on its base config to read the search space
size, the RunConfig estimate and the first RunConfigs. Nothing is measured, no server is started, no directory is
created and the results DB is neither written nor created (search state lives in memory). Any problem is one
`ConfigError` line (exit code 2).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel import assembly, registry
from modelyzer.kernel.composing import COMPOSING_BASES_KEY, with_composing
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, ModelyzerError
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.gpus import cpu_instance_groups, discover_gpus, resolve_cpu_only
from modelyzer.kernel.interfaces import LoadGenerator, ModelConfigCodec, RunContext
from modelyzer.kernel.models import MEMBERS_KEY, ModelSpec, RunConfig
from modelyzer.kernel.profile import check_ensembles, check_supported, grouped, with_plugin_flags

log = logging.getLogger("modelyzer")

FIRST_RUN_CONFIGS = 5  # how many RunConfigs of each model the plan shows


@attrs.frozen
class ModelPlan:
    """One model's search: its strategy's space size and RunConfig estimate, and the first RunConfigs."""

    name: str
    space_size: int | None
    estimate: int | None
    first: tuple[RunConfig, ...]


@attrs.frozen
class Plan:
    """What a profile of the config would do (the lines `modelyzer check` prints)."""

    lines: tuple[str, ...]
    models: tuple[ModelPlan, ...]


def _fail(what: str, err: BaseException) -> ConfigError:
    text = " ".join(str(err).split()) or type(err).__name__
    return ConfigError(text if isinstance(err, ModelyzerError) else f"{what}: {text[:200]}")


def runs_here(config: ProfileConfig) -> bool:
    """Whether the chosen executor runs RunConfigs on this host (its class says so; a factory function: unknown)."""
    factory = registry.get("executors", config.executor).factory
    return isinstance(factory, type) and issubclass(factory, Executor) and factory.on_this_host


def _writable_parent(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` when it is not a writable directory (None: fine)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK) else candidate
    return None


def base_config(spec: ModelSpec, codec: ModelConfigCodec) -> dict[str, Any]:
    """The model's config as the engine builds it (members of a concurrent group, composing models' bases)."""
    if spec.members:
        return {MEMBERS_KEY: [{"model": m.name, "config": base_config(m, codec)} for m in spec.members]}
    base = cpu_instance_groups(spec, codec.read(Path(spec.model_path) / codec.filename), codec.filename)
    if spec.composing:
        base[COMPOSING_BASES_KEY] = [{"model": c.name, "config": base_config(c, codec)} for c in spec.composing]
    return base


def dry_run(config: ProfileConfig) -> Plan:
    """Check everything that can be checked without measuring and return the plan (see the module docstring)."""
    try:
        return _dry_run(config)
    except ModelyzerError as err:
        if isinstance(err, ConfigError):
            raise
        raise _fail("check", err) from err


def _dry_run(config: ProfileConfig) -> Plan:
    assembly.check_plugin_names(config)
    check_supported(config)
    check_ensembles(config)
    lines = [f"config: {config.config_file or 'command line only'}: ok"]
    for key in ("export_path", "results_db"):
        blocked = _writable_parent(Path(getattr(config, key)).resolve())
        if blocked is not None:
            raise ConfigError(f"{key}: {blocked} is not a writable directory; give a writable path")
    results_db = Path(config.results_db)
    config = attrs.evolve(config, results_db=Path(":memory:"))  # search state in memory: the DB is not created
    context = RunContext(export_path=Path(config.export_path).resolve(),
                         output_model_repository=Path(config.output_model_repository_path).resolve())
    lines.append(f"model repository: {config.model_repository or '(remote server)'}")
    if runs_here(config):
        lines += _check_this_host(config, context)
        config = resolve_cpu_only(config, context)
    else:
        lines += registry.get("executors", config.executor).factory(config, context).check()
        lines.append(f"executor {config.executor}: binaries and GPUs are checked on the hosts that run the "
                     "RunConfigs, when they join")
    reporters = [name for name in sorted(registry.registry("reporters"))
                 if assembly.reporters(config, context, "profile", [name])]
    lines.append(f"reporters: {', '.join(reporters) or 'none'}")
    config = grouped(with_plugin_flags(with_composing(assembly.with_tuned_fields(config))))
    codec = assembly.codec(config)
    factory = assembly.strategy_factory(config, assembly.recorded_loads(config, context))
    lines.append(f"search: {config.run_config_search_mode}; ranker: {config.ranker}; executor: {config.executor}; "
                 f"results DB: {results_db} (not created by a check)")
    models = []
    for spec in config.models:
        strategy = factory(spec, base_config(spec, codec), config)
        estimate = strategy.total_estimate()
        first = tuple(strategy.propose(FIRST_RUN_CONFIGS)[:FIRST_RUN_CONFIGS])
        models.append(ModelPlan(spec.name, strategy.space_size(), estimate, first))
    return Plan(tuple(lines), tuple(models))


def _names(kind: str, built: list[Any]) -> str:
    """The registered names of built plugins (their class name when registered by a factory function)."""
    by_class = {entry.factory: name for name, entry in registry.registry(kind).items()}
    return ", ".join(by_class.get(type(b), type(b).__name__) for b in built) or "none"


def _check_this_host(config: ProfileConfig, context: RunContext) -> list[str]:
    """The launcher's and the load generator's own checks (binaries, docker engine), then the GPUs and collectors."""
    launcher = assembly.launcher(config, context)  # building it starts nothing
    try:
        launcher.check()
    except Exception as err:  # noqa: BLE001 - a plugin's check: one line whatever it raises
        raise _fail(f"triton_launch_mode {config.triton_launch_mode}", err) from err
    generator: LoadGenerator | None = launcher.load_generator()  # a recording brings its own
    name = type(generator).__name__
    if generator is None:
        entry = assembly.load_generator_entry(config)
        generator, name = entry.factory(config, context), entry.name
    try:
        generator.check()
    except Exception as err:  # noqa: BLE001
        raise _fail("load_generator", err) from err
    gpus = discover_gpus(config, context, launcher)
    return [f"launcher: {config.triton_launch_mode} (checked); load generator: "
            f"{name} (checked)",
            f"GPUs: {', '.join(g.describe() for g in gpus) if gpus else 'none'}",
            f"metric collectors: {_names('metric_collectors', assembly.collectors(config, context, launcher))}"]


def describe(run_config: RunConfig) -> str:
    """One RunConfig of the plan: its knobs (or `default`) and its load."""
    if run_config.members:
        return " + ".join(describe(m) for m in run_config.members)
    variant = run_config.variant
    knobs = "default config" if variant.is_default or not variant.params else ", ".join(
        f"{k}={v}" for k, v in sorted(variant.params.items()))
    knobs = knobs if len(knobs) <= 100 else knobs[:97] + "..."
    return f"{knobs} @ {run_config.load.describe()}"


def plan_text(plan: Plan) -> list[str]:
    """The plan as the lines `modelyzer check` prints."""
    out = list(plan.lines)
    for model in plan.models:
        size = f"{model.space_size} model configs" if model.space_size is not None else "model configs: unknown"
        estimate = f"at most {model.estimate} RunConfigs" if model.estimate is not None else "RunConfigs: unknown"
        out.append(f"model {model.name}: {size}, {estimate}; first:")
        out.extend(f"  {describe(rc)}" for rc in model.first)
    out.append("ok: nothing measured, no server started, no results DB written")
    return out
