"""Assembles a profile from the registries: launcher, load generator, collectors, codec, strategy, ranker.

The CLI (and tests, and the agent) call these instead of wiring plugins by hand, so every frontend resolves
names the same way and fails with the same one-line errors.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs

from . import registry
from .errors import ConfigError
from .executor import InProcessExecutor
from .interfaces import Launcher, LoadGenerator, MetricCollector, ModelConfigCodec, RankedConfig, RunContext
from .models import ModelSpec
from .repository import prepare_output_repository
from .store import Store

log = logging.getLogger("modelyzer")


def check_plugin_names(config: Any) -> None:
    """Launch mode and search mode must name registered plugins (did-you-mean on a typo)."""
    import difflib

    for key, kind in (("triton_launch_mode", "launchers"), ("run_config_search_mode", "search_strategies")):
        value = getattr(config, key)
        known = sorted(registry.registry(kind))
        if value not in known:
            close = difflib.get_close_matches(str(value), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{key}: unknown value {value!r}; {hint}choose one of {', '.join(known)}")


def make_context(config: Any) -> RunContext:
    export = Path(config.export_path).resolve()
    export.mkdir(parents=True, exist_ok=True)
    repo = Path(config.output_model_repository_path).resolve()
    return RunContext(export_path=export, output_model_repository=repo, gpus=[])


def resolve_cpu_only(config: Any, context: RunContext) -> Any:
    """Without GPUs (and not on a remote server) every model is profiled as KIND_CPU."""
    if context.gpus or config.triton_launch_mode == "remote":
        return config
    models = tuple(attrs.evolve(m, cpu_only=True) if not m.cpu_only else m for m in config.models)
    return attrs.evolve(config, models=models) if attrs.has(type(config)) else config


def make_codec() -> ModelConfigCodec:
    return registry.get("model_config_codecs", "pbtxt").factory()  # type: ignore[no-any-return]


def make_executor(config: Any, context: RunContext) -> InProcessExecutor:
    launcher: Launcher = registry.get("launchers", config.triton_launch_mode).factory(config, context)
    loadgen_name = "genai_perf" if str(getattr(config, "model_type", "generic")).lower() == "llm" else "perf_analyzer"
    load_generator: LoadGenerator = registry.get("load_generators", loadgen_name).factory(config, context)
    collectors: list[MetricCollector] = []
    for name, entry in sorted(registry.registry("metric_collectors").items()):
        collector = entry.factory(config, context)
        if collector.enabled():
            collectors.append(collector)
        else:
            log.debug("metric collector %s disabled for this config", name)
    return InProcessExecutor(config, context, launcher, load_generator, collectors, make_codec())


def prepare(config: Any) -> tuple[RunContext, Store]:
    context = make_context(config)
    prepare_output_repository(Path(config.output_model_repository_path), bool(config.override_output_model_repository))
    return context, Store(config.results_db)


def rank_models(store: Store, config: Any, top_n: int | None = None) -> dict[str, list[RankedConfig]]:
    ranker = registry.get("rankers", "weighted").factory()
    n = config.num_configs_per_model if top_n is None else top_n
    out: dict[str, list[RankedConfig]] = {}
    for spec in config.models:
        out[spec.name] = ranker.rank(spec, store.results(spec.name), n)
    return out


def spec_by_name(config: Any, name: str) -> ModelSpec | None:
    return next((m for m in config.models if m.name == name), None)


def write_reports(store: Store, run_id: int, config: Any, ranking: dict[str, list[RankedConfig]]) -> list[Path]:
    paths: list[Path] = []
    context = make_context(config)
    for name, entry in sorted(registry.registry("reporters").items()):
        reporter = entry.factory(config, context)
        if hasattr(reporter, "enabled") and not reporter.enabled():
            continue
        log.debug("reporter %s", name)
        paths.extend(reporter.write(store, run_id, config, ranking))
    return paths


def strategy_factory(config: Any) -> Any:
    return registry.get("search_strategies", config.run_config_search_mode).factory
