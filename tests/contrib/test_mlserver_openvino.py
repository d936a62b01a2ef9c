"""Integration tests of OpenVINO variants on the `mlserver` launcher: a real MLServer (.venv-mlserver, with the
`openvino` runtime) serving the quick-start model compiled by OpenVINO, the real perf_analyzer measuring it, the
`openvino` collector reading the compiled model's properties, a precision the CPU cannot run, and the accuracy
guard refusing a variant whose outputs disagree with ONNX Runtime's. Skipped when MLServer or perf_analyzer is
missing. One server is shared by the tests in file order.
"""

from __future__ import annotations

import copy
import csv
import subprocess
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.errors import ModelLoadError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from tests.conftest import PERF_ANALYZER, real_server_available
from tests.support.configs import profile_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MODEL = "add_sub"
_missing = real_server_available()
if _missing:
    pytest.skip(_missing, allow_module_level=True)
if subprocess.run([str(ROOT / ".venv-mlserver/bin/python"), "-c", "import openvino"], capture_output=True).returncode:
    pytest.skip("openvino is not installed in .venv-mlserver (run .ci/setup)", allow_module_level=True)

BASE: dict[str, Any] = {
    "name": MODEL,
    "platform": "onnxruntime_onnx",
    "max_batch_size": 8,
    "input": [{"name": f"INPUT{i}", "data_type": "TYPE_FP32", "dims": [16]} for i in (0, 1)],
    "output": [{"name": f"OUTPUT{i}", "data_type": "TYPE_FP32", "dims": [16]} for i in (0, 1)],
    "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
    "dynamic_batching": {},
}


def variant(name: str, **parameters: str) -> ConfigVariant:
    config = copy.deepcopy(BASE)
    config["name"] = name
    if parameters:
        config["optimization"] = {"execution_accelerators": {"cpu_execution_accelerator": [
            {"name": "openvino", "parameters": parameters}]}}
    return ConfigVariant(model=MODEL, config=config, name=name)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from modelyzer_mlserver.launcher import MLServerLauncher

    export = tmp_path_factory.mktemp("export")
    config = profile_config(client_protocol="grpc", triton_server_path="tritonserver", triton_output_path=None,
                            client_max_retries=60)
    ml = MLServerLauncher(config, RunContext(export_path=export, output_model_repository=export / "out"))
    ml.start()
    yield ml
    ml.stop()


def ensure(launcher: Any, v: ConfigVariant, where: Path, concurrency: int = 1) -> Endpoints:
    endpoints: Endpoints = launcher.ensure(
        v, where, RunConfig(model=MODEL, variant=v, load=LoadSpec(concurrency=concurrency)))
    return endpoints


def collected(endpoints: Endpoints, tmp_path: Path) -> dict[str, float]:
    from modelyzer_mlserver.collector import OpenVinoCollector

    collector = OpenVinoCollector(profile_config(), RunContext(export_path=tmp_path,
                                                               output_model_repository=tmp_path / "out"))
    collector.start(endpoints)
    return {m.tag: m.value for m in collector.stop()}


def test_an_openvino_variant_serves_the_right_answers_and_reports_its_properties(
    launcher: Any, model_dir: Path, tmp_path: Path
) -> None:
    import numpy as np
    import tritonclient.grpc as grpcclient

    endpoints = ensure(launcher, variant("add_sub_config_0", PERFORMANCE_HINT="THROUGHPUT"), model_dir)
    client = grpcclient.InferenceServerClient(endpoints.grpc)
    a = np.arange(48, dtype=np.float32).reshape(3, 16)
    inputs = [grpcclient.InferInput(f"INPUT{i}", [3, 16], "FP32") for i in (0, 1)]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(np.full_like(a, 0.5))
    result = client.infer(MODEL, inputs)
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), a + 0.5)
    np.testing.assert_allclose(result.as_numpy("OUTPUT1"), a - 0.5)
    # the Triton config it serves keeps the accelerator field
    config = client.get_model_config(MODEL).config
    assert config.optimization.execution_accelerators.cpu_execution_accelerator[0].name == "openvino"

    values = collected(endpoints, tmp_path)
    assert values["openvino_streams"] >= 1 and values["openvino_threads"] >= 1
    assert values["openvino_infer_requests"] >= values["openvino_streams"]
    assert values["openvino_precision_bits"] in (16.0, 32.0)
    # the per-layer profile of the compiled model (add_sub: its Add and Subtract layers)
    layers = {tag: ms for tag, ms in values.items() if tag.startswith("layer_time/")}
    assert layers and all(ms >= 0 for ms in layers.values())
    assert any("[Add" in tag or "[Eltwise" in tag or "OUTPUT0" in tag for tag in layers), sorted(layers)

    # LATENCY: one stream; pinned f32 precision (every CPU OpenVINO runs on supports it)
    endpoints = ensure(launcher, variant("add_sub_config_1", PERFORMANCE_HINT="LATENCY",
                                         INFERENCE_PRECISION_HINT="f32"), model_dir)
    values = collected(endpoints, tmp_path)
    assert values["openvino_streams"] == 1.0 and values["openvino_precision_bits"] == 32.0
    assert any(tag.startswith("layer_time/") for tag in values)

    # back on ONNX Runtime: the collector reports nothing
    endpoints = ensure(launcher, variant("add_sub_config_default"), model_dir)
    assert collected(endpoints, tmp_path) == {}


@pytest.mark.skipif(not PERF_ANALYZER.exists(), reason="perf_analyzer not found (run .ci/setup)")
def test_real_perf_analyzer_measures_an_openvino_variant(launcher: Any, model_dir: Path, tmp_path: Path) -> None:
    endpoints = ensure(launcher, variant("add_sub_config_0", PERFORMANCE_HINT="THROUGHPUT"), model_dir, 2)
    out = tmp_path / "pa.csv"
    cmd = [str(PERF_ANALYZER), "-m", endpoints.model_name, "-u", endpoints.grpc, "-i", "grpc",
           "--concurrency-range", "2", "--measurement-mode", "count_windows", "-s", "90",
           "-f", str(out), "--verbose-csv"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (row,) = list(csv.DictReader(out.open()))
    assert float(row["Inferences/Second"]) > 0 and float(row["p99 latency"]) > 0
    assert float(row["Server Compute Infer"]) > 0


def test_a_precision_the_cpu_cannot_run_is_a_load_error_naming_its_capabilities(
    launcher: Any, model_dir: Path
) -> None:
    with pytest.raises(ModelLoadError, match=r"INFERENCE_PRECISION_HINT=i4 is not supported by this CPU "
                                             r"\(OPTIMIZATION_CAPABILITIES: .*FP32"):
        ensure(launcher, variant("add_sub_config_2", INFERENCE_PRECISION_HINT="i4"), model_dir)
    # the server serves the next variant as usual
    endpoints = ensure(launcher, variant("add_sub_config_default"), model_dir)
    assert endpoints.model_name == MODEL


def test_the_accuracy_guard_refuses_a_variant_that_disagrees(launcher: Any, model_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("modelyzer_model_tools.compare", reason="the model_tools plugin is not installed")
    pytest.importorskip("polygraphy")
    # add_sub is exact in any precision: with a negative tolerance every element "disagrees"
    monkeypatch.setattr(launcher._accuracy, "tolerance", lambda: -1.0)
    loads = launcher.model_loads
    with pytest.raises(ModelLoadError, match=r"add_sub_config_3 is not served: onnxruntime vs openvino.*DISAGREE"):
        ensure(launcher, variant("add_sub_config_3", PERFORMANCE_HINT="LATENCY", NUM_STREAMS="1"), model_dir)
    assert launcher.model_loads == loads  # refused before the server was asked
