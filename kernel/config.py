"""The profile config: `ProfileConfig` (one attribute per Model Analyzer key) and how it is loaded.

`load_profile_config()` resolves defaults < YAML file < CLI flags, parses every value with the field table
(`kernel/config_fields.py`), applies Model Analyzer's cross-option rules (`kernel/config_rules.py`), and
resolves one `ModelSpec` per profiled model (global objectives, constraints, flags and load parameters
inherited when the model has none; `latency_budget`/`min_throughput` merged into every model). Every problem
is a one-line `ConfigError` naming the key (dotted for nested keys) and where it came from; nothing else
escapes the loader.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import yaml

from modelyzer.kernel import config_checks as checks
from modelyzer.kernel import config_rules as rules
from modelyzer.kernel import metrics
from modelyzer.kernel.config_fields import FIELDS, PER_MODEL_KEYS
from modelyzer.kernel.config_models import chosen_models, resolve_model, shorthands
from modelyzer.kernel.config_settings import plugin_fields
from modelyzer.kernel.config_settings import view as settings_view
from modelyzer.kernel.config_values import (
    Where,
    did_you_mean,
    one_line,
    parse_model_entries,
    parse_path,
    show,
)
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.models import (
    DEFAULT_OBJECTIVES,
    LLM_OBJECTIVES,
    Constraint,
    ModelSpec,
    Objective,
    converter,
)

log = logging.getLogger(__name__)

EXTRA_ATTRIBUTES = ("models", "user_set", "warnings", "plugin_settings")
T = TypeVar("T")


def _d(name: str) -> Any:
    return attrs.field(factory=FIELDS[name].default_value)


@attrs.frozen(kw_only=True)
class ProfileConfig:
    """The resolved config of one profile (or report): attribute names are Model Analyzer's YAML keys.

    Beyond the MA keys: `models` are the resolved per-model specs of `profile_models` (which holds only the
    names), `user_set` the keys the user set in YAML or on the CLI, `warnings` what the loader wants the
    user to know (ignored options). The composing-model keys hold resolved `ModelSpec`s too.
    """

    config_file: Path | None = _d("config_file")
    checkpoint_directory: Path = _d("checkpoint_directory")
    export_path: Path = _d("export_path")
    results_db: Path = attrs.field()
    retry_failed: bool = _d("retry_failed")
    confirm_top: int = _d("confirm_top")
    model_type: str = _d("model_type")
    monitoring_interval: float = _d("monitoring_interval")
    duration_seconds: int = _d("duration_seconds")
    collect_cpu_metrics: bool = _d("collect_cpu_metrics")
    gpus: list[str] = _d("gpus")
    always_report_gpu_metrics: bool = _d("always_report_gpu_metrics")
    dcgm_disable: bool = _d("dcgm_disable")
    model_repository: Path | None = _d("model_repository")
    profile_models: tuple[str, ...] = ()
    bls_composing_models: tuple[ModelSpec, ...] = ()
    ensemble_composing_models: tuple[ModelSpec, ...] = ()
    cpu_only_composing_models: list[str] = _d("cpu_only_composing_models")
    output_model_repository_path: Path = _d("output_model_repository_path")
    override_output_model_repository: bool = _d("override_output_model_repository")
    reload_model_disable: bool = _d("reload_model_disable")
    batch_sizes: list[int] = _d("batch_sizes")
    concurrency: list[int] = _d("concurrency")
    request_rate: list[int] = _d("request_rate")
    latency_budget: float | None = _d("latency_budget")
    min_throughput: float | None = _d("min_throughput")
    objectives: tuple[Objective, ...] = DEFAULT_OBJECTIVES
    constraints: tuple[Constraint, ...] = ()
    weighting: float = _d("weighting")
    num_configs_per_model: int = _d("num_configs_per_model")
    num_top_model_configs: int = _d("num_top_model_configs")
    ranker: str = _d("ranker")
    run_config_search_mode: str = _d("run_config_search_mode")
    run_config_search_disable: bool = _d("run_config_search_disable")
    run_config_search_min_concurrency: int = _d("run_config_search_min_concurrency")
    run_config_search_max_concurrency: int = _d("run_config_search_max_concurrency")
    run_config_search_min_request_rate: int = _d("run_config_search_min_request_rate")
    run_config_search_max_request_rate: int = _d("run_config_search_max_request_rate")
    run_config_search_min_instance_count: int = _d("run_config_search_min_instance_count")
    run_config_search_max_instance_count: int = _d("run_config_search_max_instance_count")
    run_config_search_min_model_batch_size: int = _d("run_config_search_min_model_batch_size")
    run_config_search_max_model_batch_size: int = _d("run_config_search_max_model_batch_size")
    run_config_search_max_binary_search_steps: int = _d("run_config_search_max_binary_search_steps")
    run_config_profile_models_concurrently_enable: bool = _d("run_config_profile_models_concurrently_enable")
    request_rate_search_enable: bool = _d("request_rate_search_enable")
    concurrency_sweep_disable: bool = _d("concurrency_sweep_disable")
    early_exit_enable: bool = _d("early_exit_enable")
    use_concurrency_formula: bool = _d("use_concurrency_formula")
    min_percentage_of_search_space: int = _d("min_percentage_of_search_space")
    max_percentage_of_search_space: int = _d("max_percentage_of_search_space")
    optuna_min_trials: int = _d("optuna_min_trials")
    optuna_max_trials: int = _d("optuna_max_trials")
    optuna_early_exit_threshold: int = _d("optuna_early_exit_threshold")
    optuna_seed: int | None = _d("optuna_seed")
    triton_launch_mode: str = _d("triton_launch_mode")
    load_generator: str | None = _d("load_generator")
    replay_results_db: Path | None = _d("replay_results_db")
    replay_duration: float = _d("replay_duration")
    triton_docker_image: str = _d("triton_docker_image")
    triton_http_endpoint: str = _d("triton_http_endpoint")
    triton_grpc_endpoint: str = _d("triton_grpc_endpoint")
    triton_metrics_url: str = _d("triton_metrics_url")
    triton_server_path: str = _d("triton_server_path")
    triton_output_path: Path | None = _d("triton_output_path")
    triton_install_path: Path = _d("triton_install_path")
    triton_docker_mounts: list[str] = _d("triton_docker_mounts")
    triton_docker_shm_size: str | None = _d("triton_docker_shm_size")
    triton_docker_labels: dict[str, str] = _d("triton_docker_labels")
    triton_docker_args: dict[str, Any] = _d("triton_docker_args")
    triton_server_flags: dict[str, Any] = _d("triton_server_flags")
    triton_server_environment: dict[str, str] = _d("triton_server_environment")
    client_protocol: str = _d("client_protocol")
    client_max_retries: int = _d("client_max_retries")
    perf_analyzer_path: str = _d("perf_analyzer_path")
    perf_analyzer_timeout: int = _d("perf_analyzer_timeout")
    perf_analyzer_cpu_util: float = _d("perf_analyzer_cpu_util")
    perf_analyzer_max_auto_adjusts: int = _d("perf_analyzer_max_auto_adjusts")
    measurement_precision: float = _d("measurement_precision")
    measurement_max_seconds: float = _d("measurement_max_seconds")
    perf_output: bool = _d("perf_output")
    perf_output_path: Path | None = _d("perf_output_path")
    perf_analyzer_flags: dict[str, Any] = _d("perf_analyzer_flags")
    genai_perf_flags: dict[str, Any] = _d("genai_perf_flags")
    skip_summary_reports: bool = _d("skip_summary_reports")
    skip_detailed_reports: bool = _d("skip_detailed_reports")
    filename_model_inference: str = _d("filename_model_inference")
    filename_model_gpu: str = _d("filename_model_gpu")
    filename_server_only: str = _d("filename_server_only")
    inference_output_fields: list[str] = _d("inference_output_fields")
    gpu_output_fields: list[str] = _d("gpu_output_fields")
    server_output_fields: list[str] = _d("server_output_fields")
    report_model_configs: Any = _d("report_model_configs")
    plots: Any = _d("plots")
    output_formats: list[str] = _d("output_formats")
    executor: str = _d("executor")
    agents: str | None = _d("agents")
    min_agents: int = _d("min_agents")
    agent_keys: Path | None = _d("agent_keys")
    insecure: bool = _d("insecure")
    # beyond Model Analyzer's keys
    models: tuple[ModelSpec, ...] = ()
    user_set: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()
    plugin_settings: dict[str, Any] = attrs.field(factory=dict)  # plugin-declared keys → values

    @results_db.default
    def _results_db_default(self) -> Path:
        return self.export_path / "results.db"

    @property
    def request_rate_mode(self) -> bool:
        """True when load is given or searched as a request rate instead of a concurrency."""
        return bool(
            self.request_rate_search_enable
            or any(m.request_rate for m in self.models)
            or {"run_config_search_min_request_rate", "run_config_search_max_request_rate"} & self.user_set
        )

    def model(self, name: str) -> ModelSpec:
        for spec in self.models:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def settings(self, cls: type[T]) -> T:
        """The typed view of a plugin's own keys (its registered settings class; see `config_settings`)."""
        return settings_view(cls, self.plugin_settings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every key (plugins' too), the resolved models, `user_set` and `warnings`."""
        out: dict[str, Any] = {name: _jsonable(getattr(self, name)) for name in FIELDS}
        out.update({name: _jsonable(value) for name, value in self.plugin_settings.items()})
        out["models"] = _jsonable(self.models)
        out["user_set"] = sorted(self.user_set)
        out["warnings"] = list(self.warnings)
        return out


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return _jsonable(converter.unstructure(value))
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# ---- loading ----------------------------------------------------------------------------------------


#: a config file is a few kB; anything this large is not one (and `-f /dev/zero` must not read until memory ends)
MAX_CONFIG_BYTES = 1 << 20


def short_key(key: str) -> str:
    """A key as error messages show it: at most 60 characters."""
    return key if len(key) <= 60 else key[:57] + "..."


def misplaced(key: str) -> str:
    """The hint for a top-level key that belongs one level down: a metric (under `objectives:`/`constraints:`) or a
    per-model key (under a model in `profile_models:`); "" otherwise."""
    if metrics.is_known(key):
        return (f"; {key!r} is a metric: put it under 'constraints:' (e.g. constraints: {{{key}: {{max: …}}}}) or "
                "'objectives:'")
    if key in PER_MODEL_KEYS:
        return f"; {key!r} is a per-model key: put it under a model in 'profile_models:' (profile_models: {{m: {{{key}: …}}}})"
    return ""


def read_config_file(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file; ConfigError naming the file (and line) otherwise."""
    where = Where(f"config file {short_key(str(path))}")
    try:
        if path.exists() and not path.is_file():
            where.fail("is not a regular file (a directory, FIFO or device); give the YAML file's path to -f")
        if path.is_file() and path.stat().st_size > MAX_CONFIG_BYTES:
            where.fail(f"is larger than {MAX_CONFIG_BYTES >> 20} MiB: not a config file; check the path given to -f")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where.fail("does not exist; check the path given to -f/--config-file")
    except UnicodeDecodeError:
        where.fail("is not UTF-8 text")
    except (OSError, ValueError) as err:
        where.fail(f"cannot be read ({getattr(err, 'strerror', None) or err})")
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        line = f" line {err.problem_mark.line + 1}" if err.problem_mark else ""
        raise ConfigError(one_line(f"{path}:{line}: YAML syntax error: {err.problem or err.context}; fix the "
                                   "file (keys and values are 'key: value', lists '- item')")) from None
    except yaml.YAMLError as err:
        where.fail(f"is not valid YAML ({err})")
    except RecursionError:
        where.fail("is nested too deeply")
    except (ValueError, OverflowError, AttributeError, TypeError) as err:  # a YAML constructor on a bad value:
        # !!int "abc", 2024-13-45, a 5000-digit integer, !!timestamp "x" (PyYAML raises AttributeError there)
        where.fail(f"has a value YAML cannot construct ({one_line(str(err))[:100]}); quote it to make it a string, "
                   "or fix it")
    if data is None:
        return {}
    if not isinstance(data, dict):
        where.fail(f"must be a mapping of keys to values (e.g. 'profile_models: my_model'), got a {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            where.fail(f"keys must be strings, got {show(key)}")
    return data


def load_profile_config(config_file: str | Path | None, cli: Mapping[str, Any], *, check_paths: bool = True,
                        command: str = "profile") -> ProfileConfig:
    """Load defaults < YAML (`config_file`) < CLI (`cli`: field name → raw value, only user-set ones).

    `cli` may carry `config_file` itself (as `-f` delivers it). `check_paths=False` skips every filesystem
    check (model repository, model directories); `command="report"` requires `report_model_configs`
    instead of `profile_models`.
    """
    overrides = {k: v for k, v in cli.items() if v is not None}
    cli_file = overrides.pop("config_file", None)
    chosen = config_file if config_file is not None else cli_file
    path = parse_path(chosen, Where("config_file", " (from --config-file)")) if chosen is not None else None
    values = read_config_file(path) if path is not None else {}
    return config_from_dict(values, overrides, check_paths=check_paths, command=command, config_file=path)


def config_from_dict(values: Mapping[str, Any], cli: Mapping[str, Any] | None = None, *, check_paths: bool = True,
                     command: str = "profile", config_file: Path | None = None) -> ProfileConfig:
    """Like `load_profile_config` with the YAML already read (handy in tests and for stored configs)."""
    try:
        return _Loader(values, dict(cli or {}), check_paths, command, config_file).load()
    except RecursionError:
        raise ConfigError("config: values are nested too deeply") from None


class _Loader:
    def __init__(self, values: Mapping[str, Any], cli: dict[str, Any], check_paths: bool, command: str,
                 config_file: Path | None) -> None:
        self.check_paths = check_paths
        self.command = command
        self.config_file = config_file
        self.where: dict[str, Where] = {}
        self.raw: dict[str, Any] = {}
        self.plugin_fields = plugin_fields()
        self.fields = {**FIELDS, **self.plugin_fields}
        self.warnings: list[str] = []
        self.overridden: list[str] = []
        yaml_source = f" (in {config_file})" if config_file else ""
        for key, value in values.items():
            if not isinstance(key, str):
                Where("config", yaml_source).fail(f"keys must be strings, got {show(key)}")
            if key not in self.fields:
                Where(short_key(key), yaml_source).fail(f"unknown key{misplaced(key) or did_you_mean(key, self.fields)}")
            if value is not None:
                self.raw[key], self.where[key] = value, Where(key, yaml_source)
        for key, value in cli.items():
            field = self.fields.get(key)
            if field is None:
                Where(short_key(str(key)), " (from the command line)").fail(
                    f"unknown option{did_you_mean(key, self.fields)}")
            if value is None:
                continue
            if field.yaml_only:
                Where(key, f" (from {field.flag})").fail("can only be set in the YAML config file")
            if key in self.raw:  # flags override the YAML file, every key alike
                self.overridden.append(f"{field.flag} overrides {key} of the config file")
                if key == "profile_models":
                    value = chosen_models(value, self.raw[key], Where(key, f" (from {field.flag})"),
                                           self.where[key])
            self.raw[key], self.where[key] = value, Where(key, f" (from {field.flag})")
        self.v: dict[str, Any] = {}
        self.user_set: frozenset[str] = frozenset()

    def w(self, name: str) -> Where:
        return self.where.get(name, Where(name))

    def load(self) -> ProfileConfig:
        if "weighting" in self.raw:
            self.w("weighting").fail("can only be set per model (profile_models.<name>.weighting)")
        parsed = {name: self.fields[name].parse(value, self.where[name]) for name, value in self.raw.items()}
        self.user_set = frozenset(parsed)
        v = self.v
        for name, field in FIELDS.items():
            v[name] = parsed[name] if name in parsed else field.default_value()
        if self.config_file is not None:
            v["config_file"] = self.config_file
        if v["results_db"] is None:
            v["results_db"] = v["export_path"] / "results.db"
        if v["objectives"] is None:
            v["objectives"] = LLM_OBJECTIVES if str(v["model_type"]).lower() == "llm" else DEFAULT_OBJECTIVES
        v["constraints"] = shorthands(v["constraints"] or (), v["latency_budget"], v["min_throughput"])
        self.warnings += rules.check_globals(v, self.user_set, self.w)
        if v["run_config_search_disable"] and not v["concurrency"] and not v["request_rate"]:
            v["concurrency"] = [1]
        entries = {key: parse_model_entries(self.raw.get(key), self.w(key)) for key in
                   ("profile_models", "bls_composing_models", "ensemble_composing_models")}
        if self.command == "profile" and not entries["profile_models"]:
            self.w("profile_models").fail("is required; name the models to profile with --profile-models "
                                          "or profile_models in the YAML file")
        if self.command == "report" and not v["report_model_configs"]:
            self.w("report_model_configs").fail("is required; name the model configs with -n/--report-model-configs")
        if entries["bls_composing_models"]:
            rules.check_bls(v, self.user_set, self.w, len(entries["profile_models"]))
        specs = {key: tuple(self._resolve(name, settings, where) for name, settings, where in items)
                 for key, items in entries.items()}
        if v["run_config_search_mode"] == "quick":
            exempt = set(v["cpu_only_composing_models"]) | {
                name for key in ("bls_composing_models", "ensemble_composing_models") for name, _, _ in entries[key]}
            rules.check_quick([e for e in entries["profile_models"] if e[0] not in exempt], specs["profile_models"])
        rules.check_mixed_load(specs["profile_models"], self.w)
        if self.check_paths and self.command == "profile":
            rules.check_paths(v, self.w, [s.name for s in specs["profile_models"]],
                              [s.name for s in specs["bls_composing_models"]])
        checks.check_model_parameters(
            (spec.model_config_parameters, Path(spec.model_path) if v["model_repository"] is not None else None,
             where) for key in specs for spec, (_, _, where) in zip(specs[key], entries[key], strict=True))
        checks.check_loaded(v, self.user_set, self.w)
        rules.default_output_fields(v, self.user_set, specs["profile_models"])
        v["profile_models"] = tuple(s.name for s in specs["profile_models"])
        v["bls_composing_models"] = specs["bls_composing_models"]
        v["ensemble_composing_models"] = specs["ensemble_composing_models"]
        if self.warnings:  # one line, however many options are ignored
            log.warning("; ".join(self.warnings))
        for message in self.overridden:  # said for the model list (it changes what is profiled), else on -v
            log.log(logging.INFO if message.startswith("--profile-models ") else logging.DEBUG, message)
        plugin_values = {name: parsed[name] if name in parsed else field.default_value()
                         for name, field in self.plugin_fields.items()}
        return ProfileConfig(**v, models=specs["profile_models"], user_set=self.user_set,
                             warnings=tuple(self.warnings), plugin_settings=plugin_values)

    def _resolve(self, name: str, settings: dict[str, Any], where: Where) -> ModelSpec:
        return resolve_model(self.v, self.user_set, name, settings, where)


__all__ = ["ProfileConfig", "config_from_dict", "load_profile_config", "read_config_file"]
