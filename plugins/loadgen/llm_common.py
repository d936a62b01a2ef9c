"""What the LLM load generators (``genai_perf``, ``aiperf``) share: the workload keys, finding the tool and the
tokenizer, running the tool, and reading its JSON export into token metrics.

Both tools write one JSON export whose metrics look alike: ``{"time_to_first_token": {"unit": "ms", "avg": …,
"p50": …}, "request_throughput": {"unit": "requests/sec", "avg": …}, …}``. ``token_metrics()`` turns it into kernel
``Metric``s in the units the metric registry declares — latencies in ms *converted from the unit the tool states*
(ns, us, ms or s), throughputs in tokens/s and requests/s — plus the generic ``perf_throughput`` (= request
throughput) and ``perf_latency_*`` (= request latency) so rankings and plots made for perf_analyzer work as well.
An export with no time to first token or inter-token latency means the endpoint did not stream tokens: that is a
``LoadGeneratorError`` saying so, never a row of zeros.

This module is a plugin too: it declares the keys both tools read (``tokenizer``, ``llm_input_tokens``,
``llm_output_tokens``, ``llm_request_count``, ``llm_measurement_seconds``, ``llm_timeout``). Each tool runs in its
own process group (``perf_analyzer.run_process``), killed with its group on Ctrl-C or after ``llm_timeout`` s.
"""

from __future__ import annotations

import abc
import functools
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, LoadGeneratorError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import LoadGenerator, RunContext
from modelyzer.kernel.metrics import TOKEN_STATS
from modelyzer.kernel.models import Endpoints, Metric, RunConfig
from modelyzer.plugins.loadgen.perf_analyzer import run_process
from modelyzer.plugins.setup_tools import setup_tool

SETUP_HINT = "bash .ci/setup.d/llm-loadgens.sh"
#: files one of which a Hugging Face tokenizer directory holds
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")
#: the tools' latency units → factor to ms
TO_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "sec": 1e3}
#: the tools' throughput units → factor to per second
PER_SECOND = {"requests/sec": 1.0, "tokens/sec": 1.0, "tokens/sec/user": 1.0, "requests/s": 1.0, "tokens/s": 1.0}
LATENCIES = ("time_to_first_token", "inter_token_latency", "request_latency")
GENERIC_LATENCY_STATS = ("avg", "p50", "p90", "p95", "p99")
PRODUCES: tuple[str, ...] = (
    *(f"{name}_{stat}" for name in LATENCIES for stat in TOKEN_STATS),
    "output_token_throughput", "output_token_throughput_per_request", "request_throughput",
    "input_sequence_length_avg", "output_sequence_length_avg",
    "perf_throughput", *(f"perf_latency_{stat}" for stat in GENERIC_LATENCY_STATS),
)
ERROR_LOG_NAME = "llm_loadgen_error.log"


@attrs.frozen
class LlmSettings:
    """The workload and tokenizer keys both LLM load generators read."""

    tokenizer: Path | None = attrs.field(default=None, metadata={
        "help": "Local tokenizer directory the LLM load generator counts tokens with (no hub downloads); default: "
                "the served model's directory <model_repository>/<model> when it holds tokenizer files."})
    llm_input_tokens: list[int] = attrs.field(factory=lambda: [128], metadata={
        "help": "Mean input sequence length (tokens) of the synthetic prompts; a list is a workload dimension: every "
                "config is measured at each length and reported, the first one is searched and ranked."})
    llm_output_tokens: list[int] = attrs.field(factory=lambda: [64], metadata={
        "help": "Maximum output tokens per request (max_tokens); a list is a workload dimension like "
                "llm_input_tokens (every input × output combination is measured)."})
    llm_request_count: int = attrs.field(default=0, metadata={
        "help": "Requests per LLM measurement; 0: measure for llm_measurement_seconds instead."})
    llm_measurement_seconds: float = attrs.field(default=10.0, metadata={
        "help": "Seconds of one LLM measurement (when llm_request_count is 0)."})
    llm_timeout: int = attrs.field(default=600, metadata={
        "help": "Seconds before an LLM load generator run is killed."})


def check_settings(settings: LlmSettings) -> None:
    """One-line ConfigErrors for workload values the tools would reject later."""
    for key, values in (("llm_input_tokens", settings.llm_input_tokens),
                        ("llm_output_tokens", settings.llm_output_tokens), ("llm_timeout", [settings.llm_timeout])):
        if not values or min(values) < 1:
            raise ConfigError(f"{key}: must be at least 1, got {values if values else 'an empty list'}")
    if settings.llm_request_count < 0:
        raise ConfigError(f"llm_request_count: must be 0 or more, got {settings.llm_request_count}")
    if settings.llm_request_count == 0 and settings.llm_measurement_seconds <= 0:
        raise ConfigError("llm_measurement_seconds: must be > 0 (or set llm_request_count)")


def find_tool(key: str, value: str, default: str) -> str:
    """Resolve ``<tool>_path``: an explicit path must be executable; the default name is the setup's
    ``.tools/bin`` shim, then PATH. Missing → one-line ConfigError naming the key and the set-up script."""
    if os.sep in value:
        if Path(value).is_file() and os.access(value, os.X_OK):
            return value
        raise ConfigError(f"{key}: {value!r} is not an executable file; fix {key} or run `{SETUP_HINT}`")
    found = (setup_tool(value) if value == default else None) or shutil.which(value)
    if found:
        return found
    raise ConfigError(f"{key}: {value!r} is not installed (not in .tools/bin nor on PATH); run `{SETUP_HINT}` "
                      f"or set {key}")


def has_tokenizer(directory: Path) -> bool:
    return directory.is_dir() and any((directory / name).is_file() for name in TOKENIZER_FILES)


def tokenizer_for(config: ProfileConfig, settings: LlmSettings, model: str) -> Path:
    """The tokenizer directory for ``model``: the ``tokenizer`` key, else the model's directory in the repository."""
    if settings.tokenizer is not None:
        if not has_tokenizer(settings.tokenizer):
            raise ConfigError(f"tokenizer: {str(settings.tokenizer)!r} is not a directory holding tokenizer files "
                              f"({', '.join(TOKENIZER_FILES[:2])}, …); set tokenizer to a local tokenizer directory")
        return settings.tokenizer.resolve()
    repo = config.model_repository
    candidate = Path(repo) / model if repo is not None else None
    if candidate is not None and has_tokenizer(candidate):
        return candidate.resolve()
    where = f"{str(candidate)!r} holds no tokenizer files" if candidate is not None else "no model_repository is set"
    raise ConfigError(f"tokenizer: not set and {where}; set tokenizer to a local tokenizer directory of {model!r}")


def base_url(endpoints: Endpoints) -> str:
    http = endpoints.http
    return http if "://" in http else f"http://{http}"


def load_args(run_config: RunConfig, tool: str) -> list[str]:
    """``--concurrency N`` or ``--request-rate R`` (both tools spell them alike)."""
    load = run_config.load
    if load.request_intervals:
        raise LoadGeneratorError(f"{run_config.describe()}: {tool} cannot replay request_intervals; use "
                                 "concurrency or request_rate")
    if load.request_rate is not None:
        return ["--request-rate", str(load.request_rate)]
    return ["--concurrency", str(load.concurrency or 1)]


def flag_args(flags: Mapping[str, Any]) -> list[str]:
    """User flags (kebab-case keys) as arguments: ``True`` → the bare flag, lists → the flag repeated."""
    out: list[str] = []
    for key, value in flags.items():
        if value is False or value is None:
            continue
        if value is True:
            out.append(f"--{key}")
            continue
        for item in value if isinstance(value, list) else [value]:
            out += [f"--{key}", str(item)]
    return out


# ---- the export -------------------------------------------------------------------------------------

def _ms(name: str, entry: Mapping[str, Any]) -> float:
    unit = str(entry.get("unit", "")).strip()
    if unit not in TO_MS:
        raise LoadGeneratorError(f"{name}: unknown time unit {unit!r} in the load generator's export")
    return TO_MS[unit]


def _per_second(name: str, entry: Mapping[str, Any]) -> float:
    unit = str(entry.get("unit", "")).strip()
    if unit not in PER_SECOND:
        raise LoadGeneratorError(f"{name}: unknown throughput unit {unit!r} in the load generator's export")
    return PER_SECOND[unit]


def token_metrics(export: Mapping[str, Any], tool: str) -> list[Metric]:
    """Kernel metrics from a genai-perf / AIPerf JSON export (see the module docstring)."""
    def entry(name: str) -> Mapping[str, Any] | None:
        value = export.get(name)
        return value if isinstance(value, Mapping) and value.get("avg") is not None else None

    if entry("time_to_first_token") is None or entry("inter_token_latency") is None:
        raise LoadGeneratorError(f"the endpoint does not stream tokens: {tool} measured no time to first token "
                                 "nor inter-token latency (serve the model with token streaming)")
    values: dict[str, float] = {}
    for name in LATENCIES:
        data = entry(name)
        if data is None:
            continue
        factor = _ms(name, data)
        for stat in TOKEN_STATS:
            if data.get(stat) is not None:
                values[f"{name}_{stat}"] = float(data[stat]) * factor
    for source, tag in (("output_token_throughput", "output_token_throughput"),
                        ("output_token_throughput_per_user", "output_token_throughput_per_request"),
                        ("request_throughput", "request_throughput")):
        data = entry(source)
        if data is not None:
            values[tag] = float(data["avg"]) * _per_second(source, data)
    for source in ("input_sequence_length", "output_sequence_length"):
        data = entry(source)
        if data is not None:
            values[f"{source}_avg"] = float(data["avg"])
    if "request_throughput" in values:
        values["perf_throughput"] = values["request_throughput"]
    for stat in GENERIC_LATENCY_STATS:
        if f"request_latency_{stat}" in values:
            values[f"perf_latency_{stat}"] = values[f"request_latency_{stat}"]
    return [Metric(tag, value) for tag, value in values.items()]


_BOX = re.compile(r"[│╭╮╰╯─━┃┏┓┗┛┡┩└┘┌┐•]+")
#: a logged error: `[date time] ERROR    text   file.py:55` (genai-perf) or `hh:mm:ss.mmm ERROR    text (file.py:55)`
_LOGGED = re.compile(r"^(?:\[[^\]]*\]\s*|\d\d:\d\d:\d\d(?:\.\d+)?\s+)?(?:ERROR|CRITICAL)\s+(.*?)"
                     r"(?:\s+\(?[\w./-]+\.py:\d+\)?)?$")
_RAISED = re.compile(r"^[\w.]+(?:Error|Exception): ")
#: pydantic's reason for a refused setting (AIPerf's config), under the line naming the field
_INVALID = re.compile(r"^\w+ error, ")


def tool_error_line(output: str) -> str:
    """The tool's own error line (rich's box drawing stripped), most specific first: perf_analyzer's thread error
    (genai-perf hides its output but not its errors), else the tool's last logged ERROR (with its first one when
    they differ: AIPerf logs each failed request, then a summary), else pydantic's reason for a refused setting
    with the field it names (AIPerf's config), else an ``Error: …`` line or an exception's message, else the last
    line.
    """
    lines = [" ".join(_BOX.sub(" ", line).split()) for line in output.splitlines()]
    lines = [line for line in lines if line]
    pa_thread = [line for line in lines if "had error:" in line]
    if pa_thread:
        return pa_thread[-1][:300]
    logged = [m.group(1) for line in lines if (m := _LOGGED.match(line))
              and m.group(1) and not m.group(1).startswith("Command '")]
    if logged:
        first, last = logged[0][:320], logged[-1][:200]
        return last if first == last else f"{last} (first error: {first})"
    invalid = [f"{field}: {line}" for field, line in zip(["", *lines], lines, strict=False) if _INVALID.match(line)]
    if invalid:
        return invalid[-1][:300]
    plain = [line for line in lines if line.lower().startswith("error:") or _RAISED.match(line)]
    if plain:
        return plain[-1][:300]
    return lines[-1][:300] if lines else "(no output)"


# ---- the shared load generator ------------------------------------------------------------------------

class LlmLoadGenerator(LoadGenerator):
    """Runs one LLM benchmarking tool per RunConfig and reads its export; subclasses say how to call it.

    Built as ``factory(config, context)``: the tool and each profiled model's tokenizer are checked here, so a
    missing install or tokenizer is a one-line error before any server starts.
    """

    model_types = frozenset({"llm"})
    produces = PRODUCES
    tool: str = ""
    path_key: str = ""
    default_binary: str = ""

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.settings = config.settings(LlmSettings)
        check_settings(self.settings)
        self.binary = find_tool(self.path_key, self.configured_path(), self.default_binary)
        self.tokenizers = {model: tokenizer_for(config, self.settings, model) for model in config.profile_models}
        self.last_window_seconds: float | None = None

    @abc.abstractmethod
    def configured_path(self) -> str:
        """The value of this tool's ``<tool>_path`` key."""

    @classmethod
    def workloads(cls, config: ProfileConfig) -> list[dict[str, Any]]:
        """Every `llm_input_tokens` × `llm_output_tokens` combination, in the order given (the first is ranked)."""
        s = config.settings(LlmSettings)
        return [{"llm_input_tokens": i, "llm_output_tokens": o} for i in s.llm_input_tokens for o in s.llm_output_tokens]

    def lengths(self, run_config: RunConfig) -> tuple[int, int]:
        """(input tokens, max output tokens) of this measurement's workload (the settings' first when it has none)."""
        w, s = run_config.load.workload, self.settings
        return int(w.get("llm_input_tokens", s.llm_input_tokens[0])), int(w.get("llm_output_tokens", s.llm_output_tokens[0]))

    @abc.abstractmethod
    def arguments(self, run_config: RunConfig, endpoints: Endpoints, artifact_dir: Path) -> list[str]:
        """The tool's arguments for one RunConfig, writing its artifacts to ``artifact_dir``."""

    @abc.abstractmethod
    def read_export(self, artifact_dir: Path) -> tuple[dict[str, Any], float | None]:
        """The tool's JSON export and the seconds it measured (None when unknown); LoadGeneratorError if absent."""

    def env(self, endpoints: Endpoints) -> dict[str, str]:
        return {**os.environ, **endpoints.loadgen_env}

    def prepare(self, endpoints: Endpoints, artifact_dir: Path) -> None:
        """Write what the arguments refer to (next to ``artifact_dir``) before the tool runs."""

    def tokenizer(self, model: str) -> Path:
        if model not in self.tokenizers:
            self.tokenizers[model] = tokenizer_for(self.config, self.settings, model)
        return self.tokenizers[model]

    def command(self, run_config: RunConfig, endpoints: Endpoints) -> list[str]:
        return [self.binary, *self.arguments(run_config, endpoints, Path(f"<{self.tool}-artifacts>"))]

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        self.last_window_seconds = None
        export_path = Path(self.context.export_path)
        export_path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=export_path, prefix=f".{self.tool}-") as tmp:
            artifacts = Path(tmp) / "artifacts"
            argv = [self.binary, *self.arguments(run_config, endpoints, artifacts)]
            self.prepare(endpoints, artifacts)
            self.context.log.debug("running %s", shlex.join(argv))
            self.context.status(f"{self.tool}: started")
            outcome = run_process(argv, Path(tmp) / "output.txt", float(self.settings.llm_timeout), 0.0,
                                  self.env(endpoints), on_tick=functools.partial(self._show_progress))
            if outcome.killed:
                self._fail(run_config, argv, outcome.output,
                           f"{self.tool} did not finish within llm_timeout={self.settings.llm_timeout} s and was killed")
            if outcome.returncode != 0:
                self._fail(run_config, argv, outcome.output,
                           f"{self.tool} failed (exit {outcome.returncode}): {tool_error_line(outcome.output)}")
            try:
                export, seconds = self.read_export(artifacts)
                metrics = token_metrics(export, self.tool)
            except LoadGeneratorError as err:
                self._fail(run_config, argv, outcome.output, str(err))
        self.last_window_seconds = seconds if seconds is not None else outcome.seconds
        return metrics

    def _show_progress(self, seconds: float, line: str) -> None:
        self.context.status(f"{self.tool}: {seconds:.0f} s" + (f" — {line[:80]}" if line else ""))

    def _fail(self, run_config: RunConfig, argv: list[str], output: str, reason: str) -> NoReturn:
        command = shlex.join(argv)
        message = f"{run_config.describe()}: {reason}"
        try:
            log_path = Path(self.context.export_path) / ERROR_LOG_NAME
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(f"Command:\n{command}\n\nError: {message}\n\n{output.rstrip()}\n\n{'-' * 80}\n")
        except OSError as exc:  # pragma: no cover - unwritable export path
            self.context.log.warning("could not write %s: %s", ERROR_LOG_NAME, exc)
        raise LoadGeneratorError(message=message, command=command, output=output)


@hookimpl
def register_settings(register: Any) -> None:
    register("llm", LlmSettings)
