"""Config loading: YAML file errors, one-line errors naming the key, and Model Analyzer's cross-option rules."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import load_profile_config
from modelyzer.kernel.errors import ConfigError
from tests.kernel.config_support import BASE, error, load, write

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


@pytest.mark.parametrize("text", ["concurrency: 2024-13-45\n", 'concurrency: !!int "abc"\n', 'x: !!timestamp "x"\n',
                                  "concurrency: " + "9" * 5000 + "\n"])
def test_values_yaml_cannot_construct_are_one_line(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="has a value YAML cannot construct .*; quote it") as info:
        load_profile_config(write(tmp_path, text), {}, check_paths=False)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_fifo_a_device_and_a_huge_file_are_not_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ConfigError, match="is not a regular file"):
            load_profile_config(path, {}, check_paths=False)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * ((1 << 20) + 1))
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_profile_config(huge, {}, check_paths=False)
    with pytest.raises(ConfigError, match="^config_file: is too long for a path .* at most 255 bytes per name") as info:
        load_profile_config(tmp_path / ("x" * 300), {}, check_paths=False)
    assert len(str(info.value)) < 200
    for key in ("export_path", "model_repository", "results_db"):  # every path key, before any OSError can occur
        with pytest.raises(ConfigError, match=f"^{key}: is too long for a path"):
            load_profile_config(None, {"profile_models": "m", key: "/tmp/" + "y" * 256}, check_paths=True)


def test_a_long_unknown_key_is_shortened_and_misplaced_keys_say_where_they_belong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^k{57}\.\.\.: unknown key"):
        load_profile_config(write(tmp_path, "k" * 500 + ": 1\n"), {}, check_paths=False)
    with pytest.raises(ConfigError, match="'perf_throughput' is a metric: put it under 'constraints:'"):
        load_profile_config(write(tmp_path, "profile_models: a\nperf_throughput: 5\n"), {}, check_paths=False)
    with pytest.raises(ConfigError, match="is a per-model key: put it under a model in 'profile_models:'"):
        load_profile_config(write(tmp_path, "profile_models: a\nmodel_config_parameters: {max_batch_size: 4}\n"), {},
                            check_paths=False)


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


def test_profile_models_flag_overrides_yaml(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, {"profile_models": "a", "concurrency": [2]})
    with caplog.at_level(logging.DEBUG, logger="modelyzer"):
        config = load_profile_config(path, {"profile_models": "b", "concurrency": "4"}, check_paths=False)
    assert config.profile_models == ("b",) and config.concurrency == [4]
    said = [r.getMessage() for r in caplog.records]
    assert "--profile-models overrides profile_models of the config file" in said
    assert "--concurrency overrides concurrency of the config file" in said


def test_profile_models_flag_keeps_the_files_per_model_settings(tmp_path: Path) -> None:
    path = write(tmp_path, {"profile_models": {"a": {"parameters": {"concurrency": [3]}},
                                               "b": {"model_config_parameters": {"max_batch_size": [2, 4]}}}})
    config = load_profile_config(path, {"profile_models": "b,c"}, check_paths=False)
    assert config.profile_models == ("b", "c")
    assert config.model("b").model_config_parameters == {"max_batch_size": [2, 4]}
    assert config.model("c").model_config_parameters == {}


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


