"""Build the quick-start model: a tiny ONNX "add_sub" model in a Triton-layout model repository.

Writes `model_repository/add_sub/1/model.onnx` (OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1; FP32
tensors of shape [-1, 16], batch dimension dynamic) and `model_repository/add_sub/config.pbtxt` (platform
onnxruntime_onnx, max_batch_size 8, one CPU instance). Run it with the project's venv:

    .venv/bin/python examples/quick-start/make_model.py [--repository DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
from onnx import TensorProto, helper

MODEL_NAME = "add_sub"
WIDTH = 16
MAX_BATCH_SIZE = 8

CONFIG_PBTXT = f"""name: "{MODEL_NAME}"
platform: "onnxruntime_onnx"
max_batch_size: {MAX_BATCH_SIZE}
input [
  {{
    name: "INPUT0"
    data_type: TYPE_FP32
    dims: [ {WIDTH} ]
  }},
  {{
    name: "INPUT1"
    data_type: TYPE_FP32
    dims: [ {WIDTH} ]
  }}
]
output [
  {{
    name: "OUTPUT0"
    data_type: TYPE_FP32
    dims: [ {WIDTH} ]
  }},
  {{
    name: "OUTPUT1"
    data_type: TYPE_FP32
    dims: [ {WIDTH} ]
  }}
]
instance_group [
  {{
    count: 1
    kind: KIND_CPU
  }}
]
"""


def build_model() -> onnx.ModelProto:
    """The add/sub graph with a dynamic batch dimension named "batch"."""
    shape: list[str | int] = ["batch", WIDTH]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("INPUT0", "INPUT1")]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("OUTPUT0", "OUTPUT1")]
    nodes = [
        helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"], name="add"),
        helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"], name="sub"),
    ]
    graph = helper.make_graph(nodes, MODEL_NAME, inputs, outputs)
    # opset 13 / IR 8: readable by every onnxruntime released since 2021
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="modelyzer")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_repository(repository: Path) -> Path:
    """Write the model folder into `repository`; return the model folder."""
    model_dir = repository / MODEL_NAME
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(build_model(), str(model_dir / "1" / "model.onnx"))
    (model_dir / "config.pbtxt").write_text(CONFIG_PBTXT)
    return model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path(__file__).resolve().parent / "model_repository",
        help="model repository to write into (default: next to this script)",
    )
    args = parser.parse_args()
    model_dir = write_repository(args.repository)
    print(f"wrote {model_dir}")


if __name__ == "__main__":
    main()
