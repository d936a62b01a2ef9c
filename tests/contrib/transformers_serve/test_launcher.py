"""Integration tests of the `transformers_serve` launcher against a REAL `transformers serve` (.venv-llm) serving
the tiny random-weight Llama made by `bash .ci/setup.d/llm-target.sh`: tokens stream one by one over the OpenAI
chat API, greedy generation is deterministic, the warm server is reused while its knobs stay the same and
restarted when one changes, and stop leaves no process. Skipped when the venv or the model is missing.

One launcher is shared by the tests in file order (start → stream → reuse → restart → stop): two server starts in
all (~10 s each).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from tests.support.configs import profile_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CLI = ROOT / ".venv-llm" / "bin" / "transformers"
REPO = ROOT / "examples" / "llm" / "model_repository"
MODEL = "tiny_llama"
PROMPT = [{"role": "user", "content": "Which launcher keeps the server warm?"}]

if not CLI.exists():
    pytest.skip(f"no {CLI.relative_to(ROOT)}: run `bash .ci/setup.d/llm-target.sh`", allow_module_level=True)
if not (REPO / MODEL / "config.json").is_file():
    pytest.skip(f"no {REPO.relative_to(ROOT)}/{MODEL}: run `bash .ci/setup.d/llm-target.sh`", allow_module_level=True)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def launcher(export: Path) -> Any:
    from modelyzer_transformers_serve.launcher import TransformersServeLauncher

    config = profile_config(model_repository=REPO, profile_models=MODEL, transformers_serve_path=str(CLI))
    ts = TransformersServeLauncher(config, RunContext(export_path=export, output_model_repository=export / "omr"))
    yield ts
    ts.stop()


def variant(name: str, **parameters: str) -> ConfigVariant:
    config: dict[str, Any] = {"name": MODEL, "backend": "transformers", "max_batch_size": 0}
    if parameters:
        config["parameters"] = {k: {"string_value": v} for k, v in parameters.items()}
    return ConfigVariant(model=MODEL, config=config, name=name)


def ensure(launcher: Any, v: ConfigVariant, export: Path, concurrency: int = 1) -> Endpoints:
    run_config = RunConfig(model=MODEL, variant=v, load=LoadSpec(concurrency=concurrency))
    endpoints: Endpoints = launcher.ensure(v, export / "omr", run_config)
    return endpoints


def chat(endpoints: Endpoints, max_tokens: int, stream: bool) -> urllib.request.Request:
    body = {"model": endpoints.model_name, "messages": PROMPT, "max_tokens": max_tokens, "stream": stream}
    return urllib.request.Request(f"http://{endpoints.http}/v1/chat/completions", data=json.dumps(body).encode(),
                                  headers={"Content-Type": "application/json"})  # fmt: skip


def stream_chat(endpoints: Endpoints, max_tokens: int) -> tuple[list[float], list[str], str]:
    """(arrival time of each content chunk since the request, the chunks, the finish reason)."""
    started, times, texts, finish = time.perf_counter(), [], [], ""
    with urllib.request.urlopen(chat(endpoints, max_tokens, stream=True), timeout=60) as resp:
        assert resp.headers.get_content_type() == "text/event-stream"
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            choice = json.loads(line[5:])["choices"][0]
            finish = choice.get("finish_reason") or finish
            if choice["delta"].get("content"):
                times.append(time.perf_counter() - started)
                texts.append(choice["delta"]["content"])
    return times, texts, finish


def complete(endpoints: Endpoints, max_tokens: int) -> str:
    with urllib.request.urlopen(chat(endpoints, max_tokens, stream=False), timeout=60) as resp:
        return str(json.load(resp)["choices"][0]["message"]["content"])


def test_start_serves_the_model_on_the_openai_api(launcher: Any, export: Path) -> None:
    launcher.start()  # checks only: the first variant's knobs make the first start
    assert launcher.server_starts == 0
    started = time.monotonic()
    endpoints = ensure(launcher, variant(f"{MODEL}_config_default"), export)
    print(f"\ntransformers serve ready in {time.monotonic() - started:.1f} s")
    assert launcher.server_starts == 1
    assert endpoints.api == "openai" and endpoints.protocol == "http" and endpoints.model_name == MODEL
    assert endpoints.server_pid is not None and psutil.pid_exists(endpoints.server_pid)
    assert endpoints.http.startswith("127.0.0.1:")
    with urllib.request.urlopen(f"http://{endpoints.http}/v1/models", timeout=10) as resp:
        assert [m["id"] for m in json.load(resp)["data"]] == [MODEL]
    assert (export / "transformers_serve" / "server.log").is_file()


def test_tokens_stream_one_by_one(launcher: Any, export: Path) -> None:
    endpoints = ensure(launcher, variant(f"{MODEL}_config_default"), export)
    times, texts, finish = stream_chat(endpoints, max_tokens=64)
    assert finish == "length"
    # one chunk per generated token, except where a token's bytes make no text yet or the client fell behind
    assert len(texts) >= 8, texts
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(gap > 0 for gap in gaps), times
    # a forward pass per token: most chunks come apart in time (a buffered answer would arrive in microseconds)
    assert sum(gap > 0.0005 for gap in gaps) >= len(gaps) / 2, gaps
    rate = 64 / (times[-1] - times[0])
    print(f"\n{len(texts)} chunks; first after {times[0] * 1000:.0f} ms; {rate:.0f} tokens/s after it")


def test_greedy_generation_is_deterministic(launcher: Any, export: Path) -> None:
    endpoints = ensure(launcher, variant(f"{MODEL}_config_default"), export)
    first = complete(endpoints, 24)
    assert first and complete(endpoints, 24) == first
    # the stream holds back a trailing partial UTF-8 byte token (the tiny byte-level tokenizer can end on one), which
    # the one-shot completion decodes as U+FFFD: the same text otherwise
    assert complete_text("".join(stream_chat(endpoints, 24)[1])) == complete_text(first)


def complete_text(text: str) -> str:
    return text.rstrip("\ufffd \n")


def test_same_knobs_reuse_the_warm_server(launcher: Any, export: Path) -> None:
    pid = ensure(launcher, variant(f"{MODEL}_config_default"), export).server_pid
    again = ensure(launcher, variant(f"{MODEL}_config_1"), export, concurrency=4)  # another name and load
    assert launcher.server_starts == 1 and again.server_pid == pid


def test_a_changed_knob_restarts_the_server(launcher: Any, export: Path) -> None:
    old = ensure(launcher, variant(f"{MODEL}_config_default"), export).server_pid
    assert old is not None
    endpoints = ensure(launcher, variant(f"{MODEL}_config_2", attn_implementation="eager"), export)
    assert launcher.server_starts == 2 and endpoints.server_pid != old
    assert not psutil.pid_exists(old)
    assert "--attn-implementation eager" in (export / "transformers_serve" / "server.log").read_text()
    assert len(stream_chat(endpoints, 16)[1]) >= 4
    assert ensure(launcher, variant(f"{MODEL}_config_3", attn_implementation="eager"), export).server_pid \
        == endpoints.server_pid


def test_stop_leaves_no_process(launcher: Any, export: Path) -> None:
    pid = ensure(launcher, variant(f"{MODEL}_config_2", attn_implementation="eager"), export).server_pid
    assert pid is not None
    group = [p for p in psutil.process_iter() if _pgid(p) == pid]
    assert group  # the server leads its own process group
    launcher.stop()
    assert not launcher.running
    assert not [p for p in group if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    launcher.stop()  # idempotent
    assert (export / "transformers_serve" / "server.log").stat().st_size > 0


def test_a_server_left_by_a_killed_profile_is_stopped_at_the_next_start(launcher: Any, export: Path) -> None:
    """What SIGKILL of a profile leaves: a running server nobody owns. The next launcher with the same export path
    finds it by its pidfile, checks its command line, and stops its whole group before starting its own."""
    from modelyzer_transformers_serve.launcher import TransformersServeLauncher, group_members

    pid = ensure(launcher, variant(f"{MODEL}_config_3"), export).server_pid
    assert pid is not None and (export / "transformers_serve" / "transformers_serve.pid").exists()
    left = group_members(pid)
    launcher._proc = None  # forgotten, as by a SIGKILLed profile (the module fixture's stop() then has nothing)
    nxt = TransformersServeLauncher(launcher.config, launcher.context)
    try:
        endpoints = ensure(nxt, variant(f"{MODEL}_config_3"), export)
        gone, alive = psutil.wait_procs(left, timeout=20)
        assert not alive, [p.pid for p in alive]
        assert endpoints.server_pid not in (None, pid) and nxt.server_starts == 1
    finally:
        nxt.stop()
    assert not (export / "transformers_serve" / "transformers_serve.pid").exists()


def _pgid(proc: psutil.Process) -> int | None:
    import os

    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None
