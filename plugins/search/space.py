"""The model-config search space of quick and optuna: which knobs are searched and the variant of a point.

`config_space()` turns a model's base config, its `model_config_parameters` and the search options into
`Dimension`s: max_batch_size (powers of two between the search bounds, batching models only), instance count
(min..max), and every `model_config_parameters` leaf that lists choices (expanded with Model Analyzer's list
semantics by `generate_combinations`; a listed `max_batch_size` or `instance_group` replaces the automatic
dimension; numeric leaves are ordered), and for an ONNX model on a server that runs CPU execution accelerators
(`ModelSpec.cpu_accelerators`, the launcher's capability) the categorical `accelerator` dimension: none (plain
ONNX Runtime), then each accelerator with each of its `ACCELERATOR_CHOICES`, as entries of Triton's own
`optimization.execution_accelerators.cpu_execution_accelerator` field (so a variant means the same on Triton's
ONNX Runtime backend). It is left out when the base config already names an accelerator or
`model_config_parameters` lists `optimization` (the user's choice). A coordinate (one index per dimension)
becomes a ConfigVariant by deep-merging the chosen overlays into the base config.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.models import ConfigVariant, ModelSpec
from modelyzer.plugins.search.common import (
    batching_overlay,
    deep_merge,
    doubled_list,
    generate_combinations,
    is_ensemble,
    kind_of,
)

#: the parameter sets the automatic search tries per CPU accelerator (an accelerator not listed: one choice, no
#: parameters); OpenVINO's performance hint picks its streams/threads for the CPU (NUM_STREAMS,
#: INFERENCE_PRECISION_HINT can be listed in model_config_parameters)
ACCELERATOR_CHOICES: dict[str, tuple[dict[str, str], ...]] = {
    "openvino": ({"PERFORMANCE_HINT": "LATENCY"}, {"PERFORMANCE_HINT": "THROUGHPUT"}),
}
ACCELERATOR_PATH = ("optimization", "execution_accelerators", "cpu_execution_accelerator")
_ONNX_PLATFORMS = {"onnxruntime_onnx"}
_ONNX_BACKENDS = {"onnxruntime"}


@attrs.frozen
class Dimension:
    """One searched knob: `overlays[i]` is the config overlay of choice `i`, `labels[i]` its value.

    `ordered` dimensions (max_batch_size, instance count, queue delay, lists of numbers) may be walked by
    index; `load_increasing` ones make latency and memory grow with the index, so a deep constraint failure
    at index i predicts one at every higher index.
    """

    name: str
    labels: tuple[Any, ...]
    overlays: tuple[dict[str, Any], ...]
    ordered: bool = True
    load_increasing: bool = False

    def __len__(self) -> int:
        return len(self.labels)


@attrs.frozen
class ConfigSpace:
    """The model-config dimensions of one model and the overlay every variant gets."""

    spec: ModelSpec
    base_config: dict[str, Any]
    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any]

    @property
    def size(self) -> int:
        size = 1
        for d in self.dimensions:
            size *= len(d)
        return size

    def overlay(self, coordinate: Sequence[int]) -> dict[str, Any]:
        out = copy.deepcopy(self.fixed)
        for dimension, index in zip(self.dimensions, coordinate, strict=True):
            out = deep_merge(out, dimension.overlays[index])
        return out

    def variant(self, coordinate: Sequence[int]) -> ConfigVariant:
        overlay = self.overlay(coordinate)
        return ConfigVariant(self.spec.name, config=deep_merge(self.base_config, overlay), params=overlay)

    def default_variant(self) -> ConfigVariant:
        return ConfigVariant(self.spec.name, config=copy.deepcopy(self.base_config), is_default=True)


def _leaves(params: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in params.items():
        if isinstance(value, dict) and value:
            out.extend(_leaves(value, (*path, key)))
        else:
            out.append(((*path, key), value))
    return out


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path):
        out = {key: out}
    return dict(out)


def _group_count(overlay: dict[str, Any]) -> int:
    return sum(int(g.get("count", 1) or 1) for g in overlay.get("instance_group") or [] if isinstance(g, dict))


def config_space(spec: ModelSpec, base_config: dict[str, Any], config: ProfileConfig) -> ConfigSpace:
    """Dimensions: max_batch_size (powers of two between the search bounds, batching models only), instance
    count (min..max), the CPU accelerator (ONNX models on a server that runs some), and every
    `model_config_parameters` leaf that lists choices (a listed `max_batch_size` or `instance_group` replaces
    the automatic dimension). Single choices are fixed."""
    params = copy.deepcopy(dict(spec.model_config_parameters))
    batching = int(base_config.get("max_batch_size", 0) or 0) > 0 and spec.tunes("max_batch_size")
    fixed: dict[str, Any] = {}
    if batching:
        fixed.update(batching_overlay(base_config))
    dims: list[Dimension] = []
    if batching and "max_batch_size" not in params:
        sizes = doubled_list(config.run_config_search_min_model_batch_size,
                             config.run_config_search_max_model_batch_size)
        dims.append(Dimension("max_batch_size", tuple(sizes), tuple({"max_batch_size": v} for v in sizes),
                              load_increasing=True))
    if "instance_group" not in params and spec.tunes("instance_group") and not is_ensemble(base_config):
        low = config.run_config_search_min_instance_count
        high = max(config.run_config_search_max_instance_count, low)
        counts = list(range(max(low, 1), high + 1))
        groups = tuple({"instance_group": [{"count": n, "kind": kind_of(spec)}]} for n in counts)
        dims.append(Dimension("instance_count", tuple(counts), groups, load_increasing=True))
    accelerators = accelerator_dimension(spec, base_config, params)
    if accelerators is not None:
        dims.append(accelerators)
    for path, value in _leaves(params):
        overlays = generate_combinations(_nest(path, value))
        if path == ("instance_group",) and spec.cpu_only:
            for overlay in overlays:
                for group in overlay.get("instance_group") or []:
                    if isinstance(group, dict):
                        group.setdefault("kind", "KIND_CPU")
        if len(overlays) == 1:
            fixed = deep_merge(fixed, overlays[0])
            continue
        name = ".".join(path)
        if path == ("instance_group",):
            overlays.sort(key=_group_count)
            labels: list[Any] = [_group_count(o) for o in overlays]
            dims.append(Dimension("instance_count", tuple(labels), tuple(overlays), load_increasing=True))
            continue
        leaf_values = [_leaf(o, path) for o in overlays]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in leaf_values)
        if numeric:
            pairs = sorted(zip(leaf_values, overlays, strict=True), key=lambda p: p[0])
            leaf_values, overlays = [p[0] for p in pairs], [p[1] for p in pairs]
        increasing = path in (("max_batch_size",), ("dynamic_batching", "max_queue_delay_microseconds"))
        labels = leaf_values if numeric else list(range(len(overlays)))
        dims.append(Dimension(name, tuple(labels), tuple(overlays), ordered=numeric, load_increasing=increasing))
    order = {"max_batch_size": 0, "instance_count": 1}
    dims.sort(key=lambda d: order.get(d.name, 2))
    return ConfigSpace(spec, copy.deepcopy(dict(base_config)), tuple(dims), fixed)


def accelerator_dimension(
    spec: ModelSpec, base_config: dict[str, Any], params: dict[str, Any] | None = None
) -> Dimension | None:
    """The `accelerator` dimension of an ONNX model on a server with CPU accelerators, or None (see the module
    docstring for when it is left out)."""
    platform = str(base_config.get("platform", "") or "")
    backend = str(base_config.get("backend", "") or "")
    onnx = platform in _ONNX_PLATFORMS or (not platform and backend in _ONNX_BACKENDS)
    if not spec.cpu_accelerators or not onnx or is_ensemble(base_config):
        return None
    if _leaf(base_config, ACCELERATOR_PATH) or "optimization" in (params or {}):
        return None
    labels: list[str] = ["none"]
    overlays: list[dict[str, Any]] = [{}]
    for name in spec.cpu_accelerators:
        for parameters in ACCELERATOR_CHOICES.get(name, ({},)):
            entry: dict[str, Any] = {"name": name, **({"parameters": dict(parameters)} if parameters else {})}
            labels.append(" ".join([name, *parameters.values()]))
            overlays.append(_nest(ACCELERATOR_PATH, [entry]))
    return Dimension("accelerator", tuple(labels), tuple(overlays), ordered=False)


def _leaf(overlay: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = overlay
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value
