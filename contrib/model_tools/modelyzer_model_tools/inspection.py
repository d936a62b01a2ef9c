"""What is inside an ONNX model, read through Polygraphy and onnx: tensors, dtypes, dynamic dimensions, opsets; the
Triton config.pbtxt it implies, the differences from the config.pbtxt present, and perf_analyzer's `--shape` values.

Inputs/outputs come from Polygraphy's `backend.onnx.util.get_input_metadata`/`get_output_metadata` (the same
metadata `polygraphy inspect model` prints: initializers that are also graph inputs are not inputs); opsets are the
model's `opset_import`. Nothing here walks the graph itself.

Triton's layout: a model whose every input and output has a dynamic first dimension batches (`max_batch_size` > 0,
Triton's ONNX Runtime auto-complete default 4, dims without the batch dimension); a dynamic dimension is -1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from modelyzer_model_tools.locate import ModelLocation
from modelyzer_model_tools.runtime import polygraphy_onnx

#: Triton's ONNX Runtime auto-complete `max_batch_size` for a model with a dynamic first dimension
AUTOCOMPLETE_MAX_BATCH_SIZE = 4
PLATFORM = "onnxruntime_onnx"
#: Polygraphy DataType name → Triton data_type
TRITON_TYPES: dict[str, str] = {
    "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64", "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
    "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64", "bfloat16": "TYPE_BF16",
    "string": "TYPE_STRING",
}

Dim = int | str


def is_dynamic(dim: Dim) -> bool:
    """A dimension the model leaves open: a named one (dim_param), or unknown / -1."""
    return isinstance(dim, str) or dim < 0


@attrs.frozen
class TensorInfo:
    """One graph input or output: name, dtype (numpy-style name), shape (ints, dim_param names, -1 for unknown)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    @property
    def triton_type(self) -> str:
        return TRITON_TYPES.get(self.dtype, f"TYPE_{self.dtype.upper()}")

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape) if is_dynamic(d))

    def dims(self, batching: bool) -> list[int]:
        """Triton `dims`: the shape without the batch dimension when batching, dynamic dimensions as -1."""
        shape = self.shape[1:] if batching else self.shape
        return [-1 if is_dynamic(d) else int(d) for d in shape]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "data_type": self.triton_type, "shape": list(self.shape),
                "dynamic_axes": list(self.dynamic_axes)}


@attrs.frozen
class ModelInfo:
    """Everything `modelyzer inspect` says about one model."""

    name: str
    onnx_path: Path
    config_path: Path | None
    opsets: dict[str, int]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    implied_config: dict[str, Any]
    present_config: dict[str, Any] | None
    differences: tuple[str, ...]
    #: perf_analyzer `--shape NAME:d1,d2` of each input with a dynamic non-batch dimension (empty: none needed)
    shapes: dict[str, tuple[int, ...]]

    @property
    def batching(self) -> bool:
        return int(self.served_config.get("max_batch_size") or 0) > 0

    @property
    def served_config(self) -> dict[str, Any]:
        """The config a server would load: the one present, else the implied one."""
        return self.present_config if self.present_config is not None else self.implied_config

    def feed_shapes(self, dynamic_size: int, batch_size: int = 1) -> dict[str, tuple[int, ...]]:
        """Whole input shapes of one request as perf_analyzer sends it: `batch_size` (when batching) and the
        --shape values; an input the served config lacks gets `dynamic_size` for its dynamic dimensions."""
        batching = self.batching
        out: dict[str, tuple[int, ...]] = {}
        for tensor in self.inputs:
            dims = self.shapes.get(tensor.name) or tuple(dynamic_size if d < 0 else d for d in tensor.dims(batching))
            out[tensor.name] = (batch_size, *dims) if batching else tuple(dims)
        return out

    def shape_flags(self) -> list[str]:
        return shape_flags(self.shapes)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "onnx": str(self.onnx_path),
            "config": str(self.config_path) if self.config_path else None,
            "opsets": self.opsets, "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs], "implied_config": self.implied_config,
            "differences": list(self.differences), "shape": self.shape_flags(),
        }


def shape_flags(shapes: Mapping[str, Sequence[int]]) -> list[str]:
    """perf_analyzer `--shape` values: `NAME:d1,d2`."""
    return [f"{name}:{','.join(str(d) for d in dims)}" for name, dims in shapes.items()]


def read_tensors(model: Any) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """Graph inputs and outputs of an `onnx.ModelProto`, from Polygraphy's metadata."""
    util = polygraphy_onnx()

    def tensors(meta: Any) -> tuple[TensorInfo, ...]:
        return tuple(TensorInfo(name, str(getattr(m.dtype, "name", m.dtype)), tuple(m.shape)) for name, m in meta.items())

    return tensors(util.get_input_metadata(model.graph)), tensors(util.get_output_metadata(model.graph))


def opsets_of(model: Any) -> dict[str, int]:
    """Opset per domain (the default domain as "ai.onnx")."""
    return {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}


def batches(inputs: Iterable[TensorInfo], outputs: Iterable[TensorInfo]) -> bool:
    """Whether Triton would batch the model: every input and output has a dynamic first dimension."""
    tensors = [*inputs, *outputs]
    return bool(tensors) and all(t.shape and is_dynamic(t.shape[0]) for t in tensors)


def implied_config(name: str, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                   present: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config.pbtxt (codec dict form) the model implies; a batching model keeps the present max_batch_size."""
    batching = batches(inputs, outputs)
    config: dict[str, Any] = {"name": name, "platform": PLATFORM}
    if batching:
        present_mbs = int((present or {}).get("max_batch_size") or 0)
        config["max_batch_size"] = present_mbs if present_mbs > 0 else AUTOCOMPLETE_MAX_BATCH_SIZE
    config["input"] = [{"name": t.name, "data_type": t.triton_type, "dims": t.dims(batching)} for t in inputs]
    config["output"] = [{"name": t.name, "data_type": t.triton_type, "dims": t.dims(batching)} for t in outputs]
    return config


def _dims_line(kind: str, name: str, present: list[int], implied: list[int]) -> str | None:
    if present == implied:
        return None
    compatible = len(present) == len(implied) and all(i == -1 or p == i for p, i in zip(present, implied, strict=True))
    note = "compatible: it fixes a dynamic dimension" if compatible else "Triton will refuse to load it"
    return f"{kind} {name}: dims {present} in config.pbtxt, the model implies {implied} ({note})"


def differences(present: Mapping[str, Any], implied: Mapping[str, Any]) -> list[str]:
    """One line per difference between the config.pbtxt present and the implied one (tensors, batching, platform)."""
    out: list[str] = []
    platform, backend = present.get("platform", ""), present.get("backend", "")
    if platform != PLATFORM and backend != "onnxruntime":
        out.append(f"platform {platform or '(none)'!s} / backend {backend or '(none)'!s} in config.pbtxt; an ONNX "
                   f"model is served by platform {PLATFORM} (backend onnxruntime)")
    present_mbs, implied_mbs = int(present.get("max_batch_size") or 0), int(implied.get("max_batch_size") or 0)
    if present_mbs > 0 and implied_mbs == 0:
        out.append(f"max_batch_size {present_mbs} in config.pbtxt, but not every input/output of the model has a "
                   "dynamic first dimension: use max_batch_size 0")
    elif present_mbs == 0 and implied_mbs > 0:
        out.append("max_batch_size 0 in config.pbtxt although every input/output has a dynamic first dimension: "
                   "the first dimension is then a model dimension, not a batch (set max_batch_size to batch)")
    batching = present_mbs > 0
    for kind in ("input", "output"):
        have = {t["name"]: t for t in present.get(kind) or []}
        want = {t["name"]: t for t in implied.get(kind) or []}
        for name, tensor in want.items():
            if name not in have:
                if have or kind == "input":
                    out.append(f"{kind} {name}: in the model, missing from config.pbtxt")
                continue
            got = have[name]
            if got.get("data_type") != tensor["data_type"]:
                out.append(f"{kind} {name}: data_type {got.get('data_type')} in config.pbtxt, the model has "
                           f"{tensor['data_type']}")
            implied_dims = list(tensor["dims"])
            if batching != (implied_mbs > 0):  # compare like with like: the model's shape as the present config reads it
                implied_dims = ([-1, *implied_dims] if implied_mbs > 0 else implied_dims[1:])
            line = _dims_line(kind, name, [int(d) for d in got.get("dims") or []], implied_dims)
            if line and not got.get("reshape"):
                out.append(line)
        out += [f"{kind} {name}: in config.pbtxt, not in the model" for name in have if name not in want]
    return out


def perf_analyzer_shapes(inputs: Sequence[TensorInfo], served: Mapping[str, Any], dynamic_size: int) -> dict[str, tuple[int, ...]]:
    """`--shape` of each input whose served dims have a dynamic entry: the model's own size where it fixes one,
    else `dynamic_size`. Served dims are the config's (without the batch dimension when it batches)."""
    batching = int(served.get("max_batch_size") or 0) > 0
    model = {t.name: (t.shape[1:] if batching else t.shape) for t in inputs}
    out: dict[str, tuple[int, ...]] = {}
    for tensor in served.get("input") or []:
        dims = [int(d) for d in tensor.get("dims") or []]
        if not any(d < 0 for d in dims):
            continue
        own = model.get(tensor["name"], ())
        sizes = []
        for i, d in enumerate(dims):
            fixed = own[i] if i < len(own) and not is_dynamic(own[i]) else None
            sizes.append(d if d >= 0 else int(fixed) if fixed is not None else dynamic_size)
        out[str(tensor["name"])] = tuple(sizes)
    return out


def inspect_model(location: ModelLocation, codec: Any, dynamic_size: int) -> ModelInfo:
    """Read one located model (its .onnx and config.pbtxt, if any) into a ModelInfo."""
    model = location.load()
    inputs, outputs = read_tensors(model)
    present = codec.read(location.config_path) if location.config_path else None
    implied = implied_config(location.name, inputs, outputs, present)
    diffs = tuple(differences(present, implied)) if present is not None else ()
    served = present if present is not None else implied
    return ModelInfo(
        name=location.name, onnx_path=location.onnx_path, config_path=location.config_path, opsets=opsets_of(model),
        inputs=inputs, outputs=outputs, implied_config=implied, present_config=present, differences=diffs,
        shapes=perf_analyzer_shapes(inputs, served, dynamic_size),
    )
