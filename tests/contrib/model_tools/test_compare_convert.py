"""`inspect --compare` and `convert --to openvino` on real runtimes: ONNX Runtime (Polygraphy's runner) against
OpenVINO on the same random inputs; a deliberately perturbed model (an ONNX constant, an IR weight) is caught; the
converted IR loads in OpenVINO and computes what the ONNX model computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
from click.testing import CliRunner
from modelyzer_model_tools.compare import accuracy_check, compare_runtimes, parse_runtimes

from modelyzer.frontends.cli.main import cli
from modelyzer.kernel import assembly
from modelyzer.kernel.errors import ConfigError
from tests.contrib.model_tools.models import DYNAMIC_CONFIG, dynamic_model, weights, write_model_dir

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model_dir(tmp_path / "repo", "seq", dynamic_model(), DYNAMIC_CONFIG.format(name="seq"))


def reference(x: np.ndarray) -> np.ndarray:
    w, b = weights()
    return x @ w + b


def test_onnxruntime_and_openvino_agree_on_the_real_model(model_dir: Path) -> None:
    result = accuracy_check(model_dir / "1" / "model.onnx", openvino_properties=F32)
    assert result.passed and result.runtimes == ("onnxruntime", "openvino") and result.precisions == {"openvino": "f32"}
    assert result.shapes == {"X": (1, 16, 8)}  # batch 1 and the --shape perf_analyzer gets
    (out,) = result.outputs
    assert out.name == "Y" and out.max_abs < 1e-4 and out.max_rel < 1e-3
    print(f"\nonnxruntime vs openvino f32, seq model: max abs {out.max_abs:.3g}, max rel {out.max_rel:.3g}")
    default = accuracy_check(model_dir / "1" / "model.onnx")  # OpenVINO's own precision on this CPU
    print(f"onnxruntime vs openvino {default.precisions['openvino']}: max abs {default.max_abs:.3g}, "
          f"max rel {default.max_rel:.3g}")
    if default.precisions["openvino"] == "bf16":  # CPUs with AMX/AVX512-BF16: 8-bit mantissas, ~1% off
        assert not default.passed and "openvino (bf16): outputs DISAGREE beyond" in default.describe()


def test_a_perturbed_onnx_constant_is_caught(model_dir: Path, tmp_path: Path) -> None:
    w, _ = weights()
    perturbed = tmp_path / "perturbed.onnx"
    onnx.save(dynamic_model(w=w * np.float32(1.01)), str(perturbed))  # every weight 1% off
    result = compare_runtimes(model_dir / "1" / "model.onnx", ("onnxruntime", "openvino"), other_model=perturbed,
                              shapes={"X": (2, 5, 8)}, openvino_properties=F32)
    assert not result.passed and result.max_rel > 1e-3
    assert "outputs DISAGREE beyond tolerance 0.001" in result.describe()
    print(f"\n1% perturbed weights: max abs {result.max_abs:.3g}, max rel {result.max_rel:.3g}")
    # a looser tolerance lets the same 1% through
    assert compare_runtimes(model_dir / "1" / "model.onnx", ("onnxruntime", "openvino"), other_model=perturbed,
                            shapes={"X": (2, 5, 8)}, tolerance=0.05, openvino_properties=F32).passed


def test_convert_writes_an_ir_repository_openvino_runs(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ov_repo"
    result = CliRunner().invoke(cli, ["convert", str(model_dir), "--to", "openvino", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "check: onnxruntime vs openvino (f32): outputs agree within tolerance 0.001" in result.output
    xml = out / "seq" / "1" / "model.xml"
    assert xml.is_file() and (out / "seq" / "1" / "model.bin").stat().st_size > 0
    config = assembly.codec().read(out / "seq" / "config.pbtxt")
    assert config["backend"] == "openvino" and "platform" not in config
    assert config["max_batch_size"] == 4 and config["input"] == [{"name": "X", "data_type": "TYPE_FP32", "dims": [-1, 8]}]
    compiled = ov.Core().compile_model(str(xml), "CPU", F32)  # this CPU would default to bf16
    x = np.random.default_rng(3).standard_normal((2, 7, 8)).astype(np.float32)
    (y,) = compiled({"X": x}).values()
    np.testing.assert_allclose(y, reference(x), rtol=1e-5, atol=1e-5)
    again = CliRunner().invoke(cli, ["convert", str(model_dir), "--to", "openvino", "-o", str(out)])
    assert again.exit_code == 2 and "exists; choose another -o/--output-repository" in again.output


def test_a_perturbed_ir_constant_is_caught(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ov_repo"
    assert CliRunner().invoke(cli, ["convert", str(model_dir), "--to", "openvino", "-o", str(out)]).exit_code == 0
    xml, binary = out / "seq" / "1" / "model.xml", out / "seq" / "1" / "model.bin"
    data = np.frombuffer(binary.read_bytes(), dtype=np.float32).copy()
    _, bias = weights()
    start = binary.read_bytes().find(bias.tobytes())  # the Add's constant B in the IR's weight file
    assert start >= 0 and start % 4 == 0
    assert accuracy_check(model_dir, openvino_model=xml, openvino_properties=F32).passed  # before: the same model
    data[start // 4] += np.float32(0.5)  # one bias value changed
    binary.write_bytes(data.tobytes())
    result = accuracy_check(model_dir, openvino_model=xml, openvino_properties=F32)
    assert not result.passed
    print(f"\none IR bias value +0.5: max abs {result.max_abs:.3g}, max rel {result.max_rel:.3g}")
    cli_result = CliRunner().invoke(cli, ["inspect", str(model_dir), "--compare", "onnxruntime,openvino",
                                          "--against", str(xml), "--openvino-property", "INFERENCE_PRECISION_HINT=f32"])
    assert cli_result.exit_code == 1
    assert "Y: max abs" in cli_result.output and "DISAGREES" in cli_result.output
    assert cli_result.output.strip().splitlines()[-1] == (
        "error: outputs disagree beyond --accuracy-tolerance 0.001: seq")


def test_inspect_compare_cli_and_bad_runtimes(model_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["inspect", str(model_dir), "--compare", "onnxruntime,openvino",
                                      "--openvino-property", "INFERENCE_PRECISION_HINT=f32"])
    assert result.exit_code == 0, result.output
    assert "compare: onnxruntime vs openvino (f32): outputs agree within tolerance 0.001" in result.output
    assert "inputs fed: X [1, 16, 8]" in result.output
    with pytest.raises(ConfigError, match="give two runtimes of onnxruntime, openvino"):
        parse_runtimes("onnxruntime,tensorrt")
    bad = CliRunner().invoke(cli, ["inspect", str(model_dir), "--compare", "openvino"])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
