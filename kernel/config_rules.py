"""Model Analyzer's cross-option rules (MA facts §2.4): checks and defaults that involve more than one key.

This module owns the rules the loader (`kernel/config.py`) applies once every key is parsed: min/max pairs,
what `run_config_search_mode` quick or brute forbids, concurrency versus request rate, launch-mode-only
options (errors, or warnings when an option is merely ignored), BLS limits, filesystem checks, and the
output-field defaults that depend on the load mode and `model_type`. Each rule gets the parsed values `v`
(field name → value), the keys the user set, and `w`, which gives the `Where` of a key so errors name it and
its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelyzer.kernel.config_fields import LLM_FIELDS
from modelyzer.kernel.config_values import Where, show
from modelyzer.kernel.models import ModelSpec

MIN_MAX_PAIRS: tuple[tuple[str, str], ...] = (
    ("run_config_search_min_concurrency", "run_config_search_max_concurrency"),
    ("run_config_search_min_request_rate", "run_config_search_max_request_rate"),
    ("run_config_search_min_instance_count", "run_config_search_max_instance_count"),
    ("run_config_search_min_model_batch_size", "run_config_search_max_model_batch_size"),
    ("min_percentage_of_search_space", "max_percentage_of_search_space"),
    ("optuna_min_trials", "optuna_max_trials"),
)
REQUEST_RATE_OPTIONS = ("request_rate", "request_rate_search_enable", "run_config_search_min_request_rate",
                        "run_config_search_max_request_rate")
DOCKER_ONLY = ("triton_docker_args", "triton_docker_labels", "triton_docker_mounts", "triton_docker_shm_size")
TRITON_LAUNCHERS_WITH_PBTXT = ("local", "docker", "c_api")

Values = dict[str, Any]
WhereOf = Callable[[str], Where]
ModelEntry = tuple[str, dict[str, Any], Where]


def check_globals(v: Values, user_set: frozenset[str], w: WhereOf) -> list[str]:
    """The rules between global keys; returns the warnings about options the launch mode ignores."""
    warnings: list[str] = []
    for lo, hi in MIN_MAX_PAIRS:
        if v[lo] > v[hi] and lo in user_set:
            w(lo).fail(f"is {v[lo]}, greater than {hi} ({v[hi]}); lower it or raise {hi}")
        if v[lo] > v[hi]:
            w(hi).fail(f"is {v[hi]}, less than {lo} ({v[lo]}); raise it or lower {lo}")
    mode, launch = v["run_config_search_mode"], v["triton_launch_mode"]
    explicit_brute = mode == "brute" and "run_config_search_mode" in user_set
    if explicit_brute and v["run_config_profile_models_concurrently_enable"]:
        w("run_config_search_mode").fail(
            "brute cannot profile models concurrently (run_config_profile_models_concurrently_enable); "
            "use quick or drop one of the two")
    if mode == "quick":
        if v["run_config_search_disable"]:
            w("run_config_search_disable").fail("cannot be used with run_config_search_mode quick")
        for key in ("concurrency", "batch_sizes"):
            if key in user_set:
                w(key).fail("cannot be set with run_config_search_mode quick (quick search chooses it); "
                            "remove it or use brute")
    rate_opts = [k for k in REQUEST_RATE_OPTIONS if k in user_set and v[k]]
    if rate_opts:
        for key in ("concurrency", "run_config_search_min_concurrency", "run_config_search_max_concurrency"):
            if key in user_set and v[key]:
                w(key).fail(f"conflicts with {rate_opts[0]}; profile by concurrency or by request rate, not both")
    if v["dcgm_disable"] and launch != "remote":
        w("dcgm_disable").fail(f"requires triton_launch_mode remote (it is {launch})")
    if launch == "docker" and not v["triton_docker_image"].strip():
        w("triton_docker_image").fail("must not be empty in docker launch mode")
    if v["agents"] and "executor" not in user_set:
        v["executor"] = "agents"  # `--agents URL` is the distributed executor's address
    if v["num_top_model_configs"] > 0 and not v["constraints"]:
        w("num_top_model_configs").fail(
            "needs global constraints (constraints, latency_budget or min_throughput) to rank across models")
    for mount in v["triton_docker_mounts"]:
        if mount.count(":") != 2:
            w("triton_docker_mounts").fail(f"each mount must be host:container:mode, got {show(mount)}")
    if launch == "c_api":
        for key in ("triton_server_flags", "triton_output_path"):
            if key in user_set:
                warnings.append(f"{key} is ignored in c_api launch mode")
    if launch != "docker":
        for key in DOCKER_ONLY:
            if key in user_set:
                warnings.append(f"{key} is ignored unless triton_launch_mode is docker")
    return warnings


def check_bls(v: Values, user_set: frozenset[str], w: WhereOf, profile_count: int) -> None:
    """A BLS model is profiled alone, not concurrently, and not by brute search."""
    if v["run_config_search_mode"] == "brute" and "run_config_search_mode" in user_set:
        w("run_config_search_mode").fail("brute cannot search BLS models (bls_composing_models); use quick")
    if profile_count > 1:
        w("bls_composing_models").fail("needs exactly one model in profile_models")
    if v["run_config_profile_models_concurrently_enable"]:
        w("bls_composing_models").fail("cannot be combined with run_config_profile_models_concurrently_enable")


def check_quick(entries: list[ModelEntry], specs: tuple[ModelSpec, ...]) -> None:
    """Quick search chooses load and config itself: no per-model concurrency, no config sweeps."""
    resolved = {spec.name: spec for spec in specs}
    for name, settings, where in entries:
        params = settings.get("parameters")
        if isinstance(params, Mapping) and params.get("concurrency") is not None:
            where.child("parameters").child("concurrency").fail("cannot be set with run_config_search_mode quick")
        mcp = resolved[name].model_config_parameters
        at = where.child("model_config_parameters")
        if isinstance(mcp.get("max_batch_size"), list):
            at.child("max_batch_size").fail("cannot be a list with run_config_search_mode quick")
        if "instance_group" in mcp:
            at.child("instance_group").fail("cannot be set with run_config_search_mode quick")
        if combinations(mcp) > 1:
            at.fail("must describe a single config with run_config_search_mode quick (no lists to sweep)")


def check_mixed_load(specs: tuple[ModelSpec, ...], w: WhereOf) -> None:
    """All profiled models are loaded by concurrency, or all by request rate."""
    by_rate = [s.name for s in specs if s.request_rate]
    by_conc = [s.name for s in specs if s.concurrency]
    if by_rate and by_conc:
        w("profile_models").fail(
            f"cannot mix models profiled by request_rate ({by_rate[0]}) and by concurrency ({by_conc[0]})")


def check_paths(v: Values, w: WhereOf, names: list[str], composing: Sequence[str] = ()) -> None:
    """The model repository and each model's directory exist (unless remote), the profiled ones (`names`) and the
    composing ones a BLS model calls (`composing`, named under bls_composing_models); output paths are usable."""
    launch = v["triton_launch_mode"]
    repo: Path | None = v["model_repository"]
    if launch != "remote":
        if repo is None:
            w("model_repository").fail("is required unless triton_launch_mode is remote; pass -m/--model-repository")
        if not repo.is_dir():
            w("model_repository").fail(f"directory {repo} does not exist; pass an existing model "
                                       "repository with -m/--model-repository")
        for key, models in (("profile_models", names), ("bls_composing_models", composing)):
            for name in models:
                model_dir = repo / name
                if not model_dir.is_dir():
                    w(key).fail(f"model {name!r} has no directory {model_dir}; check the name or model_repository")
                if launch in TRITON_LAUNCHERS_WITH_PBTXT and not (model_dir / "config.pbtxt").is_file():
                    w(key).fail(f"model {name!r} has no config.pbtxt in {model_dir}; add one")
    for key in ("export_path", "results_db"):
        if v[key].exists() and (v[key].is_dir() != (key == "export_path")):
            w(key).fail(f"{v[key]} is a {'file' if key == 'export_path' else 'directory'}")
    parent = v["checkpoint_directory"].parent
    if not parent.is_dir():
        w("checkpoint_directory").fail(f"parent directory {parent} does not exist")


def default_output_fields(v: Values, user_set: frozenset[str], specs: tuple[ModelSpec, ...]) -> None:
    """Unless set by the user: request_rate replaces concurrency in request-rate mode; LLM adds LLM metrics."""
    rate_mode = v["request_rate_search_enable"] or any(s.request_rate for s in specs) or bool(
        {"run_config_search_min_request_rate", "run_config_search_max_request_rate"} & user_set)
    for key in ("inference_output_fields", "gpu_output_fields"):
        if key in user_set:
            continue
        if rate_mode:
            v[key] = ["request_rate" if f == "concurrency" else f for f in v[key]]
        if key == "inference_output_fields" and v["model_type"] == "LLM":
            v[key] = v[key] + LLM_FIELDS


def combinations(tree: Any) -> int:
    """How many configs a model_config_parameters tree sweeps: lists of scalars/lists are sweeps."""
    if isinstance(tree, Mapping):
        total = 1
        for value in tree.values():
            total *= combinations(value)
        return total
    if isinstance(tree, list):
        if all(isinstance(item, Mapping) for item in tree):
            total = 1
            for item in tree:
                total *= combinations(item)
            return total
        return max(len(tree), 1)
    return 1
