"""Assembles a profile from the registries: GPUs, launcher, load generator, collectors, codec, strategy, ranker.

The CLI (and tests, and the agent) call these instead of wiring plugins by hand, so every frontend resolves
names the same way and fails with the same one-line errors.

GPUs: `discover_gpus` asks every registered metric collector for the devices it sees (`MetricCollector.devices`,
the `nvml` collector on GPU hosts), selects them with the `gpus` option (`all`, UUIDs or CUDA indices, `[]`)
and puts them in `RunContext.gpus`. With no GPU (and not `remote`, whose server may have GPUs this host cannot
see — Model Analyzer's rule) `resolve_cpu_only` switches models to `KIND_CPU` and says so in one line,
except models whose `instance_group` names a kind for every group: an explicit kind wins.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from . import metrics, registry
from .errors import ConfigError
from .executor import InProcessExecutor
from .interfaces import Launcher, LoadGenerator, MetricCollector, ModelConfigCodec, RankedConfig, RunContext
from .models import Endpoints, GpuDevice, Metric, ModelSpec
from .repository import prepare_output_repository
from .store import Store

log = logging.getLogger("modelyzer")

NO_GPU_MESSAGE = "no NVIDIA GPU found: profiling CPU-only"
SPEC_FIELDS = ("models", "bls_composing_models", "ensemble_composing_models")
PREFERRED_COLLECTORS = ("nvml",)  # read first; a later collector whose tags are all covered is not run


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


# --- GPUs ---------------------------------------------------------------------------------------------
def found_gpus(config: Any, context: RunContext) -> list[GpuDevice]:
    """Every GPU any registered metric collector sees on this host (first collector wins per UUID)."""
    found: dict[str, GpuDevice] = {}
    replay = getattr(config, "triton_launch_mode", None) == "replay"
    for name, entry in sorted(registry.registry("metric_collectors").items()):
        if replay and name != "replay":
            continue  # a replay profiles on the recorded host's GPUs (the replay plugin's), not on this host's
        try:
            devices = entry.factory(config, context).devices()
        except Exception as err:  # noqa: BLE001 - discovery must not break a CPU-only profile
            log.debug("metric collector %s: GPU discovery failed: %s", name, err)
            continue
        for device in devices:
            found.setdefault(device.uuid, device)
    return sorted(found.values(), key=lambda d: (d.index, d.uuid))


def select_gpus(requested: Iterable[Any] | str | None, found: Sequence[GpuDevice], mode: str = "") -> list[GpuDevice]:
    """The devices the `gpus` option names: `all` (default), UUIDs or CUDA indices, or `[]` for none.

    An index selects the GPU with that index (all MIG instances of a MIG GPU); an unknown UUID or index is a
    one-line ConfigError that lists the GPUs found.
    """
    if requested is None:
        return list(found)
    tokens = [requested] if isinstance(requested, str) else [str(t) for t in requested]
    tokens = [t.strip() for t in tokens if t.strip()]
    if any(t.lower() == "all" for t in tokens):
        return list(found)
    chosen: list[GpuDevice] = []
    for token in tokens:
        matches = [d for d in found if d.uuid.lower() == token.lower()]
        if not matches and token.isdigit():
            matches = [d for d in found if d.index == int(token)]
        if not matches:
            listed = "; ".join(d.describe() for d in found) or "none (no NVIDIA GPU found)"
            hint = " (a remote server's GPUs are not visible here: set dcgm_disable)" if mode == "remote" else ""
            raise ConfigError(f"gpus: no GPU {token!r} on this host; GPUs found: {listed}{hint}")
        chosen.extend(d for d in matches if d not in chosen)
    return chosen


def discover_gpus(config: Any, context: RunContext, store: Store | None = None) -> list[GpuDevice]:
    """Find this host's GPUs, select them per `gpus`, set `context.gpus` and record them in `store`.

    `dcgm_disable` (remote mode only) skips discovery: no GPUs, as in Model Analyzer.
    """
    mode = str(getattr(config, "triton_launch_mode", "local"))
    if getattr(config, "dcgm_disable", False):
        selected: list[GpuDevice] = []
    else:
        selected = select_gpus(getattr(config, "gpus", None), found_gpus(config, context), mode)
    context.gpus = selected
    if selected:
        log.info("GPUs: %s", ", ".join(d.describe() for d in selected))
    if store is not None:
        record_gpus(store, selected)
    return selected


def record_gpus(store: Store, gpus: Iterable[GpuDevice]) -> None:
    for device in gpus:
        store.record_gpu(device.uuid, device.name, device.total_memory_mb * 1_000_000)


def _instance_groups(value: Any) -> list[dict[str, Any]]:
    """Every instance-group dict inside a (possibly swept: lists of lists) `instance_group` parameter."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list | tuple):
        return [g for item in value for g in _instance_groups(item)]
    return []


def _kinds(group: dict[str, Any]) -> list[str]:
    kind = group.get("kind")
    values = kind if isinstance(kind, list | tuple) else [kind] if kind else []
    return [str(k) for k in values]


def cpu_only_without_gpus(spec: ModelSpec) -> bool:
    """`cpu_only` of a model on a host without GPUs: True unless every instance group names its kind."""
    if spec.cpu_only:
        return True
    groups = _instance_groups(spec.model_config_parameters.get("instance_group"))
    if groups and all(_kinds(g) for g in groups):
        return all(k == "KIND_CPU" for g in groups for k in _kinds(g))  # the user's explicit kind wins
    return True


def resolve_cpu_only(config: Any, context: RunContext) -> Any:
    """Without GPUs (and not on a remote server) models are profiled as KIND_CPU; one line says so.

    Call after `discover_gpus`. An explicit `kind` in every `instance_group` of a model's
    `model_config_parameters` wins (Model Analyzer #996); groups without a kind become KIND_CPU.
    """
    if context.gpus or getattr(config, "triton_launch_mode", "local") == "remote":
        return config
    if getattr(config, "gpus", None) == []:
        log.info("gpus is empty: profiling CPU-only")
    else:
        log.warning(NO_GPU_MESSAGE)
    if not attrs.has(type(config)):
        return config
    changes: dict[str, Any] = {}
    for field in SPEC_FIELDS:
        specs = getattr(config, field, None)
        if specs:
            changes[field] = tuple(
                attrs.evolve(m, cpu_only=True) if not m.cpu_only and cpu_only_without_gpus(m) else m for m in specs
            )
    return attrs.evolve(config, **changes)


def make_codec() -> ModelConfigCodec:
    return registry.get("model_config_codecs", "pbtxt").factory()  # type: ignore[no-any-return]


class GpuExecutor(InProcessExecutor):
    """The in-process executor plus server-only GPU sampling (the engine's `MeasuresServerOnly`)."""

    sleep = staticmethod(time.sleep)

    def server_only_gpus(self) -> list[str]:
        return self.context.gpu_uuids

    def server_only_metrics(self, duration: float) -> list[Metric]:
        """Sample the selected GPUs for `duration` s with the server up and no model loaded."""
        wanted = set(self.server_only_gpus())
        gpu_collectors = [c for c in self.collectors if any(_gpu_tag(t) for t in c.tags)]
        running: list[MetricCollector] = []
        out: list[Metric] = []
        try:
            for collector in gpu_collectors:
                collector.start(Endpoints())
                running.append(collector)
            self.sleep(duration)
        finally:
            for collector in running:
                try:
                    out.extend(m for m in collector.stop() if m.gpu_uuid in wanted)
                except Exception as err:  # noqa: BLE001 - a collector must never break the profile
                    self.context.log.warning("collector %s failed: %s", type(collector).__name__, err)
        return out


def _gpu_tag(tag: str) -> bool:
    info = metrics.get(tag)
    return bool(info and info.gpu)


def make_collectors(config: Any, context: RunContext) -> list[MetricCollector]:
    """Enabled collectors; one whose tags another (earlier, or preferred) collector already covers is not run.

    So a GPU's memory is read once: directly from NVML when the `nvml` collector runs, else from the server's
    `/metrics` (`triton_metrics`).
    """
    entries = sorted(registry.registry("metric_collectors").items())
    entries.sort(key=lambda item: item[0] not in PREFERRED_COLLECTORS)
    collectors: list[MetricCollector] = []
    covered: set[str] = set()
    for name, entry in entries:
        collector = entry.factory(config, context)
        if not collector.enabled():
            log.debug("metric collector %s disabled for this config", name)
            continue
        tags = set(collector.tags)
        if tags and tags <= covered:
            log.debug("metric collector %s: its metrics come from another collector", name)
            continue
        covered |= tags
        collectors.append(collector)
    return collectors


def make_executor(config: Any, context: RunContext) -> InProcessExecutor:
    launcher: Launcher = registry.get("launchers", config.triton_launch_mode).factory(config, context)
    if config.triton_launch_mode == "replay":  # recorded results answer: no live collectors, no server-only window
        replay: LoadGenerator = registry.get("load_generators", "replay").factory(config, context)
        return InProcessExecutor(config, context, launcher, replay, [], make_codec())
    loadgen_name = "genai_perf" if str(getattr(config, "model_type", "generic")).lower() == "llm" else "perf_analyzer"
    load_generator: LoadGenerator = registry.get("load_generators", loadgen_name).factory(config, context)
    collectors = make_collectors(config, context)
    return GpuExecutor(config, context, launcher, load_generator, collectors, make_codec())


def prepare(config: Any) -> tuple[RunContext, Store]:
    """Context (with the selected GPUs), output repository and results store of one profile."""
    context = make_context(config)
    discover_gpus(config, context)
    prepare_output_repository(Path(config.output_model_repository_path), bool(config.override_output_model_repository))
    store = Store(config.results_db)
    record_gpus(store, context.gpus)
    return context, store


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
