"""Malformed configs thrown at the loader: it returns a ProfileConfig or raises ConfigError, nothing else."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyzer.kernel.config import ProfileConfig, config_from_dict, load_profile_config
from modelyzer.kernel.config_fields import FIELDS, PARAMETER_KEYS, PER_MODEL_KEYS
from modelyzer.kernel.errors import ConfigError

KNOWN_WORDS = [*FIELDS, *PER_MODEL_KEYS, *PARAMETER_KEYS, "start", "stop", "step", "min", "max", "add_sub",
               "perf_throughput", "perf_latency_p99", "gpu_used_memory", "concurrency-range", "shape", "log_verbose",
               "max_batch_size", "instance_group", "mem_limit", "all", "remote", "quick", "optuna", "LLM"]

keys = st.sampled_from(KNOWN_WORDS) | st.text(max_size=12)
scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(10**6), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=16) | st.sampled_from(KNOWN_WORDS)
    | st.sampled_from(["1,2,4", "0", "-1", "abc", "1e3", ".inf", "true", "no", "", " ", "a/b", "..", "1:2"])
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(keys | st.integers(-3, 3), children, max_size=4),
    max_leaves=16,
)
configs = st.dictionaries(keys, values, max_size=8)
plausible = (
    st.integers(min_value=0, max_value=300) | st.booleans() | st.sampled_from(["1,2", "4", "grpc", "local", "quick"])
    | st.lists(st.integers(min_value=0, max_value=64), max_size=3)
    | st.fixed_dictionaries({"start": st.integers(0, 9), "stop": st.integers(0, 20)})
    | st.dictionaries(st.sampled_from(["perf_throughput", "perf_latency_p99", "max", "min", "percentile"]),
                      st.integers(0, 100) | st.dictionaries(st.sampled_from(["min", "max"]), st.integers(0, 9)))
)
known_key_configs = st.dictionaries(st.sampled_from(list(FIELDS)), plausible | values, max_size=6)
model_settings = st.dictionaries(st.sampled_from([*PER_MODEL_KEYS, "paramters", "x"]), values, max_size=4)
profile_models = (
    values
    | st.dictionaries(st.sampled_from(["add_sub", "mul", "a b", ""]), st.none() | model_settings, max_size=3)
    | st.lists(st.sampled_from(["add_sub", "mul"]) | st.dictionaries(st.just("add_sub"), model_settings), max_size=3)
)
cli_values = st.dictionaries(st.sampled_from([n for n, f in FIELDS.items() if f.cli]),
                             st.text(max_size=12) | st.booleans() | st.none(), max_size=6)

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow])


def check(call: Any) -> None:
    try:
        config = call()
    except ConfigError as err:
        message = str(err)
        assert message and "\n" not in message and "\r" not in message
        assert err.exit_code == 2
        return
    assert isinstance(config, ProfileConfig)
    json.dumps(config.to_dict())


@FUZZ
@given(configs)
def test_random_top_level_configs(data: dict[str, Any]) -> None:
    check(lambda: config_from_dict(data, check_paths=False))


@FUZZ
@given(configs, profile_models, st.booleans())
def test_random_configs_with_models(data: dict[str, Any], models: Any, check_paths: bool) -> None:
    data = {**data, "profile_models": models, "model_repository": "/nonexistent/modelyzer-fuzz"}
    check(lambda: config_from_dict(data, check_paths=check_paths))


@FUZZ
@given(known_key_configs, profile_models)
def test_known_keys_with_random_values(data: dict[str, Any], models: Any) -> None:
    check(lambda: config_from_dict({**data, "profile_models": models}, check_paths=False))


@FUZZ
@given(configs, cli_values)
def test_random_cli_values(data: dict[str, Any], cli: dict[str, Any]) -> None:
    check(lambda: config_from_dict({"profile_models": "m", **data}, cli, check_paths=False))


@FUZZ
@given(st.text(max_size=200) | configs.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
       st.integers(min_value=0, max_value=50), st.sampled_from(["", ":", "-", "[", "{", "&a", "*a", "\t", "!!set"]))
def test_random_yaml_text(text: str, cut: int, noise: str) -> None:
    mutated = text[:cut] + noise + text[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(mutated, encoding="utf-8")
        check(lambda: load_profile_config(path, {}, check_paths=False))


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(st.sampled_from([
    "a: &a [*a]\nprofile_models: m\nconcurrency: *a\n",
    "profile_models: &m {x: {model_config_parameters: {y: *m}}}\n",
    "profile_models: m\nplots: &p {a: [*p]}\n",
    "profile_models: m\nobjectives: !!set {perf_throughput}\n",
    "profile_models: m\nconstraints: {perf_throughput: !!binary aGk=}\n",
    "profile_models: m\nmodel_repository: 2024-01-01\n",
    "profile_models: " + "[" * 2000 + "]" * 2000 + "\n",
    "? [a]\n: 1\n",
    "profile_models: {1: null}\n",
]))
def test_hostile_yaml(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        check(lambda: load_profile_config(path, {}, check_paths=False))
