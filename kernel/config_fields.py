"""The config field table: every key modelyzer accepts, with its type, default, CLI flag and help text.

`FIELDS` is the single source of truth for the YAML keys (Model Analyzer's `profile` and `report` keys plus
modelyzer's own), the click options (`frontends/cli/options.py` generates them from here) and the config
reference (`render_config_reference()` writes docs/config.md). The value parsers (`parse_*`) turn raw YAML or
CLI values into typed values; they raise `ConfigError` naming the key through `Where.fail`. Cross-option rules
and per-model resolution live in `kernel/config.py`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs

from . import metrics
from .errors import ConfigError
from .models import Constraint, Objective

MAX_LIST_LENGTH = 100_000
"""Longest list a range may expand to (a typo like `stop: 10000000000` must not eat the memory)."""

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def show(value: Any) -> str:
    """A short repr of a user value for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    key = str(name).strip().replace("-", "_")
    match = difflib.get_close_matches(key, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


@attrs.frozen
class Where:
    """Where a value came from: its dotted key path and a source suffix (file or CLI flag) for messages."""

    path: str
    source: str = ""

    def child(self, key: object) -> Where:
        return Where(f"{self.path}.{key}", self.source)

    def fail(self, problem: str) -> NoReturn:
        raise ConfigError(one_line(f"{self.path}: {problem}{self.source}"))


# ---- scalar parsers ---------------------------------------------------------------------------------


def parse_bool(value: Any, where: Where) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    where.fail(f"must be true or false, got {show(value)}")


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number: float
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _bound_text(noun: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"must be {noun} between {minimum:g} and {maximum:g}"
    if minimum == 1 and noun == "an integer":
        return "must be a positive integer"
    if minimum == 0:
        return f"must be {'a non-negative integer' if noun == 'an integer' else 'a number >= 0'}"
    if minimum is not None:
        return f"must be {noun} >= {minimum:g}"
    return f"must be {noun}"


def parse_int(value: Any, where: Where, minimum: float | None = None, maximum: float | None = None) -> int:
    number = _to_int(value)
    if number is None:
        where.fail(f"must be an integer, got {show(value)}")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        where.fail(f"{_bound_text('an integer', minimum, maximum)}, got {number}")
    return number


def parse_float(value: Any, where: Where, minimum: float | None = None, maximum: float | None = None,
                exclusive_min: bool = False) -> float:
    number = _to_float(value)
    if number is None:
        where.fail(f"must be a number, got {show(value)}")
    if minimum is not None and (number < minimum or (exclusive_min and number == minimum)):
        where.fail(f"must be a number {'>' if exclusive_min else '>='} {minimum:g}, got {number:g}")
    if maximum is not None and number > maximum:
        where.fail(f"must be a number <= {maximum:g}, got {number:g}")
    return number


def parse_str(value: Any, where: Where) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    where.fail(f"must be a string, got {show(value)}")


def parse_path(value: Any, where: Where) -> Path:
    text = parse_str(value, where).strip()
    if not text:
        where.fail("must be a path, got an empty string")
    if "\0" in text:
        where.fail("must be a path, got a string with a NUL byte")
    return Path(os.path.expanduser(text))


# ---- list parsers -----------------------------------------------------------------------------------


def _expand_range(value: Mapping[Any, Any], where: Where, minimum: int) -> list[int]:
    unknown = [k for k in value if k not in ("start", "stop", "step")]
    if unknown:
        where.fail(f"a range takes keys start, stop, step; got {show(unknown[0])}")
    if "start" not in value or "stop" not in value:
        where.fail("a range needs both 'start' and 'stop' (stop is inclusive), e.g. {start: 1, stop: 64, step: 2}")
    start = parse_int(value["start"], where.child("start"), minimum)
    stop = parse_int(value["stop"], where.child("stop"), minimum)
    step = parse_int(value.get("step", 1), where.child("step"), 1)
    if start > stop:
        where.fail(f"range start ({start}) is greater than stop ({stop})")
    if (stop - start) // step + 1 > MAX_LIST_LENGTH:
        where.fail(f"range expands to more than {MAX_LIST_LENGTH} values; use a larger step")
    return list(range(start, stop + 1, step))


def parse_int_list(value: Any, where: Where, minimum: int = 1) -> list[int]:
    """Comma string, YAML list, single number, or `{start, stop, step}` range with an inclusive stop."""
    noun = "positive integers" if minimum == 1 else f"integers >= {minimum}"
    if value is None:
        return []
    if isinstance(value, Mapping):
        return _expand_range(value, where, minimum)
    items: list[Any]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    if len(items) > MAX_LIST_LENGTH:
        where.fail(f"has more than {MAX_LIST_LENGTH} values")
    out: list[int] = []
    for item in items:
        number = _to_int(item)
        if number is None or number < minimum:
            where.fail(f"must be a list of {noun} (comma string, list or {{start, stop, step}}), got {show(item)}")
        out.append(number)
    return out


def parse_str_list(value: Any, where: Where) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    items = list(value) if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            where.fail(f"must be a list of strings (comma string or YAML list), got {show(item)}")
        out.append(str(item).strip())
    return [item for item in out if item]


# ---- mappings ---------------------------------------------------------------------------------------

SCALARS = (str, int, float, bool)


def check_tree(value: Any, where: Where, budget: list[int] | None = None) -> Any:
    """Validate a JSON-like tree (str keys; scalars, lists, mappings) and return a plain copy of it."""
    budget = budget if budget is not None else [0]
    budget[0] += 1
    if budget[0] > MAX_LIST_LENGTH:
        where.fail(f"is too large (more than {MAX_LIST_LENGTH} values)")
    if where.path.count(".") + where.path.count("[") > 64:
        where.fail("is nested more than 64 levels deep")
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            where.fail(f"must be a finite number, got {show(value)}")
        return value
    if isinstance(value, list | tuple):
        return [check_tree(item, Where(f"{where.path}[{i}]", where.source), budget) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): check_tree(v, where.child(k), budget) for k, v in parse_mapping(value, where).items()}
    where.fail(f"must be a string, number, boolean, list or mapping, got {show(value)}")


def parse_mapping(value: Any, where: Where) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        where.fail(f"must be a mapping of keys to values, got {show(value)}")
    for key in value:
        if not isinstance(key, str) or not key.strip():
            where.fail(f"keys must be non-empty strings, got {show(key)}")
    return dict(value)


def parse_flag_dict(value: Any, where: Where, allowed: frozenset[str] | None = None, kebab: bool = False,
                    hint: str = "") -> dict[str, Any]:
    """Command-line flag mappings: scalar or list-of-scalar values; keys checked against `allowed`."""
    out: dict[str, Any] = {}
    for raw_key, item in parse_mapping(value, where).items():
        key = raw_key.strip().replace("_", "-") if kebab else raw_key.strip()
        at = where.child(raw_key)
        if allowed is not None and key not in allowed:
            match = difflib.get_close_matches(key.replace("_", "-"), sorted(allowed), n=1, cutoff=0.6)
            suggestion = f"; did you mean '{match[0]}'?" if match else ""
            at.fail(f"is not an accepted flag{hint}{suggestion}")
        if item is None:
            continue
        if isinstance(item, list):
            if not all(isinstance(x, SCALARS) for x in item):
                at.fail(f"must be a value or a list of values, got {show(item)}")
        elif not isinstance(item, SCALARS):
            at.fail(f"must be a value or a list of values, got {show(item)}")
        out[key] = check_tree(item, at)
    return out


def parse_environment(value: Any, where: Where) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in parse_mapping(value, where).items():
        if isinstance(item, bool):
            out[key] = str(item).lower()
        elif item is None:
            out[key] = ""
        else:
            out[key] = parse_str(item, where.child(key))
    return out


# ---- objectives and constraints --------------------------------------------------------------------


def _metric_tag(tag: Any, where: Where) -> str:
    if not isinstance(tag, str) or not metrics.is_known(tag):
        where.fail(f"unknown metric tag {show(tag)}{did_you_mean(tag, metrics.all_metrics())}")
    return tag


def parse_objectives(value: Any, where: Where) -> tuple[Objective, ...]:
    """`{tag: weight}`, a list of tags (each weight 10) or a comma string of tags."""
    if isinstance(value, Mapping):
        objectives = tuple(
            Objective(_metric_tag(tag, where), parse_float(weight, where.child(tag), 0, exclusive_min=True))
            for tag, weight in value.items()
        )
    elif isinstance(value, str | list | tuple):
        objectives = tuple(Objective(_metric_tag(tag, where), 10.0) for tag in parse_str_list(value, where))
    else:
        where.fail(f"must be a mapping of metric tag to weight or a list of metric tags, got {show(value)}")
    if not objectives:
        where.fail("must name at least one metric, e.g. {perf_throughput: 10}")
    return objectives


def parse_constraints(value: Any, where: Where) -> tuple[Constraint, ...]:
    """`{tag: {min|max: value}}`: `min` for higher-is-better metrics, `max` for lower-is-better ones."""
    out = []
    for tag, bounds in parse_mapping(value, where).items():
        at = where.child(tag)
        _metric_tag(tag, where)
        info = metrics.get(tag)
        bound = "min" if info is None or info.direction == metrics.HIGHER else "max"
        bounds = parse_mapping(bounds, at)
        if not bounds:
            at.fail(f"needs a bound, e.g. {{{bound}: 100}}")
        for key in bounds:
            if key not in ("min", "max"):
                at.fail(f"takes 'min' or 'max', got {show(key)}")
            if key != bound:
                better = "higher" if bound == "min" else "lower"
                at.fail(f"takes '{bound}' ({better} is better for {tag}), not '{key}'")
        limit = parse_float(bounds[bound], at.child(bound), 0)
        out.append(Constraint(tag, min=limit) if bound == "min" else Constraint(tag, max=limit))
    return tuple(out)


# ---- whitelists (Model Analyzer facts §2.2) ---------------------------------------------------------

PERF_ANALYZER_FLAGS = frozenset(
    """service-kind model-signature-name async sync measurement-interval concurrency-range request-rate-range
    request-distribution request-intervals binary-search num-of-sequences latency-threshold max-threads
    stability-percentage max-trials percentile input-data shared-memory output-shared-memory-size shape
    sequence-length sequence-id-range string-length string-data measurement-mode measurement-request-count
    streaming grpc-compression-algorithm triton-server-directory model-repository ssl-grpc-use-ssl
    ssl-grpc-root-certifications-file ssl-grpc-private-key-file ssl-grpc-certificate-chain-file
    ssl-https-verify-peer ssl-https-verify-host ssl-https-ca-certificates-file ssl-https-client-certificate-type
    ssl-https-client-certificate-file ssl-https-private-key-type ssl-https-private-key-file collect-metrics
    metrics-url metrics-interval bls-composing-models model-name model-version batch-size url protocol
    latency-report-file http-header verbose extra-verbose verbose-csv""".split()
)
PERF_ANALYZER_LOAD_FLAGS = ("concurrency-range", "request-rate-range", "request-intervals")

GENAI_PERF_FLAGS = frozenset(
    """backend endpoint service-kind url expected-output-tokens input-dataset input-tokens-mean
    input-tokens-stddev input-type num-of-output-prompts random-seed streaming tokenizer""".split()
)

DOCKER_ARGS = frozenset(
    """image command auto_remove blkio_weight_device blkio_weight cap_add cap_drop cgroup_parent cgroupns
    cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period cpu_shares cpuset_cpus cpuset_mems detach
    domainname entrypoint environment hostname init init_path ipc_mode isolation kernel_memory labels
    mac_address mem_limit mem_reservation memswap_limit name nano_cpus network network_disabled network_mode
    oom_kill_disable oom_score_adj pid_mode pids_limit platform privileged publish_all_ports remove runtime
    shm_size stdin_open stdout stderr stop_signal stream tty use_config_proxy user userns_mode uts_mode version
    volume_driver volumes working_dir""".split()
)

BUILTIN_LAUNCHERS = ("local", "docker", "remote", "c_api")
BUILTIN_STRATEGIES = ("brute", "quick", "optuna")
_PLUGIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def parse_plugin_name(value: Any, where: Where) -> str:
    text = parse_str(value, where).strip()
    if not _PLUGIN_NAME.match(text):
        where.fail(f"must be a plugin name (letters, digits, _ . -), got {show(value)}")
    return text


def parse_dict_field(name: str, value: Any, where: Where) -> dict[str, Any]:
    if name == "perf_analyzer_flags":
        flags = parse_flag_dict(value, where, PERF_ANALYZER_FLAGS, hint=" of perf_analyzer (kebab-case)")
        loads = [flag for flag in PERF_ANALYZER_LOAD_FLAGS if flag in flags]
        if len(loads) > 1:
            where.fail(f"{' and '.join(loads)} are mutually exclusive; keep one")
        return flags
    if name == "genai_perf_flags":
        return parse_flag_dict(value, where, GENAI_PERF_FLAGS, hint=" of genai-perf (kebab-case)")
    if name == "triton_server_flags":
        return parse_flag_dict(value, where, kebab=True)
    if name in ("triton_server_environment", "triton_docker_labels"):
        return parse_environment(value, where)
    if name == "triton_docker_args":
        for key in parse_mapping(value, where):
            if key not in DOCKER_ARGS:
                where.child(key).fail(f"is not an accepted docker run argument{did_you_mean(key, DOCKER_ARGS)}")
        return dict(check_tree(value, where))
    return dict(check_tree(parse_mapping(value, where), where))


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
            text += " > 0" if self.kind == "float" and self.minimum == 0 else f" ≥ {self.minimum:g}"
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
            return parse_float(value, where, self.minimum, self.maximum, exclusive_min=self.minimum == 0)
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
        return value  # "models": resolved in kernel/config.py


def _cwd(*parts: str) -> Callable[[], Path]:
    return lambda: Path.cwd().joinpath(*parts)


def _cpu_util() -> float:
    return 80.0 * (os.cpu_count() or 1)


INFERENCE_FIELDS = ["model_name", "batch_size", "concurrency", "model_config_path", "instance_group",
                    "max_batch_size", "satisfies_constraints", "perf_throughput", "perf_latency_p99"]
GPU_FIELDS = ["model_name", "gpu_uuid", "batch_size", "concurrency", "model_config_path", "instance_group",
              "satisfies_constraints", "gpu_used_memory", "gpu_utilization", "gpu_power_usage"]
SERVER_FIELDS = ["model_name", "gpu_uuid", "gpu_used_memory", "gpu_utilization", "gpu_power_usage"]
LLM_FIELDS = ["inter_token_latency_p99", "time_to_first_token_p99", "output_token_throughput"]
BOTH = ("profile", "report")

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
    F("model_type", "choice", "`LLM` profiles with genai-perf and adds LLM metrics.", default="generic",
      choices=("generic", "LLM")),
    F("monitoring_interval", "float", "Seconds between metric samples.", short="-i", default=1.0, minimum=0),
    F("duration_seconds", "int", "Seconds of the server-only metrics window.", short="-d", default=3, minimum=1),
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
      yaml_only=True, section="Ranking", default_doc="perf_throughput: 10"),
    F("constraints", "constraints", "Constraints for every model: `{tag: {min|max: value}}`.", yaml_only=True,
      section="Ranking", default_doc="{}"),
    F("weighting", "float", "Per-model weight in multi-model ranking (set it under profile_models.<name>).",
      yaml_only=True, section="Ranking", default=1.0, minimum=0),
    F("num_configs_per_model", "int", "Configs per model shown in summary plots.", default=3, minimum=1,
      section="Ranking"),
    F("num_top_model_configs", "int", "Configs in the across-models ranking (needs global constraints).",
      default=0, minimum=0, section="Ranking"),
    # Search -----------------------------------------------------------------------------------------
    F("run_config_search_mode", "plugin", "Search strategy.", default="brute", choices=BUILTIN_STRATEGIES,
      section="Search"),
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
    # Server -----------------------------------------------------------------------------------------
    F("triton_launch_mode", "plugin", "How the server is run.", default="local", choices=BUILTIN_LAUNCHERS,
      section="Server"),
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
    F("perf_output", "bool", "Write perf_analyzer output to perf_output_path.", default=False,
      section="Load generator"),
    F("perf_output_path", "path", "File for perf_analyzer output.", section="Load generator"),
    F("perf_analyzer_flags", "dict", "Extra perf_analyzer flags (kebab-case, whitelisted).", yaml_only=True,
      section="Load generator", default={}),
    F("genai_perf_flags", "dict", "Extra genai-perf flags (kebab-case, whitelisted).", yaml_only=True,
      section="Load generator", default={}),
    # Output -----------------------------------------------------------------------------------------
    F("skip_summary_reports", "bool", "Do not write summary reports.", default=False, section="Output"),
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
)
FIELDS: dict[str, Field] = {f.name: f for f in FIELDS_LIST}

MIN_MAX_PAIRS: tuple[tuple[str, str], ...] = (
    ("run_config_search_min_concurrency", "run_config_search_max_concurrency"),
    ("run_config_search_min_request_rate", "run_config_search_max_request_rate"),
    ("run_config_search_min_instance_count", "run_config_search_max_instance_count"),
    ("run_config_search_min_model_batch_size", "run_config_search_max_model_batch_size"),
    ("min_percentage_of_search_space", "max_percentage_of_search_space"),
    ("optuna_min_trials", "optuna_max_trials"),
)

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


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_config_reference() -> str:
    """docs/config.md: every key with its type, default and CLI flag, generated from `FIELDS`."""
    lines = [
        "# Config reference",
        "",
        "<!-- Generated by modelyzer.kernel.config_fields.render_config_reference(); do not edit by hand. -->",
        "",
        "modelyzer reads Model Analyzer's YAML config files. Values are resolved as defaults < YAML file "
        "(`-f/--config-file`) < CLI flags. Keys are snake_case; an unknown key is an error that suggests the "
        "closest known key. One file may hold both `profile` and `report` keys.",
        "",
        "**Lists** are comma strings (`1,2,4`), YAML lists, or ranges `{start: 1, stop: 64, step: 2}` whose "
        "`stop` is inclusive. **YAML only** keys take mappings and have no CLI flag. Every error names the key "
        "(dotted for nested keys, e.g. `profile_models.add_sub.parameters.concurrency`). Boolean flags also have a "
        "`--no-` form, so the command line can switch off what the YAML file switched on.",
        "",
    ]
    sections: dict[str, list[Field]] = {}
    for field in FIELDS_LIST:
        sections.setdefault(field.section, []).append(field)
    for section, fields in sections.items():
        lines += [f"## {section}", "", "| Key | CLI | Type | Default | Description |", "|---|---|---|---|---|"]
        for f in fields:
            cli = "YAML only" if f.yaml_only else ", ".join(f"`{flag}`" for flag in f.flags)
            if f.commands != ("profile",):
                cli += " (" + ", ".join(f.commands) + ")"
            default = f.default_text()
            default = default if default == "–" else f"`{default}`"
            lines.append(f"| `{f.name}` | {cli} | {_cell(f.type_text())} | {_cell(default)} | {_cell(f.help)} |")
        lines.append("")
    lines += ["## Per-model settings", "",
              "`profile_models` (and the composing-model keys) may be a mapping `{name: {…}}` with these keys; a "
              "model without a key inherits the global value.", "", "| Key | Value |", "|---|---|"]
    lines += [f"| `{key}` | {_cell(text)} |" for key, text in PER_MODEL_KEYS.items()]
    lines += ["", "## Accepted flags", "",
              "`perf_analyzer_flags`: " + ", ".join(f"`{f}`" for f in sorted(PERF_ANALYZER_FLAGS)) + ".", "",
              "`genai_perf_flags`: " + ", ".join(f"`{f}`" for f in sorted(GENAI_PERF_FLAGS)) + ".", "",
              "`triton_docker_args`: " + ", ".join(f"`{f}`" for f in sorted(DOCKER_ARGS)) + ".", "",
              "`triton_server_flags`: any server flag; snake_case keys are converted to kebab-case.", ""]
    return "\n".join(lines)
