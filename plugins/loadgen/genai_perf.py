"""The ``genai_perf`` load generator: NVIDIA genai-perf 0.0.16 (which drives the perf_analyzer binary) for LLMs.

One ``genai-perf profile`` run per RunConfig, with synthetic prompts of ``llm_input_tokens`` tokens and
``max_tokens`` = ``llm_output_tokens``, counted with the local ``tokenizer``:

- ``Endpoints.api == "openai"``: ``--endpoint-type chat --streaming -u http://<http>`` (``/v1/chat/completions``);
- ``"kserve"`` (Triton): ``--endpoint-type generate --endpoint v2/models/<model>/generate_stream --streaming``.

The load is ``--concurrency N`` or ``--request-rate R``; the window ``--request-count`` (``llm_request_count``) or
``--measurement-interval`` (genai-perf measures three such intervals, so ``llm_measurement_seconds`` / 3 each).
No warm-up: perf_analyzer 2.51 never finishes a ``--warmup-request-count`` run at concurrency > 1 (it keeps
sending requests). ``genai_perf_flags`` (per model or global) come last and win; Model Analyzer's older flag names
are translated (``input-tokens-mean`` → ``synthetic-input-tokens-mean``, …) and the ones genai-perf 0.0.16 no longer
has are dropped with a warning. The metrics come from ``profile_export_genai_perf.json`` (its latencies are in ms,
as its ``unit`` fields say); ``last_window_seconds`` is the span from the first request sent to the last response
received, from perf_analyzer's ``profile_export.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LoadGeneratorError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, RunConfig
from modelyzer.plugins.loadgen.llm_common import LlmLoadGenerator, base_url, flag_args, load_args

DEFAULT_BINARY = "genai-perf"
EXPORT_NAME = "profile_export_genai_perf.json"
PA_EXPORT_NAME = "profile_export.json"
#: Model Analyzer's genai-perf flag names → genai-perf 0.0.16's (None: gone, dropped with a warning)
RENAMED_FLAGS: dict[str, str | None] = {
    "input-tokens-mean": "synthetic-input-tokens-mean",
    "input-tokens-stddev": "synthetic-input-tokens-stddev",
    "expected-output-tokens": "output-tokens-mean",
    "num-of-output-prompts": "num-dataset-entries",
    "service-kind": None,
    "input-type": None,
    "input-dataset": None,
}


@attrs.frozen
class GenaiPerfSettings:
    """The keys only genai_perf reads (its flags are the `genai_perf_flags` key, global or per model)."""

    genai_perf_path: str = attrs.field(default=DEFAULT_BINARY, metadata={
        "help": "genai-perf executable; default: the set-up's .tools/bin/genai-perf, then PATH."})


class GenaiPerfLoadGenerator(LlmLoadGenerator):
    """Measures one RunConfig with genai-perf; see the module docstring."""

    preference = 20
    tool = "genai-perf"
    path_key = "genai_perf_path"
    default_binary = DEFAULT_BINARY

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.own = config.settings(GenaiPerfSettings)
        super().__init__(config, context)

    def configured_path(self) -> str:
        return self.own.genai_perf_path

    def user_flags(self, model: str) -> dict[str, Any]:
        try:
            flags = dict(self.config.model(model).genai_perf_flags)
        except KeyError:
            flags = dict(self.config.genai_perf_flags)
        out: dict[str, Any] = {}
        for key, value in flags.items():
            new = RENAMED_FLAGS.get(key, key)
            if new is None:
                self.context.log.warning("genai_perf_flags.%s: genai-perf 0.0.16 has no such flag; ignored", key)
                continue
            out[new] = value
        return out

    def arguments(self, run_config: RunConfig, endpoints: Endpoints, artifact_dir: Path) -> list[str]:
        s = self.settings
        input_tokens, output_tokens = self.lengths(run_config)
        model = endpoints.model_name or run_config.model
        flags: dict[str, Any] = {"model": model}
        if endpoints.api == "openai":
            flags["endpoint-type"] = "chat"
        else:
            flags |= {"endpoint-type": "generate", "endpoint": f"v2/models/{model}/generate_stream"}
        flags |= {"streaming": True, "url": base_url(endpoints), "tokenizer": str(self.tokenizer(run_config.model))}
        window: dict[str, Any] = (
            {"request-count": s.llm_request_count} if s.llm_request_count
            else {"measurement-interval": max(1, round(s.llm_measurement_seconds * 1000 / 3))})
        flags |= window | {
            "synthetic-input-tokens-mean": input_tokens,
            "synthetic-input-tokens-stddev": 0,
            "output-tokens-mean": output_tokens,
            "random-seed": 0,
            "artifact-dir": str(artifact_dir),
            "profile-export-file": PA_EXPORT_NAME,
        }
        user = self.user_flags(run_config.model)
        if {"request-count", "measurement-interval"} & user.keys():
            for key in window:
                flags.pop(key, None)
        extra = [f"max_tokens:{output_tokens}"]
        given = user.pop("extra-inputs", [])
        extra += given if isinstance(given, list) else [given]
        flags |= user
        flags["extra-inputs"] = extra
        load = load_args(run_config, self.tool)
        return ["profile", *flag_args(flags), *load]

    def read_export(self, artifact_dir: Path) -> tuple[dict[str, Any], float | None]:
        found = sorted(artifact_dir.rglob(EXPORT_NAME))
        if not found:
            raise LoadGeneratorError(f"genai-perf wrote no {EXPORT_NAME}")
        export: dict[str, Any] = json.loads(found[0].read_text())
        return export, window_seconds(found[0].parent / PA_EXPORT_NAME)


def window_seconds(pa_export: Path) -> float | None:
    """First request sent → last response received (perf_analyzer's ns timestamps), None when not readable."""
    try:
        data = json.loads(pa_export.read_text())
        requests = [r for e in data["experiments"] for r in e["requests"]]
        starts = [int(r["timestamp"]) for r in requests]
        ends = [int(t) for r in requests for t in r.get("response_timestamps", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not starts or not ends:
        return None
    return max(0.0, (max(ends) - min(starts)) / 1e9)


@hookimpl
def register_load_generators(register: Any) -> None:
    register("genai_perf", GenaiPerfLoadGenerator)


@hookimpl
def register_settings(register: Any) -> None:
    register("genai_perf", GenaiPerfSettings)
