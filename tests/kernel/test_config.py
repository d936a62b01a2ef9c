"""Config loading: the field table, precedence, list forms, per-model resolution and filesystem checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from modelyzer.kernel.config import EXTRA_ATTRIBUTES, ProfileConfig, load_profile_config
from modelyzer.kernel.config_fields import FIELDS
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.models import Constraint, Objective
from tests.kernel.config_support import BASE, error, load, write

# ---- the field table and the attrs class agree ------------------------------------------------------


def test_every_field_is_an_attribute_and_back() -> None:
    names = {a.name for a in attrs.fields(ProfileConfig)}
    assert names == set(FIELDS) | set(EXTRA_ATTRIBUTES)


def test_defaults_match_the_table() -> None:
    config = load(BASE)
    for name, field in FIELDS.items():
        if field.default is not None and field.kind not in ("models",):
            value = getattr(config, name)
            assert value == field.default, name
    assert config.user_set == frozenset({"profile_models"})


def test_model_analyzer_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load(BASE)
    assert config.run_config_search_max_concurrency == 1024
    assert config.run_config_search_max_request_rate == 8192
    assert config.run_config_search_max_instance_count == 5
    assert config.client_protocol == "grpc"
    assert config.triton_launch_mode == "local"
    assert config.run_config_search_mode == "brute"
    assert config.export_path == tmp_path
    assert config.results_db == tmp_path / "results.db"
    assert config.checkpoint_directory == tmp_path / "checkpoints"
    assert config.output_model_repository_path == tmp_path / "output_model_repository"
    assert config.objectives == (Objective("perf_throughput", 10.0),)
    assert config.batch_sizes == [1] and config.concurrency == []
    assert config.gpus == ["all"]
    assert config.perf_analyzer_cpu_util > 0


# ---- precedence -------------------------------------------------------------------------------------


def test_precedence_defaults_yaml_cli(tmp_path: Path, repo: Path) -> None:
    path = write(tmp_path, {"model_repository": str(repo), "profile_models": "add_sub",
                            "run_config_search_max_concurrency": 64, "client_protocol": "http",
                            "collect_cpu_metrics": True})
    config = load_profile_config(path, {"run_config_search_max_concurrency": "32", "collect_cpu_metrics": False})
    assert config.run_config_search_max_concurrency == 32  # CLI beats YAML
    assert config.client_protocol == "http"  # YAML beats default
    assert config.collect_cpu_metrics is False  # --no-flag beats YAML
    assert config.run_config_search_min_concurrency == 1  # default
    assert config.config_file == path
    assert {"run_config_search_max_concurrency", "client_protocol", "model_repository"} <= config.user_set
    assert "run_config_search_min_concurrency" not in config.user_set


def test_config_file_can_come_through_the_cli_dict(tmp_path: Path) -> None:
    path = write(tmp_path, {"profile_models": "m", "duration_seconds": 7})
    config = load_profile_config(None, {"config_file": str(path)}, check_paths=False)
    assert config.duration_seconds == 7


def test_none_cli_values_are_not_user_set() -> None:
    config = load(BASE, {"concurrency": None, "duration_seconds": None})
    assert "concurrency" not in config.user_set


def test_results_db_defaults_under_export_path_and_can_be_set(tmp_path: Path) -> None:
    assert load(BASE, {"export_path": str(tmp_path)}).results_db == tmp_path / "results.db"
    assert load(BASE, {"results_db": str(tmp_path / "x.db")}).results_db == tmp_path / "x.db"


# ---- lists and ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,2, 4", [1, 2, 4]),
        ([1, 2, 4], [1, 2, 4]),
        (["8", 16], [8, 16]),
        (8, [8]),
        ({"start": 2, "stop": 64, "step": 8}, [2, 10, 18, 26, 34, 42, 50, 58]),
        ({"start": 1, "stop": 4}, [1, 2, 3, 4]),
        ({"start": 4, "stop": 16, "step": 4}, [4, 8, 12, 16]),  # inclusive stop
    ],
)
def test_int_list_forms(value: Any, expected: list[int]) -> None:
    assert load({**BASE, "concurrency": value}).concurrency == expected


def test_cli_lists_are_comma_strings() -> None:
    config = load(BASE, {"batch_sizes": "1,8,32", "gpus": "0,1"})
    assert config.batch_sizes == [1, 8, 32]
    assert config.gpus == ["0", "1"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "positive integers"),
        ([1, -2], "positive integers"),
        ("a,b", "positive integers"),
        ({"start": 8, "stop": 2}, "greater than stop"),
        ({"start": 1}, "needs both 'start' and 'stop'"),
        ({"start": 1, "stop": 4, "stepp": 2}, "start, stop, step"),
        ({"start": 1, "stop": 4, "step": 0}, "concurrency.step"),
        ({"start": 1, "stop": 10**12}, "more than"),
    ],
)
def test_bad_int_lists(value: Any, fragment: str) -> None:
    message = error({**BASE, "concurrency": value})
    assert message.startswith("concurrency")
    assert fragment in message


# ---- profile_models forms and per-model resolution ---------------------------------------------------


@pytest.mark.parametrize("value", ["add_sub,mul", ["add_sub", "mul"], {"add_sub": None, "mul": {}},
                                   [{"add_sub": None}, "mul"]])
def test_profile_models_forms(value: Any) -> None:
    config = load({"profile_models": value, "model_repository": "/repo"})
    assert config.profile_models == ("add_sub", "mul")
    assert [m.name for m in config.models] == ["add_sub", "mul"]
    assert config.models[0].model_path == "/repo/add_sub"


def test_per_model_settings_and_inheritance() -> None:
    config = load({
        "profile_models": {
            "add_sub": {
                "parameters": {"concurrency": {"start": 1, "stop": 4}, "batch_sizes": [2]},
                "objectives": {"perf_latency_p99": 5},
                "constraints": {"perf_throughput": {"min": 100}},
                "weighting": 3,
                "cpu_only": True,
                "model_config_parameters": {"max_batch_size": [4, 8], "dynamic_batching": {}},
                "perf_analyzer_flags": {"percentile": 95},
                "triton_server_environment": {"A": 1},
            },
            "mul": None,
        },
        "batch_sizes": [1, 16],
        "request_rate": [],
        "objectives": ["perf_throughput", "perf_latency_p99"],
        "constraints": {"perf_latency_p99": {"max": 20}},
        "perf_analyzer_flags": {"measurement-interval": 5000},
        "triton_server_flags": {"log_verbose": 1},
        "triton_docker_args": {"mem_limit": "1g"},
    })
    add_sub, mul = config.models
    assert add_sub.concurrency == (1, 2, 3, 4) and add_sub.batch_sizes == (2,)
    assert add_sub.objectives == (Objective("perf_latency_p99", 5.0),)
    assert add_sub.constraints == (Constraint("perf_throughput", min=100.0),)
    assert add_sub.weighting == 3.0 and add_sub.cpu_only is True
    assert add_sub.model_config_parameters == {"max_batch_size": [4, 8], "dynamic_batching": {}}
    assert add_sub.perf_analyzer_flags == {"percentile": 95}
    assert add_sub.triton_server_environment == {"A": "1"}
    assert add_sub.triton_server_flags == {"log-verbose": 1}  # inherited, kebab-cased
    # mul inherits everything global
    assert mul.batch_sizes == (1, 16) and mul.concurrency == ()
    assert mul.objectives == (Objective("perf_throughput", 10.0), Objective("perf_latency_p99", 10.0))
    assert mul.constraints == (Constraint("perf_latency_p99", max=20.0),)
    assert mul.weighting == 1.0 and mul.cpu_only is False
    assert mul.perf_analyzer_flags == {"measurement-interval": 5000}
    assert mul.triton_docker_args == {"mem_limit": "1g"}


def test_shorthand_constraints_merge_into_every_model() -> None:
    config = load({
        "profile_models": {"a": {"constraints": {"perf_latency": {"max": 50}, "gpu_used_memory": {"max": 900}}},
                           "b": None},
        "latency_budget": 10, "min_throughput": 5,
    })
    a, b = config.models
    assert set(a.constraints) == {Constraint("gpu_used_memory", max=900.0), Constraint("perf_latency_p99", max=10.0),
                                  Constraint("perf_throughput", min=5.0)}
    assert set(b.constraints) == {Constraint("perf_latency_p99", max=10.0), Constraint("perf_throughput", min=5.0)}
    assert set(config.constraints) == set(b.constraints)


def test_shorthands_from_cli() -> None:
    config = load(BASE, {"latency_budget": "7", "min_throughput": "100.5"})
    assert set(config.models[0].constraints) == {Constraint("perf_latency_p99", max=7.0),
                                                 Constraint("perf_throughput", min=100.5)}


def test_objectives_list_and_dict_forms() -> None:
    assert load({**BASE, "objectives": "perf_throughput,perf_latency_p99"}).objectives == (
        Objective("perf_throughput", 10.0), Objective("perf_latency_p99", 10.0))
    assert load({**BASE, "objectives": {"gpu_used_memory": 2}}).objectives == (Objective("gpu_used_memory", 2.0),)


def test_model_parameters_request_rate_does_not_inherit_global_concurrency() -> None:
    config = load({"profile_models": {"a": {"parameters": {"request_rate": [10, 20]}}},
                   "run_config_search_disable": True})
    assert config.models[0].request_rate == (10, 20) and config.models[0].concurrency == ()
    assert config.request_rate_mode


def test_search_disable_without_load_means_concurrency_one() -> None:
    config = load({**BASE, "run_config_search_disable": True})
    assert config.concurrency == [1] and config.models[0].concurrency == (1,)
    assert load({**BASE, "run_config_search_disable": True, "request_rate": [5]}).concurrency == []


def test_optuna_does_not_search_client_batch_unless_set() -> None:
    assert load({**BASE, "run_config_search_mode": "optuna"}).models[0].batch_sizes == ()
    assert load({**BASE, "run_config_search_mode": "optuna", "batch_sizes": [4]}).models[0].batch_sizes == (4,)


def test_empty_gpu_list_makes_models_cpu_only_unless_remote() -> None:
    assert load({**BASE, "gpus": []}).models[0].cpu_only is True
    assert load({**BASE, "gpus": [], "triton_launch_mode": "remote"}).models[0].cpu_only is False
    assert load({**BASE, "cpu_only_composing_models": ["add_sub"]}).models[0].cpu_only is True


def test_composing_models_are_resolved_specs() -> None:
    config = load({"profile_models": "bls", "run_config_search_mode": "quick",
                   "bls_composing_models": {"add": {"cpu_only": True}, "sub": None}})
    assert [m.name for m in config.bls_composing_models] == ["add", "sub"]
    assert config.bls_composing_models[0].cpu_only


def test_output_fields_switch_with_request_rate_and_llm() -> None:
    rate = load({**BASE, "request_rate": [4]})
    assert "request_rate" in rate.inference_output_fields and "concurrency" not in rate.inference_output_fields
    assert "request_rate" in rate.gpu_output_fields
    llm = load({**BASE, "model_type": "llm"})
    assert llm.model_type == "LLM"
    assert llm.inference_output_fields[-5:] == ["inter_token_latency_p99", "time_to_first_token_p99",
                                                "output_token_throughput",  # Model Analyzer's, then the workload
                                                "input_sequence_length_avg", "output_sequence_length_avg"]
    custom = load({**BASE, "request_rate": [4], "inference_output_fields": "model_name,perf_throughput"})
    assert custom.inference_output_fields == ["model_name", "perf_throughput"]


def test_flag_dicts() -> None:
    config = load({**BASE, "triton_server_flags": {"log_verbose": 1, "exit-timeout-secs": 5},
                   "perf_analyzer_flags": {"shape": ["INPUT0:4", "INPUT1:4"], "percentile": 95, "streaming": None},
                   "genai_perf_flags": {"streaming": True}})
    assert config.triton_server_flags == {"log-verbose": 1, "exit-timeout-secs": 5}
    assert config.perf_analyzer_flags == {"shape": ["INPUT0:4", "INPUT1:4"], "percentile": 95}
    assert config.genai_perf_flags == {"streaming": True}


def test_plugin_names_are_accepted_then_validated() -> None:
    """The loader takes any plugin name; the profile checks it against the installed plugins."""
    from modelyzer.kernel.assembly import check_plugin_names

    config = load({**BASE, "triton_launch_mode": "mlserver", "run_config_search_mode": "replay"})
    assert config.triton_launch_mode == "mlserver"
    with pytest.raises(ConfigError, match="run_config_search_mode: unknown search strategy 'replay'"):
        check_plugin_names(config)
    check_plugin_names(load({**BASE, "triton_launch_mode": "mlserver"}))
    with pytest.raises(ConfigError, match=r"triton_launch_mode: unknown launcher 'mlserverx'; did you mean 'mlserver'"):
        check_plugin_names(load({**BASE, "triton_launch_mode": "mlserverx"}))


def test_to_dict_is_json() -> None:
    config = load({**BASE, "model_repository": "/r", "constraints": {"perf_latency_p99": {"max": 3}}})
    data = json.loads(json.dumps(config.to_dict()))
    assert data["model_repository"] == "/r"
    assert data["models"][0]["name"] == "add_sub"
    assert data["models"][0]["constraints"] == [{"tag": "perf_latency_p99", "min": None, "max": 3.0}]
    assert data["user_set"] == ["constraints", "model_repository", "profile_models"]
    assert set(FIELDS) <= set(data)


def test_report_command_keys() -> None:
    config = load({"report_model_configs": "a_config_0,a_config_1"}, command="report")
    assert config.report_model_configs == ["a_config_0", "a_config_1"]
    plots = {"a_config_0": {"plots": {"p": {"title": "T", "x_axis": "perf_latency_p99", "y_axis": "perf_throughput"}}}}
    assert load({"report_model_configs": plots, "output_formats": ["pdf", "png"]}, command="report").output_formats == [
        "pdf", "png"]
    assert "report_model_configs: is required" in error({}, command="report")


# ---- filesystem checks ------------------------------------------------------------------------------


def test_paths_ok(repo: Path, tmp_path: Path) -> None:
    config = load({"model_repository": str(repo), "profile_models": "add_sub,mul", "export_path": str(tmp_path)},
                  check_paths=True)
    assert config.models[1].model_path == str(repo / "mul")


def test_missing_model_repository(tmp_path: Path) -> None:
    message = error({**BASE, "model_repository": str(tmp_path / "nope")}, check_paths=True)
    assert message.startswith("model_repository: directory") and "does not exist" in message
    assert "model_repository: is required" in error(BASE, check_paths=True)
    # remote servers have their own repository
    assert load({**BASE, "triton_launch_mode": "remote"}, check_paths=True).models[0].model_path == "add_sub"


def test_missing_model_directory_and_config_pbtxt(repo: Path) -> None:
    message = error({"model_repository": str(repo), "profile_models": "add_sub,nope"}, check_paths=True)
    assert message.startswith("profile_models:") and "'nope'" in message
    message = error({"model_repository": str(repo), "profile_models": "bare"}, check_paths=True)
    assert "config.pbtxt" in message and "'bare'" in message
    # a plugin launcher (e.g. MLServer) has no config.pbtxt
    assert load({"model_repository": str(repo), "profile_models": "bare", "triton_launch_mode": "mlserver"},
                check_paths=True)


def test_export_path_must_be_a_directory(tmp_path: Path, repo: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    message = error({**BASE, "model_repository": str(repo), "export_path": str(file)}, check_paths=True)
    assert message.startswith("export_path:")


