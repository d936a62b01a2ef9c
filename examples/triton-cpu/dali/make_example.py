"""Makes the DALI example's generated files (run by .ci/setup.d/dali.sh with .venv-triton's python; idempotent).

- ``model_repository/classifier/1/model.onnx``: a tiny conv net (onnx.helper): IMAGE FP32 [N, 3, 64, 64] → SCORES FP32 [N, 10]
- ``data/jpeg_input.json``: perf_analyzer ``--input-data`` for ``ensemble_dali_classifier`` — real JPEG files
  (Pillow, 256×192 photos-like gradients with noise) as b64 bytes of the variable-length UINT8 input ``JPEG``
- ``data/tensor_input.json``: the same images decoded, resized and normalised on the client (what
  ``dali_preprocess`` computes), as b64 FP32 bytes of ``classifier``'s ``IMAGE`` input
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

HERE = Path(__file__).resolve().parent
SIZE = 64
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255
IMAGES = 4


def make_model(path: Path) -> None:
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.1, (8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.zeros(8, np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.1, (16, 8, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.zeros(16, np.float32), "b2"),
        numpy_helper.from_array(rng.normal(0, 0.1, (16, 10)).astype(np.float32), "fc"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fcb"),
    ]
    nodes = [
        helper.make_node("Conv", ["IMAGE", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["SCORES"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_classifier",
        [helper.make_tensor_value_info("IMAGE", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("SCORES", TensorProto.FLOAT, ["N", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def jpeg(index: int) -> bytes:
    rng = np.random.default_rng(index)
    y, x = np.mgrid[0:192, 0:256]
    pixels = np.stack([(x + 40 * index) % 256, (y * 1.3) % 256, (x + y) // 2 % 256], -1).astype(np.float32)
    pixels += rng.normal(0, 12, pixels.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=85)
    return out.getvalue()


def client_preprocess(data: bytes) -> np.ndarray:
    """What dali_preprocess does, on the client: decode, resize to 64×64, normalise, HWC → CHW (FP32)."""
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), np.float32)
    return ((image - MEAN) / STD).transpose(2, 0, 1).copy()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def main() -> None:
    (HERE / "data").mkdir(exist_ok=True)
    make_model(HERE / "model_repository" / "classifier" / "1" / "model.onnx")
    jpegs = [jpeg(i) for i in range(IMAGES)]
    (HERE / "data" / "jpeg_input.json").write_text(json.dumps({"data": [
        {"JPEG": {"b64": b64(j), "shape": [len(j)]}} for j in jpegs]}))
    (HERE / "data" / "tensor_input.json").write_text(json.dumps({"data": [
        {"IMAGE": {"b64": b64(client_preprocess(j).tobytes()), "shape": [3, SIZE, SIZE]}} for j in jpegs]}))
    print(f"dali example: model.onnx, {IMAGES} JPEGs of {min(map(len, jpegs))}-{max(map(len, jpegs))} bytes",
          file=sys.stderr)


if __name__ == "__main__":
    main()
