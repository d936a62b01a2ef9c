"""Load-time checks that need the plugins (`kernel/config_checks.py`): model_config_parameters against the codec's
schema, plots, output fields and negative numbers — one line naming the key, before any server starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import load_profile_config
from modelyzer.kernel.config_checks import codec_for, is_output_column
from tests.kernel.config_support import BASE, error, load, write


def _mcp(params: dict[str, Any], key: str = "profile_models") -> dict[str, Any]:
    return {**BASE, key: {"add_sub" if key == "profile_models" else "step": {"model_config_parameters": params}}}


@pytest.mark.parametrize(("params", "expected"), [
    ({"max_batch_sizes": [1, 2]}, "profile_models.add_sub.model_config_parameters.max_batch_sizes: is not a field of "
                                  "Triton's model config; did you mean 'max_batch_size'?"),
    ({"instance_group": [{"kind": "KIND_TPU", "count": [1, 2]}]},
     "profile_models.add_sub.model_config_parameters.instance_group.kind: 'KIND_TPU' is not one of KIND_AUTO, "
     "KIND_GPU, KIND_CPU, KIND_MODEL; did you mean 'KIND_GPU'?"),
    ({"dynamic_batching": {"max_queue_delay_microsecond": [100]}},
     "profile_models.add_sub.model_config_parameters.dynamic_batching.max_queue_delay_microsecond: is not a field of "
     "dynamic_batching (ModelDynamicBatching); did you mean 'max_queue_delay_microseconds'?"),
    ({"instance_group": [{"count": -1}]}, "instance_group.count: must not be negative, got -1"),
    ({"max_batch_size": [4, -8]}, "max_batch_size: must not be negative, got -8"),
    ({"max_batch_size": "many"}, "max_batch_size: must be an integer, got 'many'"),
    ({"max_batch_size": []}, "max_batch_size: is an empty list of choices"),
    ({"dynamic_batching": {"preserve_ordering": "yes"}}, "preserve_ordering: must be true or false"),
    ({"parameters": {"K": {"string_value": 16}}}, "parameters.K.string_value: must be a string, got 16; quote it"),
    ({"dynamic_batching": [1, 2]}, "dynamic_batching: must be a mapping of ModelDynamicBatching fields"),
])
def test_model_config_parameters_fail_at_load(params: dict[str, Any], expected: str) -> None:
    message = error(_mcp(params))
    assert expected in message
    assert len(message) < 250


@pytest.mark.parametrize("params", [
    {"max_batch_size": [2, 4, 8], "dynamic_batching": {"max_queue_delay_microseconds": [0, 100]}},
    {"instance_group": [{"kind": "KIND_GPU", "count": [1, 2]}]},
    {"instance_group": [[{"kind": "KIND_GPU", "count": 1}], [{"kind": "KIND_CPU", "count": 2}]]},
    {"dynamic_batching": {"preferred_batch_size": [[4, 8], [16]]}, "maxBatchSize": 4},
    {"parameters": {"KEY": {"string_value": ["a", "b"]}}, "dynamic_batching": None},
    {"optimization": {"execution_accelerators": {"cpu_execution_accelerator": [{"name": "openvino"}]}}},
    {"instance_group": [{"kind": 2}]},
])
def test_valid_model_config_parameters_load(params: dict[str, Any]) -> None:
    assert load(_mcp(params)).model("add_sub").model_config_parameters == params


def test_composing_models_are_checked_too() -> None:
    message = error(_mcp({"max_batch_sizes": 4}, key="ensemble_composing_models"))
    assert message.startswith("ensemble_composing_models.step.model_config_parameters.max_batch_sizes:")


def test_the_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, _mcp({"instance_group": [{"kind": "KIND_TPU"}]}))
    with pytest.raises(Exception) as info:
        load_profile_config(path, {}, check_paths=False)
    assert str(info.value).endswith(f"(in {path})")


def test_codec_for_picks_the_codec_of_the_model_directory(repo: Path) -> None:
    assert codec_for([repo / "add_sub"]).filename == "config.pbtxt"
    assert codec_for([]).filename == "config.pbtxt"


@pytest.mark.parametrize(("data", "expected"), [
    ({"plots": {"p": {"x_axis": "perf_latency_p999", "y_axis": "perf_throughput"}}},
     "plots.p.x_axis: unknown metric 'perf_latency_p999'; did you mean 'perf_latency_p99'?"),
    ({"plots": {"p": {"y_axis": "perf_throughput"}}}, "plots.p.x_axis: is required"),
    ({"plots": {"p": {"x_axis": "concurrency", "y_axis": "perf_throughput", "monotonic": "yes"}}},
     "plots.p.monotonic: must be true or false"),
    ({"plots": {"p": {"x_axis": "concurrency", "y_axis": "perf_throughput", "xaxis": 1}}},
     "plots.p: unknown key 'xaxis'"),
    ({"plots": ["p"]}, "plots: must be a mapping of plot name"),
    ({"report_model_configs": {"add_sub_config_0": {"plots": {"p": {"x_axis": "concurrency", "y_axis": "gpu_memory"}}}}},
     "report_model_configs.add_sub_config_0.plots.p.y_axis: unknown metric 'gpu_memory'"),
    ({"report_model_configs": [{"add_sub_config_0": {"plot": {}}}]},
     "report_model_configs.add_sub_config_0.plot: is not a key of a reported config"),
    ({"inference_output_fields": "model_name,perf_throughputt"},
     "inference_output_fields: unknown field 'perf_throughputt'; did you mean 'perf_throughput'?"),
    ({"gpu_output_fields": ["gpu_uuid", "gpu_used_memry"]}, "gpu_output_fields: unknown field 'gpu_used_memry'"),
    ({"server_output_fields": ["nonsense_column"]}, "server_output_fields: unknown field 'nonsense_column'"),
])
def test_plots_and_output_fields_fail_at_load(data: dict[str, Any], expected: str) -> None:
    assert expected in error({**BASE, **data})


def test_good_plots_and_output_fields_load() -> None:
    config = load({**BASE, "plots": {"p": {"title": "T", "x_axis": "perf_latency_p99", "y_axis": "perf_throughput",
                                           "monotonic": True}},
                   "report_model_configs": ["add_sub_config_0", {"add_sub_config_1": None}],
                   "inference_output_fields": ["model_name", "request_rate", "backend_parameter/x",
                                               "perf_throughput_ci", "host_cpu_utilization"]})
    assert config.inference_output_fields[-1] == "host_cpu_utilization"
    assert is_output_column("satisfies_constraints") and not is_output_column("backend_parameter/")


@pytest.mark.parametrize(("data", "expected"), [
    ({"perf_analyzer_flags": {"measurement-interval": -5}}, "perf_analyzer_flags.measurement-interval: must not be "
                                                            "negative"),
    ({"genai_perf_flags": {"request-count": [10, -1]}}, "genai_perf_flags.request-count: must not be negative"),
    ({"replay_duration": -1}, "replay_duration: must be a number >= 0"),
    ({"client_max_retries": -1}, "client_max_retries: must be a non-negative integer"),
    ({"perf_analyzer_timeout": -3}, "perf_analyzer_timeout: must be a positive integer"),
    ({"batch_sizes": "1,-2"}, "batch_sizes: must be a list of positive integers"),
    ({"concurrency": -4}, "concurrency: must be a list of positive integers"),
    ({"request_rate": [0]}, "request_rate: must be a list of positive integers"),
    ({"run_config_search_max_instance_count": -2}, "run_config_search_max_instance_count: must be a positive"),
    ({"profile_models": {"add_sub": {"parameters": {"concurrency": [-1]}}}},
     "profile_models.add_sub.parameters.concurrency: must be a list of positive integers"),
])
def test_negative_counts_and_sizes_are_refused(data: dict[str, Any], expected: str) -> None:
    assert expected in error({**BASE, **data})


def test_every_numeric_key_has_a_lower_bound() -> None:
    from modelyzer.kernel.config_fields import FIELDS
    unbounded = [f.name for f in FIELDS.values() if f.kind in ("int", "float", "int_list") and f.minimum is None]
    assert unbounded == []
