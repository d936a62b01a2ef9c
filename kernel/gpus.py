"""GPU discovery and the CPU-only rule: which GPUs a profile uses, and what happens without any.

`discover_gpus` asks the launcher first (a launcher that knows its server's GPUs itself, e.g. one answering from
a recording, returns them from `Launcher.devices()`), else every registered metric collector for the devices it
sees on this host (`MetricCollector.devices`), selects them with the `gpus` option (`all`, UUIDs or CUDA indices,
`[]`) and puts them in `RunContext.gpus`. With no GPU, and a server on this host (a remote server may have GPUs
this host cannot see — Model Analyzer's rule), `resolve_cpu_only` switches models to `KIND_CPU` and says so in
one line, except models whose `instance_group` names a kind for every group: an explicit kind wins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from modelyzer.kernel import registry
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import GpuDevice, ModelSpec
from modelyzer.kernel.store import Store

log = logging.getLogger("modelyzer")

NO_GPU_MESSAGE = "no NVIDIA GPU found: profiling CPU-only"
SPEC_FIELDS = ("models", "bls_composing_models", "ensemble_composing_models")


def found_gpus(config: ProfileConfig, context: RunContext, launcher: Launcher | None = None) -> list[GpuDevice]:
    """Every GPU this profile's server can use: the launcher's own, else what the collectors see on this host."""
    known = launcher.devices() if launcher is not None else None
    if known is not None:
        return sorted(known, key=lambda d: (d.index, d.uuid))
    found: dict[str, GpuDevice] = {}
    for name, entry in sorted(registry.registry("metric_collectors").items()):
        try:
            devices = entry.factory(config, context).devices()
        except Exception as err:  # noqa: BLE001 - discovery must not break a CPU-only profile
            log.debug("metric collector %s: GPU discovery failed: %s", name, err)
            continue
        for device in devices:
            found.setdefault(device.uuid, device)
    return sorted(found.values(), key=lambda d: (d.index, d.uuid))


def select_gpus(requested: Iterable[Any] | str | None, found: Sequence[GpuDevice], on_this_host: bool = True
                ) -> list[GpuDevice]:
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
            hint = "" if on_this_host else " (a remote server's GPUs are not visible here: set dcgm_disable)"
            raise ConfigError(f"gpus: no GPU {token!r} on this host; GPUs found: {listed}{hint}")
        chosen.extend(d for d in matches if d not in chosen)
    return chosen


def discover_gpus(config: ProfileConfig, context: RunContext, launcher: Launcher | None = None,
                  store: Store | None = None) -> list[GpuDevice]:
    """Find the GPUs, select them per `gpus`, set `context.gpus` and record them in `store`.

    `dcgm_disable` skips discovery: no GPUs, as in Model Analyzer.
    """
    if config.dcgm_disable:
        selected: list[GpuDevice] = []
    else:
        selected = select_gpus(config.gpus, found_gpus(config, context, launcher), context.server_on_this_host)
    use_gpus(context, selected, store)
    return selected


def use_gpus(context: RunContext, gpus: Sequence[GpuDevice], store: Store | None = None) -> None:
    """Make `gpus` the profile's GPUs (in `context`, and recorded in `store`)."""
    context.gpus = list(gpus)
    if gpus:
        log.info("GPUs: %s", ", ".join(d.describe() for d in gpus))
    if store is not None:
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


def resolve_cpu_only(config: ProfileConfig, context: RunContext) -> ProfileConfig:
    """Without GPUs (and with the server on this host) models are profiled as KIND_CPU; one line says so.

    Call after the GPUs are known. An explicit `kind` in every `instance_group` of a model's
    `model_config_parameters` wins (Model Analyzer #996); groups without a kind become KIND_CPU.
    """
    if context.gpus or not context.server_on_this_host:
        return config
    if config.gpus == []:
        log.info("gpus is empty: profiling CPU-only")
    else:
        log.warning(NO_GPU_MESSAGE)
    changes: dict[str, Any] = {}
    for field in SPEC_FIELDS:
        specs: tuple[ModelSpec, ...] = getattr(config, field)
        if specs:
            changes[field] = tuple(
                attrs.evolve(m, cpu_only=True) if not m.cpu_only and cpu_only_without_gpus(m) else m for m in specs
            )
    return attrs.evolve(config, **changes)
