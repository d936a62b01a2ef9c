"""`Profile`: one profile of a config, wired from the registries — plugins → executor → engine → ranker → reporters.

Every frontend uses it (the CLI's `profile` and `report`, the agent daemon's slots through `kernel.assembly`, the
benches), so plugin choice, GPU discovery, the CPU-only rule and report writing happen the same way everywhere:

    profile = Profile(config)            # checks the named plugins, makes the export path
    profile.prepare()                    # output repository, results DB, executor, GPUs, CPU-only rule
    summary = profile.run()              # the engine: search, measure, store (resumable, Ctrl-C safe)
    ranking = profile.rank()             # the configured ranker, per model
    paths = profile.write_reports(summary.run_id, ranking)
    profile.close()
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import attrs

from modelyzer.kernel import assembly, hooks, ranking, registry
from modelyzer.kernel.composing import with_composing
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.engine import Engine, ProfileSummary
from modelyzer.kernel.errors import ConfigError, ReportError
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.gpus import cpu_only_server, discover_gpus, resolve_cpu_only, use_gpus
from modelyzer.kernel.interfaces import RankedConfig, RunContext
from modelyzer.kernel.models import group_spec
from modelyzer.kernel.progress import Progress
from modelyzer.kernel.repository import prepare_output_repository
from modelyzer.kernel.store import Store

log = logging.getLogger("modelyzer")


def make_context(config: ProfileConfig) -> RunContext:
    """The run context of `config`: export path (created) and output model repository, no GPUs yet."""
    export = Path(config.export_path).resolve()
    try:
        export.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"export_path: cannot create {export} ({err.strerror}); give -e/--export-path a writable "
                          "directory") from None
    return RunContext(export_path=export, output_model_repository=Path(config.output_model_repository_path).resolve())


def check_supported(config: ProfileConfig) -> None:
    """One line, before anything starts, for what the config asks and the engine cannot do — instead of silently
    profiling something else (models profiled concurrently: `check_concurrent`)."""
    if config.run_config_profile_models_concurrently_enable and not any(m.members for m in config.models):
        check_concurrent(config)


CONCURRENT = "run_config_profile_models_concurrently_enable"


def check_concurrent(config: ProfileConfig) -> None:
    """Models profiled concurrently: at least two, one server for all (same flags and environment), a launcher
    that serves several models at once and a search strategy that searches their joint space."""
    models = config.models
    if len(models) < 2:
        raise ConfigError(f"{CONCURRENT}: needs at least two profile_models (got {len(models)}); remove the key "
                          "to profile one model")
    if config.bls_composing_models:
        raise ConfigError(f"{CONCURRENT}: a BLS model (bls_composing_models) cannot be profiled concurrently with "
                          "other models; remove one of the two keys")
    first = models[0]
    for spec in models[1:]:
        for key in ("triton_server_flags", "triton_server_environment", "triton_docker_args"):
            if getattr(spec, key) != getattr(first, key):
                raise ConfigError(f"profile_models.{spec.name}.{key}: models profiled concurrently share one server; "
                                  f"give every model the same {key} as {first.name!r}")
    launcher = assembly.launcher_class(config)
    if launcher is not None and not launcher.serves_models_together:
        raise ConfigError(f"{CONCURRENT}: triton_launch_mode {config.triton_launch_mode!r} serves one model at a "
                          "time; use a launch mode whose server holds several models (local, docker, remote)")
    strategy = assembly.strategy_class(config)
    if strategy is not None and not strategy.searches_groups:
        able = assembly.group_strategies()
        raise ConfigError(f"{CONCURRENT}: run_config_search_mode {config.run_config_search_mode!r} cannot search "
                          f"models profiled concurrently; use {' or '.join(able) or 'another strategy'}")


def grouped(config: ProfileConfig) -> ProfileConfig:
    """With `run_config_profile_models_concurrently_enable`, the profile's models as one concurrent group
    (`models.group_spec`: name "a,b", per-model objectives and constraints, normalised weighting)."""
    if not config.run_config_profile_models_concurrently_enable or len(config.models) < 2:
        return config
    if any(m.members for m in config.models):
        return config
    for spec in config.models:
        if spec.composing:
            raise ConfigError(f"{CONCURRENT}: {spec.name} calls composing models (an ensemble or a BLS model) and "
                              "cannot be profiled concurrently with other models; remove the key or that model")
    return attrs.evolve(config, models=(group_spec(tuple(config.models)),))


def check_ensembles(config: ProfileConfig) -> None:
    """Every step of a profiled ensemble (its `ensemble_scheduling`) names a model of the repository: one line
    naming a missing composing model, before anything starts."""
    if config.model_repository is None:
        return
    codec = assembly.codec(config)
    repo = Path(config.model_repository)
    for spec in config.models:
        path = Path(spec.model_path) / codec.filename
        if not path.is_file():
            continue
        for step in (codec.read(path).get("ensemble_scheduling") or {}).get("step") or []:
            name = str(step.get("model_name") or "")
            if name and not (repo / name / codec.filename).is_file():
                raise ConfigError(f"profile_models: ensemble {spec.name!r} has a step calling {name!r}, which has no "
                                  f"{codec.filename} in {repo}; add that composing model to the model repository")


def with_plugin_flags(config: ProfileConfig) -> ProfileConfig:
    """The config with the perf_analyzer flags plugins say each model needs (`model_perf_analyzer_flags`, e.g. the
    `--shape` of a dynamic dimension) applied over the model's own `perf_analyzer_flags`."""
    models = []
    for spec in config.models:
        added = hooks.model_perf_analyzer_flags(spec, config)
        models.append(attrs.evolve(spec, perf_analyzer_flags={**spec.perf_analyzer_flags, **added}) if added else spec)
    return attrs.evolve(config, models=tuple(models))


class Profile:
    """One profile of `config`; see the module docstring. `store` may be given (an open results DB)."""

    def __init__(self, config: ProfileConfig, progress: Progress | None = None, store: Store | None = None) -> None:
        self.started = time.monotonic()  # the command's wall time starts here (the duty figure's base)
        assembly.check_plugin_names(config)
        self.config = config
        self.progress = progress or Progress()
        self.context = make_context(config)
        self.context.status = self.progress.status
        self._store = store
        self.executor: Executor | None = None

    @property
    def store(self) -> Store:
        """The results DB (opened, and migrated, on first use)."""
        if self._store is None:
            self._store = Store(self.config.results_db)
        return self._store

    def prepare(self) -> Executor:
        """Everything before the first measurement: executor, GPUs, output repository, results DB, CPU-only rule.

        An executor on other hosts starts here and waits for them (Ctrl-C stops it); its hosts' GPUs become the
        profile's. Idempotent.
        """
        if self.executor is not None:
            return self.executor
        check_supported(self.config)
        check_ensembles(self.config)
        self.store.claim()  # one writing profile per results DB: a second one stops here, with one line
        executor: Executor = registry.get("executors", self.config.executor).factory(self.config, self.context)
        try:
            offered = executor.offered_gpus()
            launcher = assembly.launcher(self.config, self.context)  # building it starts nothing
            if offered is not None:  # the executor's hosts (agents) run the launcher the config names: its device truth
                self.context.cpu_only_server = cpu_only_server(launcher)
            gpus = offered if offered is not None else discover_gpus(self.config, self.context, launcher)
            prepare_output_repository(Path(self.config.output_model_repository_path),
                                      self.config.override_output_model_repository)
            use_gpus(self.context, gpus, self.store)
        except BaseException:
            executor.stop()
            raise
        self.config = grouped(with_plugin_flags(with_composing(
            assembly.with_tuned_fields(resolve_cpu_only(self.config, self.context)))))
        self.executor = executor
        return executor

    def engine(self) -> Engine:
        executor = self.prepare()  # first: it settles the config (CPU-only rule)
        return Engine(self.config, self.store, executor, assembly.codec(self.config),
                      assembly.strategy_factory(self.config, assembly.recorded_loads(self.config, self.context)),
                      self.progress, assembly.workloads(self.config), started=self.started)

    def run(self) -> ProfileSummary:
        """Search, measure and store every model (the executor is stopped at the end, also on Ctrl-C)."""
        return self.engine().run()

    def rank(self, top_n: int | None = None) -> dict[str, list[RankedConfig]]:
        """Each model's configs ordered by the configured ranker, at most `top_n` (num_configs_per_model)."""
        ranker = assembly.ranker(self.config)
        n = self.config.num_configs_per_model if top_n is None else top_n
        reference = assembly.workloads(self.config)[0]  # the other workloads are reported, not ranked
        return {spec.name: ranker.rank(spec, ranking.at_workload(self.store.results(spec.name), reference), n)
                for spec in self.config.models}

    def ties(self) -> dict[str, ranking.Tie]:
        """The models whose leading configs the measurements cannot tell apart (`ranking.tie`), over all configs."""
        ranked = self.rank(top_n=sys.maxsize)
        found = {spec.name: ranking.tie(ranked[spec.name], spec.objectives) for spec in self.config.models}
        return {name: tie for name, tie in found.items() if tie is not None}

    def write_reports(self, run_id: int, ranking: dict[str, list[RankedConfig]], command: str = "profile",
                      names: Iterable[str] | None = None) -> list[Path]:
        """Run every enabled reporter of `command` (only `names` when given); return the paths written."""
        paths: list[Path] = []
        for reporter in assembly.reporters(self.config, self.context, command, names):
            try:
                paths.extend(reporter.write(self.store, run_id, self.config, ranking))
            except OSError as err:  # the measurements are stored: say where, and how to write the reports again
                where = err.filename or f"{type(reporter).__name__}'s files into {self.context.export_path}"
                raise ReportError(f"could not write {where} ({err.strerror or err}); the measurements are kept in "
                                  f"{self.config.results_db}: give -e/--export-path a writable directory and run "
                                  "`modelyzer export` (or the same command again) to write the reports") from err
        return paths

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
