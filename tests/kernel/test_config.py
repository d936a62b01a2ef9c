"""Config loading: precedence, list forms, per-model resolution, cross-option rules and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import click
import pytest
import yaml
from click.testing import CliRunner

from modelyzer.frontends.cli.options import (
    collect_cli_overrides,
    config_from_cli,
    profile_options,
    report_options,
)
from modelyzer.kernel.config import EXTRA_ATTRIBUTES, ProfileConfig, config_from_dict, load_profile_config
from modelyzer.kernel.config_fields import FIELDS
from modelyzer.kernel.config_reference import render_config_reference
from modelyzer.kernel.config_whitelists import PERF_ANALYZER_FLAGS
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.models import Constraint, Objective

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A model repository with add_sub and mul (both with config.pbtxt) and bare (no config.pbtxt)."""
    root = tmp_path / "models"
    for name in ("add_sub", "mul"):
        (root / name).mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(f'name: "{name}"\n')
    (root / "bare").mkdir()
    return root


def write(tmp_path: Path, data: Any, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def load(data: dict[str, Any], cli: dict[str, Any] | None = None, **kw: Any) -> ProfileConfig:
    """Load from a dict as YAML values, without filesystem checks unless asked."""
    kw.setdefault("check_paths", False)
    return config_from_dict(data, cli or {}, **kw)


def error(data: dict[str, Any], cli: dict[str, Any] | None = None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(data, cli, **kw)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


BASE = {"profile_models": "add_sub"}


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
    assert llm.inference_output_fields[-3:] == ["inter_token_latency_p99", "time_to_first_token_p99",
                                                "output_token_throughput"]
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


# ---- YAML file errors -------------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "profile_models: a\nconcurrency: [1, 2\nbatch_sizes: 1\n")
    with pytest.raises(ConfigError) as info:
        load_profile_config(path, {}, check_paths=False)
    assert str(path) in str(info.value) and "line" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_yaml_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_profile_config(write(tmp_path, text), {}, check_paths=False)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile_config(tmp_path / "nope.yaml", {}, check_paths=False)


def test_empty_config_file_needs_profile_models(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^profile_models: is required"):
        load_profile_config(write(tmp_path, ""), {}, check_paths=False)
    assert load_profile_config(write(tmp_path, ""), {"profile_models": "a"}, check_paths=False).profile_models == ("a",)


def test_yaml_errors_carry_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, {"profile_models": "a", "run_config_search_max_concurrency": "abc"})
    with pytest.raises(ConfigError) as info:
        load_profile_config(path, {}, check_paths=False)
    assert str(info.value) == (f"run_config_search_max_concurrency: must be an integer, got 'abc' (in {path})")


def test_recursive_yaml_alias_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "profile_models: &a {m: {model_config_parameters: {x: *a}}}\n")
    with pytest.raises(ConfigError):
        load_profile_config(path, {}, check_paths=False)


# ---- one-line errors naming the key ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "cli", "key", "fragment"),
    [
        ({"concurency": [1]}, {}, "concurency", "did you mean 'concurrency'"),
        ({"run-config-search-mode": "quick"}, {}, "run-config-search-mode", "did you mean 'run_config_search_mode'"),
        ({}, {"run_config_search_max_concurrency": "abc"}, "run_config_search_max_concurrency",
         "must be an integer, got 'abc'"),
        ({"run_config_search_max_concurrency": 1.5}, {}, "run_config_search_max_concurrency", "must be an integer"),
        ({"run_config_search_max_concurrency": True}, {}, "run_config_search_max_concurrency", "must be an integer"),
        ({"run_config_search_max_concurrency": 0}, {}, "run_config_search_max_concurrency", "positive integer"),
        ({"client_max_retries": -1}, {}, "client_max_retries", "non-negative"),
        ({"monitoring_interval": 0}, {}, "monitoring_interval", "> 0"),
        ({"monitoring_interval": ".nan"}, {}, "monitoring_interval", "must be a number"),
        ({"max_percentage_of_search_space": 101}, {}, "max_percentage_of_search_space", "between 0 and 100"),
        ({"collect_cpu_metrics": "maybe"}, {}, "collect_cpu_metrics", "true or false"),
        ({"client_protocol": "htp"}, {}, "client_protocol", "did you mean 'http'"),
        ({"triton_launch_mode": "no such!"}, {}, "triton_launch_mode", "plugin name"),
        ({"export_path": ["a"]}, {}, "export_path", "must be a string"),
        ({"gpus": {"a": 1}}, {}, "gpus", "list of strings"),
        ({"objectives": {"perf_thruput": 1}}, {}, "objectives", "did you mean 'perf_throughput'"),
        ({"objectives": {"perf_throughput": 0}}, {}, "objectives.perf_throughput", "> 0"),
        ({"objectives": {}}, {}, "objectives", "at least one"),
        ({"constraints": {"perf_throughput": {"max": 5}}}, {}, "constraints.perf_throughput", "takes 'min'"),
        ({"constraints": {"perf_latency_p99": {"min": 5}}}, {}, "constraints.perf_latency_p99", "takes 'max'"),
        ({"constraints": {"perf_latency_p99": {"max": "x"}}}, {}, "constraints.perf_latency_p99.max", "number"),
        ({"constraints": {"latency": {"max": 5}}}, {}, "constraints", "unknown metric tag 'latency'"),
        ({"constraints": {"perf_latency_p99": 5}}, {}, "constraints.perf_latency_p99", "mapping"),
        ({"weighting": 2}, {}, "weighting", "per model"),
        ({}, {"objectives": "perf_throughput"}, "objectives", "only be set in the YAML"),
        ({"perf_analyzer_flags": {"concurrency_range": "1:4"}}, {}, "perf_analyzer_flags.concurrency_range",
         "did you mean 'concurrency-range'"),
        ({"perf_analyzer_flags": {"concurrency-range": "1:4", "request-rate-range": "1:4"}}, {},
         "perf_analyzer_flags", "mutually exclusive"),
        ({"perf_analyzer_flags": {"shape": {"a": 1}}}, {}, "perf_analyzer_flags.shape", "list of values"),
        ({"genai_perf_flags": {"tokenzer": "x"}}, {}, "genai_perf_flags.tokenzer", "did you mean 'tokenizer'"),
        ({"triton_docker_args": {"mem_limt": "1g"}}, {}, "triton_docker_args.mem_limt", "did you mean 'mem_limit'"),
        ({"triton_server_flags": ["log-verbose"]}, {}, "triton_server_flags", "mapping"),
        ({"triton_server_environment": {"A": [1]}}, {}, "triton_server_environment.A", "must be a string"),
        ({"triton_docker_mounts": ["/a:/b"]}, {}, "triton_docker_mounts", "host:container:mode"),
        ({"output_formats": "pdf,doc"}, {}, "output_formats", "pdf, csv, png"),
        ({}, {"no_such_option": "1"}, "no_such_option", "unknown option"),
    ],
)
def test_errors_name_the_key(data: dict[str, Any], cli: dict[str, Any], key: str, fragment: str) -> None:
    message = error({**BASE, **data}, cli)
    assert message.startswith(key + ":"), message
    assert fragment in message, message


@pytest.mark.parametrize(
    ("models", "key", "fragment"),
    [
        ({"add_sub": {"parameters": {"concurrency": 0}}}, "profile_models.add_sub.parameters.concurrency",
         "positive integers"),
        ({"add_sub": {"parameters": {"concurency": [1]}}}, "profile_models.add_sub.parameters.concurency",
         "did you mean 'concurrency'"),
        ({"add_sub": {"parameters": {"concurrency": [1], "request_rate": [2]}}}, "profile_models.add_sub.parameters",
         "both concurrency and request_rate"),
        ({"add_sub": {"objective": {"perf_throughput": 1}}}, "profile_models.add_sub.objective",
         "did you mean 'objectives'"),
        ({"add_sub": {"constraints": {"perf_throughput": {"max": 1}}}}, "profile_models.add_sub.constraints."
         "perf_throughput", "takes 'min'"),
        ({"add_sub": {"weighting": -1}}, "profile_models.add_sub.weighting", "> 0"),
        ({"add_sub": {"cpu_only": "sometimes"}}, "profile_models.add_sub.cpu_only", "true or false"),
        ({"add_sub": {"perf_analyzer_flags": {"bogus": 1}}}, "profile_models.add_sub.perf_analyzer_flags.bogus",
         "not an accepted flag"),
        ({"add_sub": {"model_config_parameters": [1]}}, "profile_models.add_sub.model_config_parameters", "mapping"),
        ({"add_sub": ["x"]}, "profile_models.add_sub", "mapping"),
        (["a", "a"], "profile_models", "listed twice"),
        ("../etc", "profile_models", "not a model name"),
        (42.5, "profile_models", "comma list"),
        ([["a"]], "profile_models", "must be strings"),
    ],
)
def test_per_model_errors_use_dotted_paths(models: Any, key: str, fragment: str) -> None:
    message = error({"profile_models": models})
    assert message.startswith(key + ":"), message
    assert fragment in message, message


def test_profile_models_on_cli_and_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, {"profile_models": "a"})
    with pytest.raises(ConfigError, match="^profile_models: is given both on the command line and in the config"):
        load_profile_config(path, {"profile_models": "b"}, check_paths=False)


def test_cli_errors_name_the_flag() -> None:
    message = error(BASE, {"concurrency": "1,x"})
    assert message.startswith("concurrency:") and message.endswith("(from --concurrency)")


# ---- cross-option rules (MA §2.4) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"run_config_search_min_concurrency": 64, "run_config_search_max_concurrency": 8},
         "run_config_search_min_concurrency", "greater than run_config_search_max_concurrency"),
        ({"run_config_search_max_concurrency": 0.0}, "run_config_search_max_concurrency", "positive"),
        ({"run_config_search_min_request_rate": 100, "run_config_search_max_request_rate": 50},
         "run_config_search_min_request_rate", "greater than"),
        ({"run_config_search_min_instance_count": 9}, "run_config_search_min_instance_count", "greater than"),
        ({"run_config_search_max_instance_count": 0}, "run_config_search_max_instance_count", "positive"),
        ({"run_config_search_max_model_batch_size": 0}, "run_config_search_max_model_batch_size", "positive"),
        ({"run_config_search_min_model_batch_size": 256}, "run_config_search_min_model_batch_size", "greater than"),
        ({"min_percentage_of_search_space": 50, "max_percentage_of_search_space": 20},
         "min_percentage_of_search_space", "greater than"),
        ({"optuna_max_trials": 5}, "optuna_max_trials", "less than optuna_min_trials"),
        ({"concurrency": [1], "request_rate": [5]}, "concurrency", "conflicts with request_rate"),
        ({"concurrency": [1], "request_rate_search_enable": True}, "concurrency",
         "conflicts with request_rate_search_enable"),
        ({"concurrency": [1], "run_config_search_max_request_rate": 100}, "concurrency",
         "conflicts with run_config_search_max_request_rate"),
        ({"run_config_search_max_concurrency": 8, "request_rate": [5]}, "run_config_search_max_concurrency",
         "conflicts with request_rate"),
        ({"run_config_search_mode": "quick", "run_config_search_disable": True}, "run_config_search_disable",
         "quick"),
        ({"run_config_search_mode": "quick", "concurrency": [4]}, "concurrency", "quick"),
        ({"run_config_search_mode": "quick", "batch_sizes": [4]}, "batch_sizes", "quick"),
        ({"run_config_search_mode": "brute", "run_config_profile_models_concurrently_enable": True},
         "run_config_search_mode", "concurrently"),
        ({"dcgm_disable": True}, "dcgm_disable", "requires triton_launch_mode remote"),
        ({"triton_launch_mode": "docker", "triton_docker_image": " "}, "triton_docker_image", "must not be empty"),
        ({"num_top_model_configs": 3}, "num_top_model_configs", "needs global constraints"),
    ],
)
def test_cross_option_rules(data: dict[str, Any], key: str, fragment: str) -> None:
    message = error({**BASE, **data})
    assert message.startswith(key + ":"), message
    assert fragment in message, message


def test_cross_option_rules_that_allow() -> None:
    assert load({**BASE, "dcgm_disable": True, "triton_launch_mode": "remote"}).dcgm_disable
    assert load({**BASE, "num_top_model_configs": 3, "latency_budget": 10}).num_top_model_configs == 3
    assert load({**BASE, "num_top_model_configs": 3, "constraints": {"perf_throughput": {"min": 1}}})
    # implicit brute + concurrent is fine (the strategy picks quick), explicit quick too
    assert load({**BASE, "run_config_profile_models_concurrently_enable": True})
    assert load({**BASE, "run_config_search_mode": "quick", "run_config_profile_models_concurrently_enable": True})
    assert load({**BASE, "run_config_search_min_concurrency": 2, "run_config_search_max_concurrency": 2})


def test_quick_mode_per_model_rules() -> None:
    quick = {"run_config_search_mode": "quick"}

    def quick_error(settings: dict[str, Any]) -> str:
        return error({**quick, "profile_models": {"m": settings}})

    assert quick_error({"parameters": {"concurrency": [1]}}).startswith("profile_models.m.parameters.concurrency:")
    assert quick_error({"model_config_parameters": {"max_batch_size": [4, 8]}}).startswith(
        "profile_models.m.model_config_parameters.max_batch_size:")
    assert quick_error({"model_config_parameters": {"instance_group": [{"count": 1}]}}).startswith(
        "profile_models.m.model_config_parameters.instance_group:")
    assert quick_error({"model_config_parameters": {"dynamic_batching": {"max_queue_delay_microseconds": [1, 2]}}}
                       ).startswith("profile_models.m.model_config_parameters:")
    # one combination is fine; per-model batch sizes are allowed (as in MA)
    assert load({**quick, "profile_models": {"m": {"model_config_parameters": {"max_batch_size": 8},
                                                   "parameters": {"batch_sizes": [1, 2]}}}})
    # composing models are exempt
    assert load({**quick, "profile_models": {"m": {"model_config_parameters": {"max_batch_size": [4, 8]}}},
                 "cpu_only_composing_models": ["m"]})


def test_bls_rules() -> None:
    bls = {"bls_composing_models": "add,sub"}
    assert error({"profile_models": "a,b", **bls}).startswith("bls_composing_models: needs exactly one model")
    assert error({**BASE, **bls, "run_config_search_mode": "brute"}).startswith("run_config_search_mode:")
    assert error({**BASE, **bls, "run_config_search_mode": "quick",
                  "run_config_profile_models_concurrently_enable": True}).startswith("bls_composing_models:")
    assert load({**BASE, **bls}).bls_composing_models


def test_mixing_request_rate_and_concurrency_models() -> None:
    message = error({"profile_models": {"a": {"parameters": {"request_rate": [5]}},
                                        "b": {"parameters": {"concurrency": [2]}}}})
    assert message.startswith("profile_models: cannot mix")


def test_ignored_options_warn() -> None:
    config = load({**BASE, "triton_launch_mode": "c_api", "triton_server_flags": {"log_verbose": 1},
                   "triton_docker_shm_size": "1g"})
    assert any("triton_server_flags" in w and "c_api" in w for w in config.warnings)
    assert any("triton_docker_shm_size" in w for w in config.warnings)


# ---- CLI options ------------------------------------------------------------------------------------


@click.command()
@profile_options
def _profile(**kwargs: Any) -> None:
    click.echo(json.dumps(collect_cli_overrides(kwargs), sort_keys=True))


@click.command()
@report_options
def _report(**kwargs: Any) -> None:
    click.echo(json.dumps(collect_cli_overrides(kwargs), sort_keys=True))


def test_profile_options_cover_every_cli_field() -> None:
    params = {p.name: p for p in _profile.params}
    expected = {f.name for f in FIELDS.values() if f.cli and "profile" in f.commands}
    assert set(params) == expected
    assert not {f.name for f in FIELDS.values() if f.yaml_only} & set(params)
    for name in params:
        assert params[name].help, name


def test_short_flags_and_overrides() -> None:
    result = CliRunner().invoke(_profile, ["-f", "c.yaml", "-m", "/r", "-e", "/e", "-s", "/s", "-i", "0.5",
                                           "-d", "4", "-b", "1,2", "-c", "8", "-r", "3", "--profile-models", "a",
                                           "--collect-cpu-metrics", "--no-early-exit-enable"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "config_file": "c.yaml", "model_repository": "/r", "export_path": "/e", "checkpoint_directory": "/s",
        "monitoring_interval": "0.5", "duration_seconds": "4", "batch_sizes": "1,2", "concurrency": "8",
        "client_max_retries": "3", "profile_models": "a", "collect_cpu_metrics": True, "early_exit_enable": False,
    }
    assert CliRunner().invoke(_profile, []).output.strip() == "{}"


def test_report_options() -> None:
    result = CliRunner().invoke(_report, ["-n", "a_config_0", "-o", "pdf", "-e", "/e"])
    assert json.loads(result.output) == {"report_model_configs": "a_config_0", "output_formats": "pdf",
                                         "export_path": "/e"}


def test_help_shows_defaults() -> None:
    text = CliRunner().invoke(_profile, ["--help"]).output
    assert "--run-config-search-max-concurrency" in text and "1024" in text
    assert "--collect-cpu-metrics / --no-collect-cpu-metrics" in text


def test_config_from_cli(tmp_path: Path) -> None:
    path = write(tmp_path, {"profile_models": "a", "concurrency": [1, 2]})
    config = config_from_cli({"config_file": str(path), "concurrency": "4", "quiet": True}, check_paths=False)
    assert config.concurrency == [4] and config.models[0].concurrency == (4,)


# ---- docs -------------------------------------------------------------------------------------------


def test_reference_lists_every_key_and_flag() -> None:
    text = render_config_reference()
    for field in FIELDS.values():
        assert f"`{field.name}`" in text
        if field.cli:
            assert f"`{field.flag}`" in text
    for flag in PERF_ANALYZER_FLAGS:
        assert f"`{flag}`" in text


def test_docs_config_md_is_up_to_date() -> None:
    path = ROOT / "docs" / "config.md"
    assert path.read_text() == render_config_reference(), (
        "docs/config.md is stale; regenerate with: python -c 'from modelyzer.kernel.config_reference import "
        "render_config_reference as r; open(\"docs/config.md\", \"w\").write(r())'")
