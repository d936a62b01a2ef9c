"""The ``aiperf`` load generator: NVIDIA AIPerf 0.13 (pure Python) for LLMs.

One ``aiperf profile`` run per RunConfig, with synthetic prompts of ``llm_input_tokens`` tokens and
``max_tokens`` = ``llm_output_tokens``, counted with the local ``tokenizer``:

- ``Endpoints.api == "openai"``: ``--endpoint-type chat --streaming -u http://<http>``;
- ``"kserve"`` (Triton): ``--endpoint-type template --custom-endpoint /v2/models/<model>/generate_stream
  --streaming`` with a payload template file (``text_input``, ``max_tokens``, ``stream``) and ``response_field:text_output``.

The load is ``--concurrency N`` or ``--request-rate R``; the window ``--request-count`` (``llm_request_count``) or
``--benchmark-duration`` (``llm_measurement_seconds``). ``aiperf_flags`` (whitelisted below) come last and win.
``HF_HUB_OFFLINE`` is removed from its environment: with it AIPerf sends a local tokenizer path through
``snapshot_download`` and fails. The metrics come from ``profile_export_aiperf.json`` (latencies in ms, as its
``unit`` fields say); ``last_window_seconds`` is its ``benchmark_duration``.
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
from modelyzer.plugins.loadgen.llm_common import TO_MS, LlmLoadGenerator, base_url, flag_args, load_args

DEFAULT_BINARY = "aiperf"
EXPORT_NAME = "profile_export_aiperf.json"
TEMPLATE_NAME = "payload_template.json"
#: Triton's generate_stream request as genai-perf sends it: the prompt as `text_input`, the output budget as
#: `max_tokens`, and `stream` (Triton's LLM backends, like vLLM's, stream only when it is true)
KSERVE_TEMPLATE = ('{"text_input": {{ text|tojson }}, "max_tokens": {{ max_tokens|tojson }}, '
                   '"stream": {{ stream|tojson }}}')
AIPERF_FLAGS = frozenset(
    """request-timeout-seconds extra-inputs header random-seed prompt-input-tokens-stddev
    prompt-output-tokens-stddev num-dataset-entries conversation-num warmup-request-count warmup-duration
    benchmark-grace-period arrival-pattern custom-endpoint endpoint-type use-server-token-count
    use-legacy-max-tokens goodput workers-max request-count benchmark-duration input-file custom-dataset-type
    apply-chat-template system-prompt concurrency-ramp-duration request-rate-ramp-duration
    failed-request-threshold request-cancellation-rate request-cancellation-delay""".split()
)


@attrs.frozen
class AiperfSettings:
    """The keys only aiperf reads."""

    aiperf_path: str = attrs.field(default=DEFAULT_BINARY, metadata={
        "help": "aiperf executable; default: the set-up's .tools/bin/aiperf, then PATH."})
    aiperf_flags: dict[str, Any] = attrs.field(factory=dict, metadata={
        "help": "Extra aiperf flags (kebab-case, whitelisted).", "flags": AIPERF_FLAGS, "tool": "aiperf"})


class AiperfLoadGenerator(LlmLoadGenerator):
    """Measures one RunConfig with AIPerf; see the module docstring."""

    preference = 10
    tool = "aiperf"
    path_key = "aiperf_path"
    default_binary = DEFAULT_BINARY

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.own = config.settings(AiperfSettings)
        super().__init__(config, context)

    def configured_path(self) -> str:
        return self.own.aiperf_path

    def env(self, endpoints: Endpoints) -> dict[str, str]:
        env = super().env(endpoints)
        env.pop("HF_HUB_OFFLINE", None)
        return env

    def arguments(self, run_config: RunConfig, endpoints: Endpoints, artifact_dir: Path) -> list[str]:
        s = self.settings
        input_tokens, output_tokens = self.lengths(run_config)
        model = endpoints.model_name or run_config.model
        flags: dict[str, Any] = {"model": model}
        extra = [f"max_tokens:{output_tokens}"]
        if endpoints.api == "openai":
            flags["endpoint-type"] = "chat"
        else:
            flags |= {"endpoint-type": "template", "custom-endpoint": f"/v2/models/{model}/generate_stream"}
            extra += [f"payload_template:{artifact_dir.parent / TEMPLATE_NAME}", "response_field:text_output"]
        flags |= {"streaming": True, "url": base_url(endpoints), "tokenizer": str(self.tokenizer(run_config.model))}
        window: dict[str, Any] = ({"request-count": s.llm_request_count} if s.llm_request_count
                                  else {"benchmark-duration": s.llm_measurement_seconds})
        flags |= window | {
            "prompt-input-tokens-mean": input_tokens,
            "prompt-input-tokens-stddev": 0,
            "prompt-output-tokens-mean": output_tokens,
            "random-seed": 0,
            "ui-type": "none",
            "no-server-metrics": True,
            "no-gpu-telemetry": True,
            "output-artifact-dir": str(artifact_dir),
        }
        user = dict(self.own.aiperf_flags)
        if {"request-count", "benchmark-duration"} & user.keys():
            for key in window:
                flags.pop(key, None)
        given = user.pop("extra-inputs", [])
        extra += given if isinstance(given, list) else [given]
        flags |= user
        flags["extra-inputs"] = extra
        return ["profile", *flag_args(flags), *load_args(run_config, self.tool)]

    def prepare(self, endpoints: Endpoints, artifact_dir: Path) -> None:
        if endpoints.api != "openai":
            (artifact_dir.parent / TEMPLATE_NAME).write_text(KSERVE_TEMPLATE + "\n")

    def read_export(self, artifact_dir: Path) -> tuple[dict[str, Any], float | None]:
        path = artifact_dir / EXPORT_NAME
        if not path.is_file():
            raise LoadGeneratorError(f"aiperf wrote no {EXPORT_NAME}")
        export: dict[str, Any] = json.loads(path.read_text())
        errors = export.get("error_summary") or []
        if errors and not export.get("request_count"):
            raise LoadGeneratorError(f"aiperf: every request failed: {json.dumps(errors)[:300]}")
        duration = export.get("benchmark_duration")
        seconds = None
        if isinstance(duration, dict) and duration.get("avg") is not None:
            seconds = float(duration["avg"]) * TO_MS.get(str(duration.get("unit", "sec")), 1e3) / 1e3
        return export, seconds


@hookimpl
def register_load_generators(register: Any) -> None:
    register("aiperf", AiperfLoadGenerator)


@hookimpl
def register_settings(register: Any) -> None:
    register("aiperf", AiperfSettings)
