"""Choosing plugins: by the key the user set where the user chooses, by declared capability where the kernel must.

Where the user chooses (launch mode, search mode, ranker, executor, an explicit `load_generator`) the config names
the plugin and it is looked up in its registry, with a did-you-mean on a typo. Where the kernel decides it asks
what each plugin declares on its interface: the load generator that serves the model type, the collectors that
apply to the launcher's server, the codec whose file the model directories hold. No plugin name appears here.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel import registry
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.config_checks import codec_for
from modelyzer.kernel.config_fields import INSTALL_HINTS
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.interfaces import (
    Launcher,
    LoadGenerator,
    MetricCollector,
    ModelConfigCodec,
    Ranker,
    RecordedLoads,
    Reporter,
    RunContext,
    SearchStrategy,
)
from modelyzer.kernel.models import ModelSpec

log = logging.getLogger("modelyzer")

#: (config key, registry kind) of the plugins the user chooses by name
CHOSEN_BY_KEY = (
    ("triton_launch_mode", "launchers"),
    ("run_config_search_mode", "search_strategies"),
    ("ranker", "rankers"),
    ("executor", "executors"),
    ("load_generator", "load_generators"),
)

StrategyFactory = Callable[[ModelSpec, dict[str, Any], ProfileConfig], SearchStrategy]


def check_plugin_names(config: ProfileConfig) -> None:
    """Every plugin the config names must be registered (one line with a did-you-mean on a typo)."""
    for key, kind in CHOSEN_BY_KEY:
        value = getattr(config, key)
        if value is None:
            continue
        known = sorted(registry.registry(kind))
        if value not in known:
            close = difflib.get_close_matches(str(value), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{key}: unknown {registry.KIND_LABELS[kind]} {value!r}; {hint}"
                              f"choose one of {', '.join(known) or 'none installed'}")


def _chosen(kind: str, name: str) -> registry.Entry:
    return registry.get(kind, name)


def launcher(config: ProfileConfig, context: RunContext) -> Launcher:
    """The launcher of `triton_launch_mode`; its capabilities go into the context."""
    built: Launcher = _chosen("launchers", config.triton_launch_mode).factory(config, context)
    context.server_on_this_host = built.on_this_host
    return built


def launcher_class(config: ProfileConfig) -> type[Launcher] | None:
    """The class of the chosen launcher, to read its capabilities without building it (None: a factory function)."""
    factory = _chosen("launchers", config.triton_launch_mode).factory
    return factory if isinstance(factory, type) and issubclass(factory, Launcher) else None


def strategy_class(config: ProfileConfig) -> type[SearchStrategy] | None:
    """The class of the chosen search strategy (None: a factory function, capabilities unknown)."""
    factory = _chosen("search_strategies", config.run_config_search_mode).factory
    return factory if isinstance(factory, type) and issubclass(factory, SearchStrategy) else None


def group_strategies() -> list[str]:
    """The search strategies that declare they search concurrent groups (`SearchStrategy.searches_groups`)."""
    return sorted(name for name, entry in registry.registry("search_strategies").items()
                  if getattr(entry.factory, "searches_groups", False))


def workloads(config: ProfileConfig) -> list[dict[str, Any]]:
    """The workloads of the load generator the model type gets (`LoadGenerator.workloads`); [{}] for none."""
    try:
        factory = load_generator_entry(config).factory
    except ConfigError:
        return [{}]  # (said when the executor is built)
    if isinstance(factory, type) and issubclass(factory, LoadGenerator):
        return factory.workloads(config) or [{}]
    return [{}]


def with_tuned_fields(config: ProfileConfig) -> ProfileConfig:
    """The config with each model's `tuned_fields` and `cpu_accelerators` set from the chosen launcher's
    capabilities (class attributes: nothing is built)."""
    factory = _chosen("launchers", config.triton_launch_mode).factory
    launcher = factory if isinstance(factory, type) and issubclass(factory, Launcher) else None
    fields = launcher.tuned_fields if launcher is not None else None
    accelerators = tuple(launcher.cpu_accelerators) if launcher is not None else ()
    if fields is None and not accelerators:
        return config
    return attrs.evolve(config, models=tuple(
        attrs.evolve(m, tuned_fields=m.tuned_fields if fields is None else tuple(fields),
                     cpu_accelerators=accelerators)
        for m in config.models))


def serves(entry: registry.Entry, model_type: str) -> bool:
    """Whether a registered load generator declares that it serves `model_type`."""
    factory = entry.factory
    types = factory.model_types if isinstance(factory, type) and issubclass(factory, LoadGenerator) else frozenset()
    return model_type.lower() in {t.lower() for t in types}


def load_generator_entry(config: ProfileConfig) -> registry.Entry:
    """The `load_generator` the user named, else the installed one that serves `model_type` (highest preference)."""
    if config.load_generator:
        return _chosen("load_generators", config.load_generator)
    entries = registry.registry("load_generators")
    candidates = [e for e in entries.values() if serves(e, config.model_type)]
    if not candidates:
        offered = sorted({t for e in entries.values() if isinstance(e.factory, type)
                          for t in getattr(e.factory, "model_types", ())})
        wanted = INSTALL_HINTS.get(config.model_type.lower(), "a load-generator plugin that serves them")
        raise ConfigError(
            f"model_type: no installed load generator serves {config.model_type!r} models (installed ones serve: "
            f"{', '.join(offered) or 'nothing'}); install {wanted} (`pip install` it; `modelyzer plugins` lists it) "
            "or name one with load_generator")
    candidates.sort(key=lambda e: (-e.factory.preference, e.name))
    if len(candidates) > 1:
        log.info("load generators serving %s: %s; using %s (set load_generator to choose)", config.model_type,
                 ", ".join(e.name for e in candidates), candidates[0].name)
    return candidates[0]


def load_generator(config: ProfileConfig, context: RunContext, server: Launcher) -> LoadGenerator:
    """The launcher's own load generator when it brings one, else the one chosen for the model type."""
    own = server.load_generator()
    if own is not None:
        return own
    built: LoadGenerator = load_generator_entry(config).factory(config, context)
    return built


def collectors(config: ProfileConfig, context: RunContext, server: Launcher) -> list[MetricCollector]:
    """Enabled collectors that apply to `server`; of two covering the same tags the higher `precedence` runs.

    So a GPU's memory is read once: directly from the hardware when such a collector is enabled, else from the
    server's metrics endpoint. A launcher that brings its own load generator (recorded results) gets none.
    """
    if server.load_generator() is not None:
        return []
    built: list[tuple[str, MetricCollector]] = []
    for name, entry in sorted(registry.registry("metric_collectors").items()):
        collector: MetricCollector = entry.factory(config, context)
        if collector.needs_server_metrics and not server.serves_metrics:
            log.debug("metric collector %s: the server exposes no metrics", name)
            continue
        if not collector.enabled():
            log.debug("metric collector %s disabled for this config", name)
            continue
        built.append((name, collector))
    built.sort(key=lambda item: -item[1].precedence)
    chosen: list[MetricCollector] = []
    covered: set[str] = set()
    for name, collector in built:
        tags = set(collector.tags)
        if tags and tags <= covered:
            log.debug("metric collector %s: its metrics come from another collector", name)
            continue
        covered |= tags
        chosen.append(collector)
    return chosen


def codec(config: ProfileConfig | None = None, model_dirs: Iterable[Path] = ()) -> ModelConfigCodec:
    """The codec whose config file the model directories hold (the profiled models' when `config` is given).

    With no model directory to look at (reports, imports), or none holding a known file, the codec with the
    highest `preference` (then the first by name), so installing another codec does not change that format.
    """
    dirs = list(model_dirs) or ([Path(m.model_path) for m in config.models] if config is not None else [])
    return codec_for(dirs)


def ranker(config: ProfileConfig) -> Ranker:
    built: Ranker = _chosen("rankers", config.ranker).factory(config)
    return built


def strategy_factory(config: ProfileConfig, loads: RecordedLoads | None = None) -> StrategyFactory:
    """The chosen search strategy's factory; with `loads`, each strategy built gets them (`recorded_loads`)."""
    factory: StrategyFactory = _chosen("search_strategies", config.run_config_search_mode).factory
    if loads is None:
        return factory

    def build(spec: ModelSpec, base_config: dict[str, Any], settings: ProfileConfig) -> SearchStrategy:
        strategy = factory(spec, base_config, settings)
        strategy.recorded_loads = loads
        return strategy

    return build


def recorded_loads(config: ProfileConfig, context: RunContext) -> RecordedLoads | None:
    """The loads the launcher's own load generator answers (a recording: `LoadGenerator.recorded_loads`), for the
    search strategies; None when it brings none or answers any load (building the launcher starts nothing)."""
    own = launcher(config, context).load_generator()
    if own is None or type(own).recorded_loads is LoadGenerator.recorded_loads:
        return None
    return own.recorded_loads


def reporters(config: ProfileConfig, context: RunContext, command: str = "profile",
              names: Iterable[str] | None = None) -> list[Reporter]:
    """Enabled reporters of `command` by their `order`, then name (only `names` when given)."""
    wanted = set(names) if names is not None else None
    context.command = command
    out: list[Reporter] = []
    entries = sorted(registry.registry("reporters").items())
    entries.sort(key=lambda item: getattr(item[1].factory, "order", Reporter.order))
    for name, entry in entries:
        if wanted is not None and name not in wanted:
            continue
        reporter: Reporter = entry.factory(config, context)
        if command not in reporter.commands:
            continue
        if reporter.enabled():
            out.append(reporter)
        else:
            log.debug("reporter %s disabled for this config", name)
    return out


@attrs.frozen
class SlotParts:
    """What one execution slot measures with: a launcher, a load generator, collectors and the codec."""

    launcher: Launcher
    load_generator: LoadGenerator
    collectors: tuple[MetricCollector, ...]
    codec: ModelConfigCodec


def slot_parts(config: ProfileConfig, context: RunContext, server: Launcher | None = None) -> SlotParts:
    """Build the parts of one slot (GPUs must already be in `context`)."""
    server = server or launcher(config, context)
    return SlotParts(server, load_generator(config, context, server), tuple(collectors(config, context, server)),
                     codec(config))
