"""`modelyzer inspect` on real ONNX models made with onnx.helper: tensors, dynamic dimensions, opsets, the implied
config.pbtxt and its differences from the one present, perf_analyzer's --shape values, and the one-line errors."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest
from click.testing import CliRunner
from modelyzer_model_tools.commands import inspect
from modelyzer_model_tools.inspection import inspect_model
from modelyzer_model_tools.locate import locate

from modelyzer.kernel import assembly
from modelyzer.kernel.errors import ConfigError
from tests.contrib.model_tools.models import (
    DYNAMIC_CONFIG,
    dynamic_model,
    quick_start,
    static_model,
    write_model_dir,
)

make_model = quick_start()


def info_of(path: Path, size: int = 16) -> Any:
    codec = assembly.codec()
    (location,) = locate(path, codec).models
    return inspect_model(location, codec, size)


def run_inspect(*args: str) -> Any:
    return CliRunner().invoke(inspect, list(args), catch_exceptions=False)


def test_entry_point_registers_commands_settings_and_the_flags_hook() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="modelyzer") if e.name == "model_tools"]
    plugin = entry.load()
    assert {"register_commands", "register_settings", "model_perf_analyzer_flags"} <= set(dir(plugin))


def test_static_model_file(tmp_path: Path) -> None:
    path = tmp_path / "static.onnx"
    onnx.save(static_model(), str(path))
    info = info_of(path)
    assert (info.name, info.config_path, info.opsets) == ("static", None, {"ai.onnx": 13})
    assert [(t.name, t.dtype, t.shape, t.dynamic_axes) for t in info.inputs] == [("X", "float32", (2, 8), ())]
    assert [(t.name, t.shape) for t in info.outputs] == [("Y", (2, 4))]  # initializers W, B are not inputs
    assert info.implied_config == {
        "name": "static", "platform": "onnxruntime_onnx",
        "input": [{"name": "X", "data_type": "TYPE_FP32", "dims": [2, 8]}],
        "output": [{"name": "Y", "data_type": "TYPE_FP32", "dims": [2, 4]}],
    }
    assert info.shapes == {} and info.differences == ()


def test_dynamic_model_implies_batching_and_shapes(tmp_path: Path) -> None:
    path = tmp_path / "seq.onnx"
    onnx.save(dynamic_model(), str(path))
    info = info_of(path)
    (x,) = info.inputs
    assert (x.shape, x.dynamic_axes) == (("batch", "seq", 8), (0, 1))
    assert info.implied_config["max_batch_size"] == 4  # Triton's ONNX Runtime auto-complete default
    assert info.implied_config["input"] == [{"name": "X", "data_type": "TYPE_FP32", "dims": [-1, 8]}]
    assert info.shapes == {"X": (16, 8)} and info.shape_flags() == ["X:16,8"]
    assert info_of(path, size=32).shape_flags() == ["X:32,8"]
    assert info.feed_shapes(16) == {"X": (1, 16, 8)}


def test_quick_start_model_directory_matches_its_config(tmp_path: Path) -> None:
    directory = make_model.write_repository(tmp_path)
    info = info_of(directory)
    assert info.config_path == directory / "config.pbtxt"
    assert info.implied_config["max_batch_size"] == 8  # the present one's, since the model batches
    assert info.differences == () and info.shapes == {}


def test_differences_from_the_config_present(tmp_path: Path) -> None:
    wrong = """name: "seq"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [ { name: "X" data_type: TYPE_FP16 dims: [ 3, -1, 8 ] } ]
output [ { name: "Z" data_type: TYPE_FP32 dims: [ -1, -1, 4 ] } ]
"""
    info = info_of(write_model_dir(tmp_path, "seq", dynamic_model(), wrong))
    assert info.differences == (
        "max_batch_size 0 in config.pbtxt although every input/output has a dynamic first dimension: the first "
        "dimension is then a model dimension, not a batch (set max_batch_size to batch)",
        "input X: data_type TYPE_FP16 in config.pbtxt, the model has TYPE_FP32",
        "input X: dims [3, -1, 8] in config.pbtxt, the model implies [-1, -1, 8] (compatible: it fixes a dynamic "
        "dimension)",
        "output Y: in the model, missing from config.pbtxt",
        "output Z: in config.pbtxt, not in the model",
    )
    # the served config (max_batch_size 0) fixes the first dimension at 3: --shape covers all three dims
    assert info.shapes == {"X": (3, 16, 8)}


def test_incompatible_dims_and_batching_of_a_static_model(tmp_path: Path) -> None:
    config = """name: "st"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "X" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ]
"""
    info = info_of(write_model_dir(tmp_path, "st", static_model(), config))
    assert info.differences[0].startswith("max_batch_size 8 in config.pbtxt, but not every input/output")
    assert "input X: dims [16] in config.pbtxt, the model implies [8] (Triton will refuse to load it)" in info.differences


def test_cli_text_and_json_over_a_repository(tmp_path: Path) -> None:
    make_model.write_repository(tmp_path)
    write_model_dir(tmp_path, "seq", dynamic_model(), DYNAMIC_CONFIG.format(name="seq"))
    (tmp_path / "python_model" / "1").mkdir(parents=True)
    (tmp_path / "python_model" / "1" / "model.py").write_text("")
    (tmp_path / "python_model" / "config.pbtxt").write_text('name: "python_model"\nbackend: "python"\n')
    text = run_inspect(str(tmp_path))
    assert text.exit_code == 0, text.output
    assert "perf_analyzer: --shape X:16,8  (profile adds these for the dynamic dimensions)" in text.output
    assert "X  float32 [batch, seq, 8]  TYPE_FP32  (axis 0 is the batch; dynamic axis 1 (seq))" in text.output
    assert "skipped python_model: no ONNX model file" in text.output
    data = json.loads(run_inspect(str(tmp_path), "--json", "--dynamic-dimension-size", "5").output)
    assert [m["name"] for m in data["models"]] == ["add_sub", "seq"] and data["skipped"] == ["python_model"]
    seq = data["models"][1]
    assert seq["shape"] == ["X:5,8"] and seq["opsets"] == {"ai.onnx": 13} and seq["differences"] == []
    assert seq["inputs"] == [{"name": "X", "dtype": "float32", "data_type": "TYPE_FP32",
                              "shape": ["batch", "seq", 8], "dynamic_axes": [0, 1]}]


def test_a_non_onnx_file_is_one_line_exit_2(tmp_path: Path) -> None:
    from modelyzer.frontends.cli.main import cli

    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"\x00garbage")
    fake = tmp_path / "fake.onnx"
    fake.write_text("not protobuf at all { ]")
    for path, why in ((bad, "expected a .onnx file"), (fake, "not an ONNX model (DecodeError)")):
        result = CliRunner().invoke(cli, ["inspect", str(path)])
        assert result.exit_code == 2
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"error: {path}: ") and why in line
        assert "modelyzer inspect accepts an .onnx file, a model directory" in line
    with pytest.raises(ConfigError, match="no ONNX model in this directory"):
        locate(tmp_path, assembly.codec())


def test_missing_openvino_is_one_line_naming_the_package(tmp_path: Path) -> None:
    """A real run where `import openvino` fails (blocked in sys.modules): one line, exit 2, what to install."""
    path = tmp_path / "seq.onnx"
    onnx.save(dynamic_model(), str(path))
    code = ("import sys; sys.modules['openvino'] = None\n"
            "from modelyzer.frontends.cli.main import main; main()")
    out = subprocess.run([sys.executable, "-c", code, "convert", str(path), "--to", "openvino", "-o",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: running or converting models with OpenVINO needs openvino, which is not installed")
    assert "pip install openvino" in line
