"""Per-model resolution of the config: each profiled model's `ModelSpec` from its own settings and the globals.

A model without a key inherits the global value (objectives, constraints, flags, load parameters);
`latency_budget` / `min_throughput` are merged into every model's constraints (`shorthands`). Errors name the
dotted key (`profile_models.<name>.<key>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyzer.kernel.config_fields import PARAMETER_KEYS, PER_MODEL_KEYS
from modelyzer.kernel.config_values import (
    Where,
    check_tree,
    did_you_mean,
    parse_bool,
    parse_constraints,
    parse_float,
    parse_int_list,
    parse_mapping,
    parse_model_entries,
    parse_objectives,
)
from modelyzer.kernel.config_whitelists import parse_dict_field
from modelyzer.kernel.models import Constraint, ModelSpec

FLAG_DICTS = ("perf_analyzer_flags", "genai_perf_flags", "triton_server_flags", "triton_server_environment",
              "triton_docker_args")


def resolve_model(v: dict[str, Any], user_set: frozenset[str], name: str, settings: dict[str, Any],
                  where: Where) -> ModelSpec:
    """One model's `ModelSpec`: its own settings, else the global values in `v` (the parsed global keys)."""
    for key in settings:
        if key not in PER_MODEL_KEYS:
            where.child(key).fail(f"unknown per-model key{did_you_mean(key, PER_MODEL_KEYS)}")
    own = {k: val for k, val in settings.items() if val is not None}
    at = where.child
    params = parse_mapping(own.get("parameters"), at("parameters"))
    for key in params:
        if key not in PARAMETER_KEYS:
            at("parameters").child(key).fail(f"unknown parameter{did_you_mean(key, PARAMETER_KEYS)}; "
                                             "use batch_sizes, concurrency or request_rate")
    load = {key: parse_int_list(params[key], at("parameters").child(key), 1)
            for key in PARAMETER_KEYS if params.get(key) is not None}
    if load.get("concurrency") and load.get("request_rate"):
        at("parameters").fail("cannot set both concurrency and request_rate; keep one")
    if "batch_sizes" not in load:
        optuna_default = v["run_config_search_mode"] == "optuna" and "batch_sizes" not in user_set
        load["batch_sizes"] = [] if optuna_default else v["batch_sizes"]
    if "concurrency" not in load and "request_rate" not in load:
        load["concurrency"], load["request_rate"] = v["concurrency"], v["request_rate"]
    objectives = parse_objectives(own["objectives"], at("objectives")) if "objectives" in own else v["objectives"]
    constraints = (parse_constraints(own["constraints"], at("constraints")) if "constraints" in own
                   else v["constraints"])
    flags: dict[str, Any] = {key: parse_dict_field(key, own[key], at(key)) if key in own else v[key] for key in FLAG_DICTS}
    cpu_only = parse_bool(own["cpu_only"], at("cpu_only")) if "cpu_only" in own else False
    cpu_only = cpu_only or name in v["cpu_only_composing_models"] or (
        v["gpus"] == [] and v["triton_launch_mode"] != "remote")
    repo: Path | None = v["model_repository"]
    return ModelSpec(
        name=name,
        model_path=str(repo / name) if repo is not None else name,
        cpu_only=cpu_only,
        batch_sizes=tuple(load["batch_sizes"]),
        concurrency=tuple(load.get("concurrency", ())),
        request_rate=tuple(load.get("request_rate", ())),
        model_config_parameters=check_tree(parse_mapping(own.get("model_config_parameters"),
                                                         at("model_config_parameters")),
                                           at("model_config_parameters")),
        objectives=objectives,
        constraints=shorthands(constraints, v["latency_budget"], v["min_throughput"]),
        weighting=parse_float(own["weighting"], at("weighting"), 0, exclusive_min=True)
        if "weighting" in own else 1.0,
        **flags,
    )


def chosen_models(cli: Any, yaml_value: Any, cli_where: Where, yaml_where: Where) -> Any:
    """`--profile-models` over YAML `profile_models`: the flag's models, each with its per-model settings from the
    file when the file has them (so `-f c.yaml --profile-models a` profiles `a` as the file describes it)."""
    chosen = parse_model_entries(cli, cli_where)
    settings = {name: own for name, own, _ in parse_model_entries(yaml_value, yaml_where)}
    if not any(settings.get(name) for name, _, _ in chosen):
        return cli
    return {name: settings.get(name) or None for name, _, _ in chosen}


def shorthands(constraints: tuple[Constraint, ...], latency_budget: float | None,
               min_throughput: float | None) -> tuple[Constraint, ...]:
    """Merge `latency_budget` (→ perf_latency_p99 max, replacing perf_latency) and `min_throughput`."""
    out = list(constraints)
    if latency_budget is not None:
        out = [c for c in out if c.tag not in ("perf_latency", "perf_latency_p99")]
        out.append(Constraint("perf_latency_p99", max=latency_budget))
    if min_throughput is not None:
        out = [c for c in out if c.tag != "perf_throughput"]
        out.append(Constraint("perf_throughput", min=min_throughput))
    return tuple(out)
