"""The config field table: every key modelyzer accepts, with its type, default, CLI flag and help text.

`FIELDS` is the single source of truth for the YAML keys (Model Analyzer's `profile` and `report` keys plus
modelyzer's own), the click options (`frontends/cli/options.py` generates them from here) and the config
reference (`kernel/config_reference.py` writes docs/config.md). `Field.parse` picks the value parser of a key's
kind; the parsers themselves live in `kernel/config_values.py`, the flag whitelists in
`kernel/config_whitelists.py`, the cross-option rules in `kernel/config_rules.py` and per-model resolution in
`kernel/config.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel.config_values import (
    Where,
    check_tree,
    did_you_mean,
    parse_bool,
    parse_constraints,
    parse_float,
    parse_int,
    parse_int_list,
    parse_objectives,
    parse_path,
    parse_plugin_name,
    parse_str,
    parse_str_list,
    show,
)
from modelyzer.kernel.config_whitelists import parse_dict_field

BUILTIN_LAUNCHERS = ("local", "docker", "remote", "c_api", "replay")
BUILTIN_STRATEGIES = ("brute", "quick", "optuna")


# ---- the field table --------------------------------------------------------------------------------

KIND_DOCS = {
    "str": "string", "path": "path", "int": "integer", "float": "number", "bool": "boolean",
    "int_list": "integer list", "str_list": "string list", "dict": "mapping", "models": "model list",
    "objectives": "objectives", "constraints": "constraints", "choice": "choice", "plugin": "plugin name",
    "tree": "list or mapping",
}


@attrs.frozen
class Field:
    """One config key: its MA name, value kind, default, help text and CLI flag."""

    name: str
    kind: str
    help: str
    default: Any = None
    section: str = "General"
    short: str | None = None
    yaml_only: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    commands: tuple[str, ...] = ("profile",)
    default_factory: Callable[[], Any] | None = None
    default_doc: str | None = None
    #: a float field whose `minimum` 0 is allowed (0 turns a feature off); float minimums of 0 are exclusive otherwise
    zero_ok: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.short, self.flag) if self.short else (self.flag,)

    @property
    def cli(self) -> bool:
        return not self.yaml_only

    def default_value(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        return list(self.default) if isinstance(self.default, list) else (
            dict(self.default) if isinstance(self.default, dict) else self.default)

    def default_text(self) -> str:
        if self.default_doc is not None:
            return self.default_doc
        value = self.default
        if value is None:
            return "–"
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, list):
            return ",".join(str(v) for v in value) if value else "[]"
        if isinstance(value, dict):
            return ", ".join(f"{k}: {v}" for k, v in value.items()) or "{}"
        return str(value)

    def type_text(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "plugin":
            return "one of " + ", ".join(self.choices) + " or a plugin's name"
        text = KIND_DOCS[self.kind]
        if self.minimum is not None and self.kind in ("int", "float", "int_list"):
            text += " > 0" if self.kind == "float" and self.minimum == 0 and not self.zero_ok else f" ≥ {self.minimum:g}"
        if self.maximum is not None:
            text += f", ≤ {self.maximum:g}"
        return text

    def parse(self, value: Any, where: Where) -> Any:
        """Raw YAML/CLI value → typed value (see `kernel/config.py` for models/objectives/constraints)."""
        kind = self.kind
        if kind == "bool":
            return parse_bool(value, where)
        if kind == "int":
            return parse_int(value, where, self.minimum, self.maximum)
        if kind == "float":
            return parse_float(value, where, self.minimum, self.maximum, exclusive_min=self.minimum == 0 and not self.zero_ok)
        if kind == "str":
            return parse_str(value, where)
        if kind == "path":
            return parse_path(value, where)
        if kind == "int_list":
            return parse_int_list(value, where, int(self.minimum or 0))
        if kind == "str_list":
            items = parse_str_list(value, where)
            for item in items:
                if self.choices and item not in self.choices:
                    where.fail(f"must be a list of {', '.join(self.choices)}; got {show(item)}")
            return items
        if kind == "choice":
            text = value.strip() if isinstance(value, str) else ""
            for choice in self.choices:
                if text.lower() == choice.lower():
                    return choice
            where.fail(f"must be one of {', '.join(self.choices)}; got {show(value)}{did_you_mean(text, self.choices)}")
        if kind == "plugin":
            return parse_plugin_name(value, where)
        if kind == "dict":
            return parse_dict_field(self.name, value, where)
        if kind == "objectives":
            return parse_objectives(value, where)
        if kind == "constraints":
            return parse_constraints(value, where)
        if kind == "tree":
            return parse_str_list(value, where) if isinstance(value, str) else check_tree(value, where)
        return value  # "models": resolved in kernel/config.py (with config_values.parse_model_entries)


def _cwd(*parts: str) -> Callable[[], Path]:
    return lambda: Path.cwd().joinpath(*parts)


def _cpu_util() -> float:
    return 80.0 * (os.cpu_count() or 1)


INFERENCE_FIELDS = ["model_name", "batch_size", "concurrency", "model_config_path", "instance_group",
                    "max_batch_size", "satisfies_constraints", "perf_throughput", "perf_latency_p99"]
GPU_FIELDS = ["model_name", "gpu_uuid", "batch_size", "concurrency", "model_config_path", "instance_group",
              "satisfies_constraints", "gpu_used_memory", "gpu_utilization", "gpu_power_usage"]
SERVER_FIELDS = ["model_name", "gpu_uuid", "gpu_used_memory", "gpu_utilization", "gpu_power_usage"]
# Model Analyzer's three, then the measured workload (input/output lengths: one row per workload)
LLM_FIELDS = ["inter_token_latency_p99", "time_to_first_token_p99", "output_token_throughput",
              "input_sequence_length_avg", "output_sequence_length_avg"]
BOTH = ("profile", "report")
#: what to install when no installed load generator serves a `model_type` (named in that one-line error)
INSTALL_HINTS = {"llm": "a load-generator plugin for LLMs, e.g. one driving genai-perf or AIPerf"}

F = Field
FIELDS_LIST: tuple[Field, ...] = (
    # General -----------------------------------------------------------------------------------------
    F("config_file", "path", "YAML config file; CLI flags override its values.", short="-f", commands=BOTH),
    F("checkpoint_directory", "path", "Directory for Model Analyzer checkpoints (imported into the results DB).",
      short="-s", commands=BOTH, default_factory=_cwd("checkpoints"), default_doc="$CWD/checkpoints"),
    F("export_path", "path", "Directory for results, reports and plots (created if missing).", short="-e",
      commands=BOTH, default_factory=_cwd(), default_doc="$CWD"),
    F("results_db", "path", "SQLite results database; re-running with the same file resumes the profile.",
      commands=BOTH, default_doc="<export_path>/results.db"),
    F("retry_failed", "bool", "On resume, measure again the RunConfigs whose stored measurement failed (failed, "
      "timeout, …; not a replay's `not_recorded`); the new measurement replaces the failed one.", default=False),
    F("confirm_top", "int", "After each model's search, measure the statistically tied leading configs (at most "
      "this many; their confidence intervals overlap) once more at their best load and pool both measurements, so "
      "the tie is broken by data where it can be. 0: off.", default=0, minimum=0, section="Ranking"),
    F("model_type", "choice", "`LLM` profiles with a load generator that serves LLMs (genai-perf or AIPerf, "
      "installed as a plugin) and adds LLM metrics.", default="generic", choices=("generic", "LLM")),
    F("monitoring_interval", "float", "Seconds between metric samples.", short="-i", default=1.0, minimum=0),
    F("duration_seconds", "int", "Seconds of the server-only metrics window (the server with no model loaded: its "
      "GPUs; with collect_cpu_metrics also its RAM and host CPU).", short="-d", default=3, minimum=1),
    F("collect_cpu_metrics", "bool", "Collect CPU RAM metrics of the server.", default=False),
    F("gpus", "str_list", "GPUs to use: UUIDs or CUDA indices, `all`, or an empty list for none.",
      default=["all"]),
    F("always_report_gpu_metrics", "bool", "Report GPU metrics even for CPU-only models.", default=False,
      commands=BOTH),
    F("dcgm_disable", "bool", "Do not collect GPU metrics (only with triton_launch_mode remote).", default=False),
    # Models -----------------------------------------------------------------------------------------
    F("model_repository", "path", "Model repository holding `<model>/config.pbtxt` (required unless remote).",
      short="-m", section="Models"),
    F("profile_models", "models", "Models to profile: comma list, YAML list, or mapping name → per-model "
      "settings (required).", section="Models"),
    F("bls_composing_models", "models", "Models called by the (single) BLS model being profiled.",
      section="Models", default_doc="[]"),
    F("ensemble_composing_models", "models", "Per-step settings for composing models of an ensemble.",
      section="Models", default_doc="[]"),
    F("cpu_only_composing_models", "str_list", "Composing models that run on CPU only.", default=[],
      section="Models"),
    F("output_model_repository_path", "path", "Where model config variants are written.", section="Models",
      default_factory=_cwd("output_model_repository"), default_doc="$CWD/output_model_repository"),
    F("override_output_model_repository", "bool", "Delete and rewrite the output model repository.",
      default=False, section="Models"),
    F("reload_model_disable", "bool", "Do not load/unload models (remote mode).", default=False,
      section="Models"),
    # Load -------------------------------------------------------------------------------------------
    F("batch_sizes", "int_list", "Client batch sizes.", short="-b", default=[1], minimum=1, section="Load"),
    F("concurrency", "int_list", "Concurrency values; empty means searched between the "
      "run_config_search_*_concurrency bounds.", short="-c", default=[], minimum=1, section="Load"),
    F("request_rate", "int_list", "Request rates (profile by request rate instead of concurrency).",
      default=[], minimum=1, section="Load"),
    F("latency_budget", "float", "Shorthand for the constraint perf_latency_p99 max (ms), for every model.",
      minimum=0, section="Ranking"),
    F("min_throughput", "float", "Shorthand for the constraint perf_throughput min, for every model.",
      minimum=0, section="Ranking"),
    F("objectives", "objectives", "Ranking objectives: `{tag: weight}` or a list of tags (weight 10 each).",
      yaml_only=True, section="Ranking", default_doc="perf_throughput: 10 (output_token_throughput: 10 with model_type LLM)"),
    F("constraints", "constraints", "Constraints for every model: `{tag: {min|max: value}}`.", yaml_only=True,
      section="Ranking", default_doc="{}"),
    F("weighting", "float", "Per-model weight in multi-model ranking (set it under profile_models.<name>).",
      yaml_only=True, section="Ranking", default=1.0, minimum=0),
    F("num_configs_per_model", "int", "Configs per model shown in summary plots.", default=3, minimum=1,
      section="Ranking"),
    F("num_top_model_configs", "int", "Configs in the across-models ranking (needs global constraints).",
      default=0, minimum=0, section="Ranking"),
    F("ranker", "plugin", "Ranker plugin that orders each model's configs (`modelyzer plugins` lists them).",
      default="weighted", commands=BOTH, section="Ranking"),
    # Search -----------------------------------------------------------------------------------------
    F("run_config_search_mode", "plugin", "Search strategy.", default="brute", choices=BUILTIN_STRATEGIES,
      section="Search"),
    F("load_generator", "plugin", "Load generator plugin; by default the installed one that serves `model_type` "
      "(`modelyzer plugins` lists them).", default_doc="by model type", section="Load generator"),
    F("run_config_search_disable", "bool", "Profile only the default config with the given load.",
      default=False, section="Search"),
    F("run_config_search_min_concurrency", "int", "Smallest concurrency searched.", default=1, minimum=1,
      section="Search"),
    F("run_config_search_max_concurrency", "int", "Largest concurrency searched.", default=1024, minimum=1,
      section="Search"),
    F("run_config_search_min_request_rate", "int", "Smallest request rate searched.", default=16, minimum=1,
      section="Search"),
    F("run_config_search_max_request_rate", "int", "Largest request rate searched.", default=8192, minimum=1,
      section="Search"),
    F("run_config_search_min_instance_count", "int", "Smallest instance count searched.", default=1, minimum=1,
      section="Search"),
    F("run_config_search_max_instance_count", "int", "Largest instance count searched.", default=5, minimum=1,
      section="Search"),
    F("run_config_search_min_model_batch_size", "int", "Smallest max_batch_size searched.", default=1,
      minimum=1, section="Search"),
    F("run_config_search_max_model_batch_size", "int", "Largest max_batch_size searched.", default=128,
      minimum=1, section="Search"),
    F("run_config_search_max_binary_search_steps", "int", "Binary search steps after a constraint fails.",
      default=5, minimum=0, section="Search"),
    F("run_config_profile_models_concurrently_enable", "bool", "Profile all models together.", default=False,
      section="Search"),
    F("request_rate_search_enable", "bool", "Search request rate instead of concurrency.", default=False,
      section="Search"),
    F("concurrency_sweep_disable", "bool", "Do not sweep concurrency; use the given or default values.",
      default=False, section="Search"),
    F("early_exit_enable", "bool", "Stop a concurrency sweep early when throughput stops growing.",
      default=False, section="Search"),
    F("use_concurrency_formula", "bool", "Derive concurrency from batch size and instance count (optuna).",
      default=False, section="Search"),
    F("min_percentage_of_search_space", "int", "Optuna: minimum % of the search space to try.", default=5,
      minimum=0, maximum=100, section="Search"),
    F("max_percentage_of_search_space", "int", "Optuna: maximum % of the search space to try.", default=10,
      minimum=0, maximum=100, section="Search"),
    F("optuna_min_trials", "int", "Optuna: minimum trials (overrides the percentage when set).", default=20,
      minimum=1, section="Search"),
    F("optuna_max_trials", "int", "Optuna: maximum trials (overrides the percentage when set).", default=200,
      minimum=1, section="Search"),
    F("optuna_early_exit_threshold", "int", "Optuna: stop after this many trials without improvement.",
      default=10, minimum=1, section="Search"),
    F("optuna_seed", "int", "Optuna: the TPE sampler's seed. Unset: random on a fresh profile; the seed is stored in "
      "the results DB, so a resumed profile asks the same trials (a seed given on resume replaces it).", minimum=0,
      section="Search"),
    # Server -----------------------------------------------------------------------------------------
    F("triton_launch_mode", "plugin", "How the server is run.", default="local", choices=BUILTIN_LAUNCHERS,
      section="Server"),
    F("replay_results_db", "path", "Recorded results DB (a profile's, or an imported Model Analyzer checkpoint) that "
      "triton_launch_mode replay answers from.", section="Server"),
    F("replay_duration", "float", "Simulated seconds per replayed measurement (triton_launch_mode replay).",
      default=0.0, minimum=0, zero_ok=True, section="Server"),
    F("triton_docker_image", "str", "Server image (docker mode).", default="nvcr.io/nvidia/tritonserver:26.09-py3",
      section="Server"),
    F("triton_http_endpoint", "str", "Server HTTP endpoint.", default="localhost:8000", section="Server"),
    F("triton_grpc_endpoint", "str", "Server gRPC endpoint.", default="localhost:8001", section="Server"),
    F("triton_metrics_url", "str", "Server Prometheus metrics URL.", default="http://localhost:8002/metrics",
      section="Server"),
    F("triton_server_path", "str", "Server binary (local mode).", default="tritonserver", section="Server"),
    F("triton_output_path", "path", "File for the server's log.", section="Server"),
    F("triton_install_path", "path", "Server install directory (c_api mode).", default=Path("/opt/tritonserver"),
      section="Server"),
    F("triton_docker_mounts", "str_list", "Extra docker mounts `host:container:mode`.", default=[],
      section="Server"),
    F("triton_docker_shm_size", "str", "Docker shared memory size, e.g. `1g`.", section="Server"),
    F("triton_docker_labels", "dict", "Docker labels for the server container.", yaml_only=True,
      section="Server", default={}),
    F("triton_docker_args", "dict", "Extra docker-py `containers.run` arguments (whitelisted).",
      yaml_only=True, section="Server", default={}),
    F("triton_server_flags", "dict", "Extra server flags (snake_case keys become kebab-case).",
      yaml_only=True, section="Server", default={}),
    F("triton_server_environment", "dict", "Extra environment of the server.", yaml_only=True,
      section="Server", default={}),
    # Load generator ---------------------------------------------------------------------------------
    F("client_protocol", "choice", "Protocol of the load generator.", default="grpc", choices=("http", "grpc"),
      section="Load generator"),
    F("client_max_retries", "int", "Retries (1 s apart) while waiting for the server.", short="-r",
      default=50, minimum=0, section="Load generator"),
    F("perf_analyzer_path", "str", "perf_analyzer binary.", default="perf_analyzer", section="Load generator"),
    F("perf_analyzer_timeout", "int", "Seconds before a perf_analyzer run is killed.", default=600, minimum=1,
      section="Load generator"),
    F("perf_analyzer_cpu_util", "float", "perf_analyzer CPU % above which a measurement is flagged.",
      minimum=0, default_factory=_cpu_util, default_doc="80 × CPU count", section="Load generator"),
    F("perf_analyzer_max_auto_adjusts", "int", "Times the measurement window may be enlarged.", default=10,
      minimum=0, section="Load generator"),
    F("measurement_precision", "float", "Target 95% confidence-interval half-width of a measurement's throughput "
      "and latency, in % of the value: perf_analyzer is run again (its windows pooled) until both are within it or "
      "`measurement_max_seconds` is spent. 0: perf_analyzer's own stability check and window auto-adjust (Model "
      "Analyzer's way, also used when `perf_analyzer_flags` sets `stability-percentage`).", default=5.0, minimum=0,
      zero_ok=True, section="Load generator"),
    F("measurement_max_seconds", "float", "Time cap of one measurement under `measurement_precision`: no further "
      "perf_analyzer run starts once it is spent (the measurement is kept, with its precision).", default=20.0,
      minimum=0, zero_ok=True, section="Load generator"),
    F("perf_output", "bool", "Write perf_analyzer output to perf_output_path.", default=False,
      section="Load generator"),
    F("perf_output_path", "path", "File for perf_analyzer output.", section="Load generator"),
    F("perf_analyzer_flags", "dict", "Extra perf_analyzer flags (kebab-case, whitelisted).", yaml_only=True,
      section="Load generator", default={}),
    F("genai_perf_flags", "dict", "Extra genai-perf flags (kebab-case, whitelisted).", yaml_only=True,
      section="Load generator", default={}),
    # Output -----------------------------------------------------------------------------------------
    F("skip_summary_reports", "bool", "Do not write summary reports (nor best_config.json with `report`).",
      default=False, commands=BOTH, section="Output"),
    F("skip_detailed_reports", "bool", "Do not write detailed reports.", default=False, section="Output"),
    F("filename_model_inference", "str", "CSV of per-model inference metrics.",
      default="metrics-model-inference.csv", section="Output"),
    F("filename_model_gpu", "str", "CSV of per-model GPU metrics.", default="metrics-model-gpu.csv",
      section="Output"),
    F("filename_server_only", "str", "CSV of server-only metrics.", default="metrics-server-only.csv",
      section="Output"),
    F("inference_output_fields", "str_list", "Columns of the inference CSV (by default request_rate replaces "
      "concurrency in request-rate mode, and model_type LLM adds LLM metrics).", section="Output",
      default=INFERENCE_FIELDS),
    F("gpu_output_fields", "str_list", "Columns of the GPU CSV (request_rate replaces concurrency in "
      "request-rate mode).", section="Output", default=GPU_FIELDS),
    F("server_output_fields", "str_list", "Columns of the server-only CSV.", section="Output",
      default=SERVER_FIELDS),
    # Report -----------------------------------------------------------------------------------------
    F("report_model_configs", "tree", "Variants to report on: names, or a mapping variant → {plots: …}.",
      short="-n", commands=("report",), section="Report"),
    F("plots", "tree", "Detailed-report plots (accepted; summary plots are fixed).", yaml_only=True,
      commands=BOTH, section="Report"),
    F("output_formats", "str_list", "Report formats.", short="-o", default=["pdf"], choices=("pdf", "csv", "png"),
      commands=("report",), section="Report"),
    # Agents -----------------------------------------------------------------------------------------
    F("executor", "plugin", "Where RunConfigs run: `local` (this host) or an installed executor plugin; "
      "`agents` when `agents` is set.", default="local", section="Agents"),
    F("agents", "str", "Run RunConfigs on `modelyzer agent` daemons; the address this controller listens on, "
      "e.g. `tcp://0.0.0.0:5555` (see docs/agents.md).", section="Agents"),
    F("min_agents", "int", "Agents to wait for before profiling starts (with `agents`).", default=1, minimum=1,
      section="Agents"),
    F("agent_keys", "path", "Directory made by `modelyzer keys generate`: the controller's key pair and "
      "`authorized_keys/` (with `agents`).", section="Agents"),
    F("insecure", "bool", "Plaintext, unauthenticated agent traffic instead of CURVE (trusted networks only).",
      default=False, section="Agents"),
)
FIELDS: dict[str, Field] = {f.name: f for f in FIELDS_LIST}

PER_MODEL_KEYS: dict[str, str] = {
    "cpu_only": "boolean: run the model on CPU (KIND_CPU instances)",
    "parameters": "mapping with batch_sizes, concurrency, request_rate (each an integer list)",
    "objectives": "as the global key; default: the global objectives",
    "constraints": "as the global key; default: the global constraints",
    "weighting": "positive number, weight of the model in multi-model ranking; default 1",
    "model_config_parameters": "mapping of model config fields to sweep (lists are swept)",
    "perf_analyzer_flags": "as the global key; default: the global flags",
    "genai_perf_flags": "as the global key; default: the global flags",
    "triton_server_flags": "as the global key; default: the global flags",
    "triton_server_environment": "as the global key; default: the global environment",
    "triton_docker_args": "as the global key; default: the global arguments",
}
PARAMETER_KEYS = ("batch_sizes", "concurrency", "request_rate")
