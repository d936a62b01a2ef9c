"""Small real ONNX models made with onnx.helper for the model_tools tests, and Triton-layout directories of them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FEATURES, UNITS = 8, 4


def weights(scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    w = rng.standard_normal((FEATURES, UNITS)).astype(np.float32) * np.float32(scale)
    b = rng.standard_normal(UNITS).astype(np.float32)
    return w, b


def dense_model(input_shape: list[int | str], output_shape: list[int | str], w: np.ndarray | None = None,
                name: str = "dense") -> onnx.ModelProto:
    """Y = X @ W + B over the last axis (W: [8, 4]); `input_shape` ends in 8, `output_shape` in 4."""
    if w is None:
        w, b = weights()
    else:
        b = weights()[1]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["Y"])],
        name,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, output_shape)],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="modelyzer-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def static_model() -> onnx.ModelProto:
    """Fixed shapes: X [2, 8] → Y [2, 4]."""
    return dense_model([2, FEATURES], [2, UNITS], name="static_dense")


def dynamic_model(w: np.ndarray | None = None) -> onnx.ModelProto:
    """A dynamic batch and a dynamic sequence: X [batch, seq, 8] → Y [batch, seq, 4]."""
    return dense_model(["batch", "seq", FEATURES], ["batch", "seq", UNITS], w=w, name="seq_dense")


DYNAMIC_CONFIG = """name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: 4
input [ {{ name: "X" data_type: TYPE_FP32 dims: [ -1, 8 ] }} ]
output [ {{ name: "Y" data_type: TYPE_FP32 dims: [ -1, 4 ] }} ]
instance_group [ {{ count: 1 kind: KIND_CPU }} ]
"""


def write_model_dir(repository: Path, name: str, model: onnx.ModelProto, config: str | None = None) -> Path:
    """<repository>/<name>/1/model.onnx (+ config.pbtxt when given); returns the model directory."""
    directory = repository / name
    (directory / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / "1" / "model.onnx"))
    if config is not None:
        (directory / "config.pbtxt").write_text(config)
    return directory


def quick_start() -> ModuleType:
    """examples/quick-start/make_model.py (the add_sub model and its Triton-layout directory)."""
    path = Path(__file__).resolve().parents[3] / "examples" / "quick-start" / "make_model.py"
    spec = importlib.util.spec_from_file_location("quick_start_make_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
