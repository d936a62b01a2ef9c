"""The CPU accelerator dimension without a server: the launcher capability reaching ModelSpec, the search space
offering it (only to ONNX models on a launcher that declares it), the Triton config → MLServer settings mapping
of an OpenVINO variant, and the `openvino` collector's conversion of the runtime's report."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from modelyzer_mlserver import convert
from modelyzer_mlserver.collector import OpenVinoCollector, openvino_values
from modelyzer_mlserver.launcher import MLServerLauncher

from modelyzer.kernel import assembly
from modelyzer.kernel.errors import ModelLoadError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher
from modelyzer.kernel.models import ModelSpec
from modelyzer.plugins.search.brute import BruteSearch
from modelyzer.plugins.search.space import ACCELERATOR_PATH, config_space
from tests.support.configs import profile_config

ONNX: dict[str, Any] = {"name": "m", "platform": "onnxruntime_onnx", "max_batch_size": 8}
OPENVINO = ("openvino",)


def entry(hint: str) -> dict[str, Any]:
    return {"name": "openvino", "parameters": {"PERFORMANCE_HINT": hint}}


def accelerator_of(config: dict[str, Any]) -> Any:
    value: Any = config
    for key in ACCELERATOR_PATH:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def small(**kwargs: Any) -> Any:
    return profile_config(run_config_search_max_instance_count=1, run_config_search_max_model_batch_size=2, **kwargs)


# --- the capability ------------------------------------------------------------------------------------------
def test_the_mlserver_launcher_declares_openvino_and_the_base_launcher_nothing() -> None:
    assert MLServerLauncher.cpu_accelerators == ("openvino",)
    assert Launcher.cpu_accelerators == ()


def test_the_chosen_launchers_capability_reaches_every_model_spec(register_plugin: Any) -> None:
    class Accelerated(MLServerLauncher):
        pass

    class Plugin:
        @hookimpl
        def register_launchers(self, register: Any) -> None:
            register("accel_test", Accelerated)

    register_plugin(Plugin(), "accel-test-launcher")
    config = profile_config(triton_launch_mode="accel_test", profile_models=["a", "b"])
    specs = assembly.with_tuned_fields(config).models
    assert [s.cpu_accelerators for s in specs] == [OPENVINO, OPENVINO]
    assert [s.tuned_fields for s in specs] == [None, None]  # its tuned_fields are the default (all)
    triton = assembly.with_tuned_fields(profile_config(triton_launch_mode="local", profile_models=["a"]))
    assert triton.models[0].cpu_accelerators == ()


# --- the search space ----------------------------------------------------------------------------------------
def test_an_onnx_model_on_an_accelerated_launcher_gets_the_accelerator_dimension() -> None:
    space = config_space(ModelSpec("m", cpu_only=True, cpu_accelerators=OPENVINO), ONNX, small())
    dims = {d.name: d for d in space.dimensions}
    accel = dims["accelerator"]
    assert accel.labels == ("none", "openvino LATENCY", "openvino THROUGHPUT") and not accel.ordered
    assert [d.name for d in space.dimensions] == ["max_batch_size", "instance_count", "accelerator"]
    index = [d.name for d in space.dimensions].index("accelerator")
    coordinates = [[0] * len(space.dimensions) for _ in range(3)]
    for i, c in enumerate(coordinates):
        c[index] = i
    configs = [space.variant(c).config for c in coordinates]
    assert accelerator_of(configs[0]) is None  # "none": plain ONNX Runtime, no field written
    assert accelerator_of(configs[1]) == [entry("LATENCY")]
    assert accelerator_of(configs[2]) == [entry("THROUGHPUT")]
    assert configs[2]["max_batch_size"] == 1 and configs[2]["instance_group"][0]["kind"] == "KIND_CPU"


@pytest.mark.parametrize(
    ("spec", "base"),
    [
        (ModelSpec("m"), ONNX),  # a launcher that declares nothing (Triton here)
        (ModelSpec("m", cpu_accelerators=OPENVINO), {**ONNX, "platform": "pytorch_libtorch"}),
        (ModelSpec("m", cpu_accelerators=OPENVINO), {"name": "m", "backend": "python"}),
        (ModelSpec("m", cpu_accelerators=OPENVINO), {**ONNX, "platform": "ensemble"}),
        # the base config already names an accelerator: the user chose
        (ModelSpec("m", cpu_accelerators=OPENVINO),
         {**ONNX, "optimization": {"execution_accelerators": {"cpu_execution_accelerator": [entry("LATENCY")]}}}),
    ],
)
def test_no_accelerator_dimension_elsewhere(spec: ModelSpec, base: dict[str, Any]) -> None:
    assert "accelerator" not in [d.name for d in config_space(spec, base, small()).dimensions]


def test_a_backend_onnxruntime_model_gets_it_too() -> None:
    base = {"name": "m", "backend": "onnxruntime", "max_batch_size": 0}
    names = [d.name for d in config_space(ModelSpec("m", cpu_accelerators=OPENVINO), base, small()).dimensions]
    assert "accelerator" in names


def test_listing_the_field_in_model_config_parameters_replaces_the_automatic_dimension() -> None:
    listed = {"optimization": {"execution_accelerators": {"cpu_execution_accelerator": [
        [entry("LATENCY")], [{"name": "openvino", "parameters": {"PERFORMANCE_HINT": "THROUGHPUT",
                                                                  "NUM_STREAMS": "2"}}]]}}}
    spec = ModelSpec("m", cpu_accelerators=OPENVINO, model_config_parameters=listed)
    space = config_space(spec, ONNX, small())
    assert "accelerator" not in [d.name for d in space.dimensions]
    (dim,) = [d for d in space.dimensions if d.name == ".".join(ACCELERATOR_PATH)]
    assert [accelerator_of(o)[0]["parameters"].get("NUM_STREAMS") for o in dim.overlays] == [None, "2"]


def test_brute_manual_search_measures_each_listed_accelerator() -> None:
    listed = {"optimization": {"execution_accelerators": {"cpu_execution_accelerator": [
        [entry("LATENCY")], [entry("THROUGHPUT")]]}}}
    spec = ModelSpec("m", cpu_only=True, concurrency=(1,), model_config_parameters=listed)
    strategy = BruteSearch(spec, ONNX, profile_config())
    found = [accelerator_of(rc.variant.config) for rc in strategy.propose(slots=8)]
    assert None in found and [entry("LATENCY")] in found and [entry("THROUGHPUT")] in found


# --- Triton config → MLServer settings -----------------------------------------------------------------------
def settings_of(config: dict[str, Any]) -> dict[str, Any]:
    full = {**copy.deepcopy(ONNX), "input": [{"name": "X", "data_type": "TYPE_FP32", "dims": [4]}]}
    full.update(config)
    return convert.model_settings("m", full, Path("/models/m/1/model.onnx"), "1")


def test_an_openvino_variant_is_served_by_the_openvino_runtime_with_its_parameters() -> None:
    optimization = {"execution_accelerators": {"cpu_execution_accelerator": [
        {"name": "openvino", "parameters": {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "2"}}]}}
    settings = settings_of({"optimization": optimization})
    assert settings["implementation"] == convert.OPENVINO_IMPLEMENTATION
    assert settings["parameters"]["extra"]["openvino"] == {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "2"}
    # the served Triton config keeps the field, as Triton's ORT backend would see it
    served = settings["parameters"]["extra"]["triton_config"]
    assert served["optimization"]["execution_accelerators"]["cpu_execution_accelerator"][0]["name"] == "openvino"
    plain = settings_of({})
    assert plain["implementation"] == convert.IMPLEMENTATION and "openvino" not in plain["parameters"]["extra"]


@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        ([{"name": "tensorrt"}], "'tensorrt' is not run by the mlserver launcher (it runs: openvino)"),
        ([entry("LATENCY"), entry("THROUGHPUT")], "one CPU execution accelerator per model, the config lists 2"),
    ],
)
def test_an_accelerator_it_does_not_run_is_a_load_error(entries: list[dict[str, Any]], needle: str) -> None:
    with pytest.raises(ModelLoadError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        settings_of({"optimization": {"execution_accelerators": {"cpu_execution_accelerator": entries}}})


# --- the collector's conversion ------------------------------------------------------------------------------
def test_openvino_values_of_a_report() -> None:
    report = {"accelerator": "openvino", "properties": {
        "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "2", "INFERENCE_NUM_THREADS": "2",
        "INFERENCE_PRECISION_HINT": "bf16", "OPTIMAL_NUMBER_OF_INFER_REQUESTS": "2"}}
    assert openvino_values(report) == {"openvino_streams": 2.0, "openvino_threads": 2.0,
                                       "openvino_infer_requests": 2.0, "openvino_precision_bits": 16.0}
    assert openvino_values({"accelerator": "none"}) == {}
    layers = {**report, "layers": [{"name": "c0", "type": "Convolution", "exec_type": "jit_avx512", "ms": 0.5},
                                   {"name": "broken"}]}
    assert openvino_values(layers)["layer_time/c0 [Convolution, jit_avx512]"] == 0.5
    assert not any("broken" in tag for tag in openvino_values(layers))
    assert openvino_values({"accelerator": "openvino", "properties": {"NUM_STREAMS": "?"}}) == {}


def test_the_collector_gives_nothing_for_a_server_without_the_endpoint(tmp_path: Path) -> None:
    from modelyzer.kernel.interfaces import RunContext
    from modelyzer.kernel.models import Endpoints
    from modelyzer.plugins.launchers.local_server import free_ports

    (port,) = free_ports(1)
    collector = OpenVinoCollector(profile_config(), RunContext(export_path=tmp_path, output_model_repository=tmp_path / "out"))
    collector.start(Endpoints(http=f"127.0.0.1:{port}", model_name="m"))
    assert collector.stop() == []
    assert OpenVinoCollector.needs_server_metrics and set(OpenVinoCollector.tags) == {
        "openvino_streams", "openvino_threads", "openvino_precision_bits", "openvino_infer_requests"}
