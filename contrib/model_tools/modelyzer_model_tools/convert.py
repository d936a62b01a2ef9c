"""ONNX → OpenVINO IR through OpenVINO's own converter (`openvino.convert_model` + `openvino.save_model`), written
as a Triton model directory for its OpenVINO backend:

    <repo>/<name>/config.pbtxt        backend "openvino", the ONNX model's tensors, batching and instances
    <repo>/<name>/1/model.xml         the IR graph
    <repo>/<name>/1/model.bin         its weights (FP32 unless compress_to_fp16)

The config is the ONNX model's (the config.pbtxt present, else the one `inspect` implies) with `platform`,
`backend`, `default_model_filename` and ONNX Runtime's execution accelerators replaced by `backend: "openvino"`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel.errors import ConfigError
from modelyzer_model_tools.inspection import ModelInfo
from modelyzer_model_tools.runtime import openvino

BACKEND = "openvino"
IR_FILENAME = "model.xml"
VERSION = "1"
#: config fields that belong to the ONNX Runtime platform and do not carry over
DROPPED = ("platform", "backend", "default_model_filename", "optimization")


@attrs.frozen
class Converted:
    name: str
    source: Path
    xml: Path
    config_path: Path


def openvino_config(info: ModelInfo, name: str) -> dict[str, Any]:
    """The OpenVINO backend's config.pbtxt (codec dict form) for the model `info` describes."""
    config = {k: v for k, v in info.served_config.items() if k not in DROPPED and not k.startswith("_")}
    out: dict[str, Any] = {"name": name, "backend": BACKEND}
    out.update({k: v for k, v in config.items() if k != "name"})
    out.setdefault("instance_group", [{"count": 1, "kind": "KIND_CPU"}])
    return out


def convert_to_openvino(info: ModelInfo, repository: Path, codec: Any, name: str | None = None,
                        compress_to_fp16: bool = False, overwrite: bool = False) -> Converted:
    """Convert the ONNX model of `info` into `<repository>/<name>/` (see the module docstring)."""
    ov = openvino()
    name = name or info.name
    model_dir = repository / name
    config_path = model_dir / codec.filename
    if config_path.exists() and not overwrite:
        raise ConfigError(f"{config_path} exists; choose another -o/--output-repository or --name, or pass --overwrite")
    if model_dir.resolve() == info.onnx_path.parent.parent.resolve():
        raise ConfigError(f"{model_dir} is the ONNX model's own directory; choose another -o/--output-repository or "
                          "--name")
    xml = model_dir / VERSION / IR_FILENAME
    xml.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = ov.convert_model(str(info.onnx_path))
    except Exception as err:  # OpenVINO's conversion errors are long; the first line says what failed
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{info.onnx_path}: OpenVINO cannot convert it: {first}") from None
    ov.save_model(model, str(xml), compress_to_fp16=compress_to_fp16)
    codec.write(openvino_config(info, name), config_path)
    return Converted(name, info.onnx_path, xml, config_path)
