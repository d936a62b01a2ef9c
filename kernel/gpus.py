"""GPU discovery and the CPU-only rule: which GPUs a profile uses, and what happens without any.

`discover_gpus` asks the launcher first (a launcher that knows its server's GPUs itself, e.g. one answering from
a recording, returns them from `Launcher.devices()`), else every registered metric collector for the devices it
sees on this host (`MetricCollector.devices`), selects them with the `gpus` option (`all`, UUIDs or CUDA indices,
`[]`) and puts them in `RunContext.gpus`. With no GPU, and a server on this host (a remote server may have GPUs
this host cannot see — Model Analyzer's rule), `resolve_cpu_only` switches models to `KIND_CPU` and says so in
one line, except models whose `instance_group` names a kind for every group: an explicit kind wins (a server that
can use GPUs then refuses KIND_GPU with its own error, a failed measurement).

Device truth: a launcher whose server runs everything on the CPU declares it with `Launcher.devices() == []`
(`cpu_only_server`, kept in `RunContext.cpu_only_server` by discovery). Then every model is profiled CPU-only — an explicit KIND_GPU included — and one line says so.
A CPU-only model never runs a KIND_GPU instance group: each one, in `model_config_parameters`
(`resolve_cpu_only`) or in the model's own config.pbtxt (`cpu_instance_groups`, on the base config), is profiled
as KIND_CPU (its `gpus` list dropped) with one warning line naming the model and the key, so the variants, CSVs,
reports and best_config say CPU: what really ran.
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
CPU_SERVER_MESSAGE = "the server runs on the CPU only (its launcher declares no GPU): profiling CPU-only"
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

    `dcgm_disable` skips discovery: no GPUs, as in Model Analyzer. A launcher declaring a CPU-only server
    (`cpu_only_server`) sets `context.cpu_only_server`.
    """
    context.cpu_only_server = cpu_only_server(launcher)
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


def cpu_only_server(launcher: Launcher | None) -> bool:
    """Whether the launcher declares that its server runs everything on the CPU (`devices()` is `[]`)."""
    return launcher is not None and launcher.devices() == []


def _cpu_groups(value: Any) -> Any:
    """`value` (an instance group, or lists of them) with KIND_GPU → KIND_CPU and no `gpus` list on those groups."""
    if isinstance(value, list | tuple):
        return [_cpu_groups(v) for v in value]
    if not isinstance(value, dict):
        return value
    kinds = _kinds(value)
    if "KIND_GPU" not in kinds:
        return value
    cpu = list(dict.fromkeys("KIND_CPU" if k == "KIND_GPU" else k for k in kinds))
    group = {k: v for k, v in value.items() if k != "gpus"}
    group["kind"] = cpu[0] if isinstance(value.get("kind"), str) or len(cpu) == 1 else cpu
    return group


def cpu_instance_groups(spec: ModelSpec, config: dict[str, Any], where: str = "config.pbtxt") -> dict[str, Any]:
    """A CPU-only model's `config` (its own config.pbtxt, or its `model_config_parameters`) with every KIND_GPU
    instance group made KIND_CPU, and one warning line naming the model and the key; `config` itself otherwise."""
    if not spec.cpu_only or "instance_group" not in config:
        return config
    groups = _cpu_groups(config["instance_group"])
    if groups == config["instance_group"]:
        return config
    log.warning("model %s: %s.instance_group asks for KIND_GPU but the model runs on the CPU here: profiled as "
                "KIND_CPU", spec.name, where)
    return {**config, "instance_group": groups}


def _cpu_only(spec: ModelSpec) -> ModelSpec:
    spec = spec if spec.cpu_only else attrs.evolve(spec, cpu_only=True)
    params = cpu_instance_groups(spec, dict(spec.model_config_parameters), "model_config_parameters")
    return spec if params == spec.model_config_parameters else attrs.evolve(spec, model_config_parameters=params)


def resolve_cpu_only(config: ProfileConfig, context: RunContext) -> ProfileConfig:
    """Without GPUs (and with the server on this host) models are profiled as KIND_CPU; one line says so.

    Call after the GPUs are known. An explicit `kind` in every `instance_group` of a model's
    `model_config_parameters` wins (Model Analyzer #996); groups without a kind become KIND_CPU. On a CPU-only
    server (`context.cpu_only_server`) every model is CPU-only, whatever kinds it names. Every CPU-only model's
    KIND_GPU groups in `model_config_parameters` become KIND_CPU (one warning line per model).
    """
    cpu_server = context.cpu_only_server
    no_gpu = not cpu_server and not context.gpus and context.server_on_this_host
    if cpu_server:
        log.warning(CPU_SERVER_MESSAGE)
    elif no_gpu and config.gpus == []:
        log.info("gpus is empty: profiling CPU-only")
    elif no_gpu:
        log.warning(NO_GPU_MESSAGE)

    def cpu_only(spec: ModelSpec) -> bool:
        return spec.cpu_only or cpu_server or (no_gpu and cpu_only_without_gpus(spec))

    changes: dict[str, Any] = {}
    for field in SPEC_FIELDS:
        specs: tuple[ModelSpec, ...] = getattr(config, field)
        resolved = tuple(_cpu_only(m) if cpu_only(m) else m for m in specs)
        if resolved != specs:
            changes[field] = resolved
    return attrs.evolve(config, **changes) if changes else config
