"""The ``local`` launcher's rules, without a server: flag validation and rendering, the environment (GPUs made
visible by UUID — there are none here to start a real server on), ports in use, another server answering, a
missing binary, and the leftover check of the pidfile.

Everything a server does (start, load-with-config, restarts, a server that exits or never gets ready, the log
tail, a SIGKILLed profile's leftover) runs against the real Triton in test_local_triton.py.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, LaunchError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, LoadSpec, RunConfig
from modelyzer.plugins.codecs.pbtxt import PbtxtCodec
from modelyzer.plugins.launchers import local as ll
from modelyzer.plugins.launchers import triton_server_flags as tsf
from modelyzer.plugins.launchers.local_server import PidFile, port_of
from tests.conftest import QUICK_START
from tests.support.configs import profile_config

REPO = QUICK_START / "model_repository"


def make_config(tmp_path: Path, **overrides: Any) -> ProfileConfig:
    """The endpoints keep their defaults unless a test sets one (then it is user-set: its port is used)."""
    values: dict[str, Any] = dict(
        model_repository=REPO,
        triton_server_path="tritonserver",
        triton_output_path=None,
        triton_server_flags={},
        triton_server_environment={},
        client_protocol="grpc",
        client_max_retries=60,
        monitoring_interval=0.5,
    )
    values.update(overrides)
    return profile_config(**values)


def make_launcher(
    tmp_path: Path, gpus: list[Any] | None = None, export: Path | None = None, **overrides: Any
) -> ll.LocalLauncher:
    context = RunContext(export_path=export or tmp_path / "export", output_model_repository=tmp_path / "omr",
                         gpus=gpus or [])  # fmt: skip
    return ll.LocalLauncher(make_config(tmp_path, **overrides), context)


def base_config() -> dict[str, Any]:
    return PbtxtCodec().read(REPO / "add_sub" / "config.pbtxt")


FLAGS = {"log_info": True}


def rc(config: dict[str, Any], name: str, env: dict[str, str] | None = None) -> RunConfig:
    """A RunConfig as brute search makes them: the model's server flags and environment."""
    variant = ConfigVariant("add_sub", config, name=name)
    return RunConfig("add_sub", variant, LoadSpec(concurrency=1), server_flags=FLAGS, server_env=env or {})


def records(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())) if path.exists() else []


# --- no server -------------------------------------------------------------------------------------------
def test_flags_are_validated_kebab_cased_and_the_launchers_own_win() -> None:
    assert tsf.check_flags({"log_verbose": 1, "backend-config": ["a=1", "b=2"]}) == {
        "log-verbose": 1, "backend-config": ["a=1", "b=2"]}  # fmt: skip
    with pytest.raises(ConfigError, match=r"triton_server_flags\.log_verbos: .*did you mean 'log-verbose'"):
        tsf.check_flags({"log_verbos": 1})
    warnings: list[str] = []
    argv = tsf.server_argv(
        "/bin/tritonserver",
        {"model-repository": "/m", "http-port": 9000},
        {"http_port": 1234, "model_store": "/x", "allow_gpu_metrics": False, "backend_config": ["a=1", "b=2"]},
        warnings.append,
    )
    assert argv == ["/bin/tritonserver", "--model-repository=/m", "--http-port=9000",
                    "--allow-gpu-metrics=false", "--backend-config=a=1", "--backend-config=b=2"]  # fmt: skip
    assert len(warnings) == 2 and "http-port=1234 is ignored" in warnings[0] and "--model-repository" in warnings[1]


def test_unknown_flags_fail_at_construction(tmp_path: Path) -> None:
    # (the config loader has kebab-cased the key already)
    with pytest.raises(ConfigError, match=r"triton_server_flags\.strict[-_]model: is not a tritonserver option"):
        make_launcher(tmp_path, triton_server_flags={"strict_model": True})


def test_command_line_environment_and_ports(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gpus = ["GPU-aaaa", types.SimpleNamespace(uuid="GPU-bbbb")]  # UUID strings or GPU devices
    lau = make_launcher(tmp_path, gpus=gpus, triton_server_path="/bin/sh", monitoring_interval=0.25,
                        triton_http_endpoint="localhost:8123")  # fmt: skip
    assert lau.config.user_set >= {"triton_http_endpoint"}
    lau.choose_ports()
    assert lau.ports["http"] == 8123 and len(set(lau.ports.values())) == 3
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        argv = lau.command({"log-verbose": 1, "metrics-interval-ms": 5})
    assert argv == ["/bin/sh", f"--model-repository={REPO.resolve()}", "--model-control-mode=explicit",
                    "--http-port=8123", f"--grpc-port={lau.ports['grpc']}", f"--metrics-port={lau.ports['metrics']}",
                    "--metrics-interval-ms=250", "--log-verbose=1"]  # fmt: skip
    assert "metrics-interval-ms=5 is ignored" in caplog.text
    env = lau.environment({"MY_DIR": "$HOME/models", "PLAIN": "x"})
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-aaaa,GPU-bbbb" and env["MY_DIR"] == f"{os.environ['HOME']}/models"
    assert env["PATH"] == os.environ["PATH"] and env["PLAIN"] == "x"
    assert make_launcher(tmp_path).environment({})["CUDA_VISIBLE_DEVICES"] == ""  # no GPU selected: none visible
    assert lau.endpoints("add_sub").http == "localhost:8123"
    assert lau.endpoints("add_sub").grpc == f"127.0.0.1:{lau.ports['grpc']}"
    assert port_of("triton_metrics_url", "http://h:9002/metrics") == 9002
    with pytest.raises(ConfigError, match="triton_grpc_endpoint: no port"):
        port_of("triton_grpc_endpoint", "localhost")


def test_missing_binary_is_one_line(tmp_path: Path) -> None:
    lau = make_launcher(tmp_path, triton_server_path="no-such-tritonserver")
    with pytest.raises(LaunchError) as err:
        lau.start()
    assert "\n" not in str(err.value) and "triton_server_path" in str(err.value)
    assert "'no-such-tritonserver' is not an executable on PATH" in str(err.value)
    lau.stop()
    lau.stop()


@pytest.fixture
def busy_port() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_a_port_in_use_is_an_error(tmp_path: Path, busy_port: socket.socket) -> None:
    port = busy_port.getsockname()[1]
    lau = make_launcher(tmp_path, triton_server_path="/bin/true", triton_grpc_endpoint=f"localhost:{port}")
    with pytest.raises(LaunchError, match=f"port {port} \\(triton_grpc_endpoint\\) is already in use"):
        lau.start()


def test_another_server_answering_is_an_error(tmp_path: Path) -> None:
    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        lau = make_launcher(tmp_path, triton_server_path="/bin/true", triton_http_endpoint=f"127.0.0.1:{port}")
        with pytest.raises(LaunchError) as err:
            lau.start()
        assert f"another server is already answering on port {port} (triton_http_endpoint; HTTP 200" in str(err.value)
        assert "triton_launch_mode remote" in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


def test_leftover_check_verifies_the_command_line(tmp_path: Path) -> None:
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        pidfile = PidFile(tmp_path / "tritonserver.pid", logging.getLogger("test"))
        pidfile.write(victim.pid, ["x", "70"])
        assert pidfile.stop_leftover(grace=5) is None  # another command under that PID: left alone
        assert victim.poll() is None and not pidfile.path.exists()
        pidfile.write(victim.pid, ["/x/sleep", "60"])  # a script's cmdline starts with its interpreter
        data = json.loads(pidfile.path.read_text())
        pidfile.path.write_text(json.dumps({**data, "create_time": data["create_time"] - 5}))  # PID reused
        assert pidfile.stop_leftover(grace=5) is None and victim.poll() is None
        pidfile.write(victim.pid, ["/x/sleep", "60"])
        assert pidfile.stop_leftover(grace=5) == victim.pid
        victim.wait(timeout=10)  # (already reaped by stop_leftover's wait, as our child)
        assert not psutil.pid_exists(victim.pid) and not pidfile.path.exists()
    finally:
        victim.kill()
        victim.wait()
