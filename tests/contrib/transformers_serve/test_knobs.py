"""The `transformers_serve` plugin without a server: its entry point and key, the variant knobs → flags mapping, and
the one-line errors raised before or right after a spawn (CLI missing, model directory missing, busy port, a server
that exits)."""

from __future__ import annotations

import importlib.metadata
import socket
import stat
from pathlib import Path
from typing import Any

import psutil
import pytest
from modelyzer_transformers_serve import settings as settings_mod
from modelyzer_transformers_serve.knobs import flags_of, knobs_of
from modelyzer_transformers_serve.launcher import TransformersServeLauncher
from modelyzer_transformers_serve.settings import TransformersServeSettings, resolve_cli

from modelyzer.kernel.errors import LaunchError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, LoadSpec, RunConfig
from tests.support.configs import profile_config

MODEL = "tiny"


def test_entry_point_registers_the_launcher_and_its_key() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="modelyzer") if e.name == "transformers_serve"]
    plugin = entry.load()
    launchers: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    plugin.register_launchers(lambda name, factory: launchers.setdefault(name, factory))
    plugin.register_settings(lambda name, factory: settings.setdefault(name, factory))
    assert launchers == {"transformers_serve": TransformersServeLauncher}
    assert settings == {"transformers_serve": TransformersServeSettings}
    caps = TransformersServeLauncher
    assert (caps.serves_metrics, caps.starts_server, caps.on_this_host) == (False, True, True)


def test_knobs_from_plain_and_triton_parameters() -> None:
    config = {
        "name": MODEL,
        "instance_group": [{"count": 2}],  # no meaning here: ignored
        "parameters": {
            "continuous_batching": {"string_value": "true"},
            "attn_implementation": "eager",
            "compile": False,
            "max_model_len": {"string_value": "512"},
        },
    }
    knobs = knobs_of(config)
    assert knobs == {"continuous_batching": True, "attn_implementation": "eager", "compile": False,
                     "max_model_len": 512}  # fmt: skip
    assert flags_of(knobs) == ["--attn-implementation", "eager", "--no-compile", "--continuous-batching",
                               "--max-model-len", "512"]  # fmt: skip
    assert knobs_of({"name": MODEL}) == {}


@pytest.mark.parametrize(
    ("parameters", "needle"),
    [
        ({"workers": 2}, "unknown server knob parameters.workers"),
        ({"continuous_batching": "maybe"}, "parameters.continuous_batching"),
        ({"max_model_len": "long"}, "expected an integer"),
        ({"dtype": {"int64_value": 3}}, "parameters.dtype"),
    ],
)
def test_a_bad_knob_is_one_line_naming_it(parameters: dict[str, Any], needle: str) -> None:
    with pytest.raises(LaunchError) as err:
        knobs_of({"parameters": parameters}, "tiny_config_1")
    assert needle in str(err.value) and "tiny_config_1" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_cli_names_the_key_and_the_set_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"transformers_serve_path='/nope/transformers' is not an executable"):
        resolve_cli("/nope/transformers")
    monkeypatch.setattr(settings_mod, "VENV_CLI", Path("no-such-venv/bin/transformers"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LaunchError) as err:
        resolve_cli("")
    text = str(err.value)
    assert "transformers_serve_path" in text and "bash .ci/setup.d/llm-target.sh" in text and "\n" not in text


def fake_cli(tmp_path: Path, body: str) -> Path:
    """A stand-in `transformers` CLI (a shell script), for the launcher's failure paths."""
    script = tmp_path / "bin" / "transformers"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def launcher_for(tmp_path: Path, cli: Path, **values: Any) -> TransformersServeLauncher:
    repo = tmp_path / "repo"
    (repo / MODEL).mkdir(parents=True, exist_ok=True)
    (repo / MODEL / "config.json").write_text("{}")
    config = profile_config(model_repository=repo, profile_models=MODEL, transformers_serve_path=str(cli),
                            client_max_retries=5, **values)  # fmt: skip
    return TransformersServeLauncher(config, RunContext(export_path=tmp_path / "out",
                                                        output_model_repository=tmp_path / "omr"))  # fmt: skip


def ensure(launcher: TransformersServeLauncher, tmp_path: Path, model: str = MODEL) -> Any:
    variant = ConfigVariant(model=model, config={"name": model}, name=f"{model}_config_default")
    return launcher.ensure(variant, tmp_path / "omr", RunConfig(model=model, variant=variant, load=LoadSpec()))


def test_missing_model_directory_is_one_line(tmp_path: Path) -> None:
    launcher = launcher_for(tmp_path, fake_cli(tmp_path, "sleep 30"))
    with pytest.raises(LaunchError) as err:
        ensure(launcher, tmp_path, model="absent")
    text = str(err.value)
    assert "model directory" in text and str(tmp_path / "repo" / "absent") in text and "\n" not in text
    assert launcher.server_starts == 0 and not launcher.running


def test_a_server_that_exits_is_one_line_with_its_last_log_lines(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, 'echo "loading $2"; echo "ValueError: no such attention" >&2; exit 3')
    launcher = launcher_for(tmp_path, cli)
    with pytest.raises(LaunchError) as err:
        ensure(launcher, tmp_path)
    text = str(err.value)
    assert "exited with code 3" in text and f"loading {MODEL}" in text and "ValueError: no such attention" in text
    assert "\n" not in text
    assert (tmp_path / "out" / "transformers_serve" / "server.log").is_file()
    launcher.stop()


def test_a_busy_port_is_one_line_naming_the_key(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        launcher = launcher_for(tmp_path, fake_cli(tmp_path, "sleep 30"), triton_http_endpoint=f"127.0.0.1:{port}")
        with pytest.raises(LaunchError) as err:
            ensure(launcher, tmp_path)
    text = str(err.value)
    assert f"port {port}" in text and "triton_http_endpoint" in text and "\n" not in text
    assert not launcher.running


class QuickLauncher(TransformersServeLauncher):
    """Gives up on readiness after a second (the failure paths need no two-minute wait)."""

    poll_seconds = 0.05

    @property
    def ready_seconds(self) -> float:
        return 1.0


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    # a "server" that never gets ready and has a child: the start times out, and the child goes with the leader
    child_pid = tmp_path / "child.pid"
    cli = fake_cli(tmp_path, f"sleep 300 & echo $! > {child_pid}; echo started; wait")
    base = launcher_for(tmp_path, cli)
    launcher = QuickLauncher(base.config, base.context)
    with pytest.raises(LaunchError, match="did not answer /health") as err:
        ensure(launcher, tmp_path)
    assert "\n" not in str(err.value) and "started" in str(err.value)
    pid = int(child_pid.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not launcher.running
