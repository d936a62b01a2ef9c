"""The ``local`` launcher, against the stand-in ``tritonserver`` (``tests/support/fake_tritonserver.py``: Triton's
flags in front, a real MLServer behind) and the real perf_analyzer.

Without servers: flag validation and rendering, environment, ports in use, a missing binary, a server that
exits or never gets ready. With the stand-in (``integration``): loads with a config override and restarts only on
flag/env changes, Triton's reason for a refused load, a full ``modelyzer profile``, and the server a SIGKILLed
profile leaves behind being stopped by the next start.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, LaunchError, ModelLoadError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, LoadSpec, RunConfig
from modelyzer.plugins.codecs.pbtxt import PbtxtCodec
from modelyzer.plugins.launchers import local as ll
from modelyzer.plugins.launchers import triton_server_flags as tsf
from modelyzer.plugins.launchers.local_server import PidFile, port_of
from tests.conftest import QUICK_START, modelyzer_cmd, real_server_available
from tests.support.configs import profile_config
from tests.support.fake_tritonserver import HANG_ENV, RECORD_ENV, make_executable

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


def test_exit_while_starting_shows_the_log(tmp_path: Path) -> None:
    script = tmp_path / "tritonserver"
    script.write_text("#!/bin/sh\necho 'E0101 00:00:00.000 1 server.cc:1] failed to load all models'\nexit 3\n")
    script.chmod(0o755)
    lau = make_launcher(tmp_path, triton_server_path=str(script))
    with pytest.raises(LaunchError) as err:
        lau.start()
    assert "exited with code 3 while starting" in str(err.value) and "failed to load all models" in str(err.value)
    assert lau.server_starts == 0 and not lau.pidfile.exists()


def test_readiness_timeout_reports_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HANG_ENV, "1")
    log = tmp_path / "server.log"
    lau = make_launcher(tmp_path, triton_server_path=str(make_executable(tmp_path / "bin")), client_max_retries=2,
                        triton_output_path=log)  # fmt: skip
    start = time.monotonic()
    with pytest.raises(LaunchError) as err:
        lau.start()
    message = str(err.value)
    assert "did not become ready within 2 s (client_max_retries=2" in message and str(log) in message
    assert "hanging before readiness" in message and time.monotonic() - start < 15
    assert lau.proc is None and not lau.pidfile.exists()


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


# --- with the stand-in (MLServer behind) -------------------------------------------------------------
@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    if reason := real_server_available():
        pytest.skip(reason)
    record = tmp_path / "record.json"
    monkeypatch.setenv(RECORD_ENV, str(record))
    return make_executable(tmp_path / "bin"), record


@pytest.mark.integration
def test_loads_variants_and_restarts_only_for_new_env(tmp_path: Path, stand_in: tuple[Path, Path]) -> None:
    binary, record = stand_in
    lau = make_launcher(tmp_path, triton_server_path=str(binary), triton_server_flags=FLAGS)
    try:
        lau.start()
        pid = lau.proc.pid if lau.proc else 0
        assert json.loads(lau.pidfile.read_text())["pid"] == pid
        base = base_config()
        first = lau.ensure(rc(base, "add_sub_config_default").variant, tmp_path, rc(base, "add_sub_config_default"))
        assert first.model_name == "add_sub" and first.server_pid == pid and first.protocol == "grpc"
        assert first.grpc == f"127.0.0.1:{lau.ports['grpc']}" and first.metrics_url.endswith(f":{lau.ports['metrics']}/metrics")
        batched = {**base, "max_batch_size": 4, "dynamic_batching": {}}
        for _ in range(2):  # the same config again is not reloaded
            lau.ensure(rc(batched, "add_sub_config_0").variant, tmp_path, rc(batched, "add_sub_config_0"))
        assert (lau.server_starts, lau.model_loads) == (1, 2)
        assert lau.repository.client.get_model_config("add_sub")["max_batch_size"] == 4  # served under its own name

        gpu = {**base, "instance_group": [{"count": 1, "kind": "KIND_GPU"}]}
        with pytest.raises(ModelLoadError) as err:
            lau.ensure(rc(gpu, "add_sub_config_7").variant, tmp_path, rc(gpu, "add_sub_config_7"))
        message = str(err.value)
        assert "tritonserver at 127.0.0.1:" in message and "refused to load add_sub_config_7" in message
        assert "has kind KIND_GPU but no GPUs are available" in message  # the API's reason ...
        assert "server log: E" in message and "failed to load 'add_sub' version 1" in message  # ... and the log's

        lau.ensure(rc(base, "add_sub_config_default").variant, tmp_path, rc(base, "add_sub_config_default", {"A": "1"}))
        assert lau.server_starts == 2 and lau.proc is not None and lau.proc.pid != pid
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        lau.stop()
        lau.stop()
    runs = records(record)
    assert len(runs) == 2 and runs[1]["env"]["A"] == "1" and "A" not in runs[0]["env"]
    assert "--log-info=true" in runs[0]["argv"] and runs[0]["env"]["CUDA_VISIBLE_DEVICES"] == ""
    assert not lau.pidfile.exists() and not any(psutil.pid_exists(r["pid"]) for r in runs)


def profile_yaml(tmp_path: Path, binary: Path) -> Path:
    quick = yaml.safe_load((QUICK_START / "config.yaml").read_text())
    export = tmp_path / "out"
    quick.update(
        model_repository=str(REPO),
        triton_launch_mode="local",
        triton_server_path=str(binary),
        export_path=str(export),
        output_model_repository_path=str(export / "output_model_repository"),
        run_config_search_max_instance_count=1,
        run_config_search_max_model_batch_size=2,
        run_config_search_max_concurrency=2,
        triton_server_flags={"log_verbose": 1, "http_port": 1},
        triton_server_environment={"STAND_IN_HOME": "$HOME/triton"},
        # the machine's 2 cores are shared: short windows and a loose stability bound keep the test quick
        perf_analyzer_flags={"measurement-request-count": 50, "stability-percentage": 100},
        skip_summary_reports=True,  # the CSVs are what this test compares; PDFs are other tests' business
        skip_detailed_reports=True,
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(quick))
    return path


def db_value(db: Path, sql: str) -> Any:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql).fetchone()
    finally:
        conn.close()


@pytest.mark.integration
def test_profile_through_the_stand_in(tmp_path: Path, stand_in: tuple[Path, Path]) -> None:
    binary, record = stand_in
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(profile_yaml(tmp_path, binary))],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Top configurations for add_sub" in proc.stdout
    assert "triton_server_flags.http-port=1 is ignored" in proc.stderr
    export = tmp_path / "out"
    db = export / "results.db"
    assert db_value(db, "select server_starts, model_loads from runs") == (1, 3)  # loads, not restarts
    assert db_value(db, "select count(*) from measurements where status = 'ok'") == (6,)
    with (export / "results" / "metrics-model-inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    assert {r["Model Config Path"] for r in rows} == {"add_sub_config_default", "add_sub_config_0", "add_sub_config_1"}
    for row in rows:
        assert float(row["Throughput (infer/sec)"]) > 0 and float(row["p99 Latency (ms)"]) > 0
        assert row["Instance Group"] == "1:CPU"
    assert (export / "output_model_repository" / "add_sub_config_1" / "config.pbtxt").exists()
    [run] = records(record)
    argv, env = run["argv"], run["env"]
    assert argv[:2] == [f"--model-repository={REPO.resolve()}", "--model-control-mode=explicit"]
    assert [a.split("=")[0] for a in argv[2:5]] == ["--http-port", "--grpc-port", "--metrics-port"]
    assert argv[5:] == ["--metrics-interval-ms=1000", "--log-verbose=1"]
    assert env["STAND_IN_HOME"] == f"{os.environ['HOME']}/triton" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert "Started HTTPService" in (export / "tritonserver.log").read_text()
    assert not psutil.pid_exists(run["pid"]) and not (export / "tritonserver.pid").exists()


@pytest.mark.integration
def test_server_left_by_a_killed_profile_is_stopped_at_the_next_start(
    tmp_path: Path, stand_in: tuple[Path, Path]
) -> None:
    binary, record = stand_in
    export = tmp_path / "out"
    pidfile = export / "tritonserver.pid"
    proc = subprocess.Popen([*modelyzer_cmd(), "profile", "-f", str(profile_yaml(tmp_path, binary))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (export / "tritonserver.log").exists() or "Started HTTPService" not in (export / "tritonserver.log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    old = json.loads(pidfile.read_text())["pid"]
    orphan = psutil.Process(old)
    backend = orphan.children(recursive=True)
    assert orphan.is_running() and backend  # a real leftover: the server and its MLServer
    lau = make_launcher(tmp_path, triton_server_path=str(binary), export=export)
    try:
        lau.start()
        gone, alive = psutil.wait_procs([orphan, *backend], timeout=20)
        assert not alive, [p.pid for p in alive]
        assert lau.proc is not None and json.loads(pidfile.read_text())["pid"] == lau.proc.pid != old
    finally:
        lau.stop()
    assert len(records(record)) == 2
