"""Finding, starting and stopping the MLServer process (no model logic; the launcher drives it).

- `resolve_mlserver(config)`: which mlserver executable to run (and its Python interpreter).
- `ServerProcess`: one running MLServer — its work directory (settings.json, repository, the copied
  extension package, log), free loopback ports, `spawn()` and the readiness probe (`ready()`, with the messages
  for a server that exits or never answers), `start()` = spawn + wait (the launchers' `readiness` helper; a
  start whose free port was taken meanwhile is retried on new ports), a small REST client for the repository
  API, and stop (SIGTERM then SIGKILL to the whole process group: MLServer spawns worker processes).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from modelyzer.kernel.errors import LaunchError
from modelyzer.plugins.launchers.local_server import free_ports
from modelyzer.plugins.launchers.readiness import again, poll
from modelyzer_mlserver import convert

DEFAULT_TRITON_SERVER = "tritonserver"
ENV_MLSERVER = "MODELYZER_MLSERVER"
VENV_MLSERVER = Path(".venv-mlserver") / "bin" / "mlserver"
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
POLL_S = 0.1
START_ATTEMPTS = 3  # a free port can be taken between choosing it and MLServer binding it

__all__ = ["ServerProcess", "free_ports", "port_taken", "python_of", "resolve_mlserver"]


def resolve_mlserver(server_path: str | None) -> Path:
    """The mlserver executable: `triton_server_path` if set, else $MODELYZER_MLSERVER, else .venv-mlserver
    (current directory, then the project root above this file), else `mlserver` on PATH."""
    if server_path and server_path != DEFAULT_TRITON_SERVER:
        found = shutil.which(server_path)
        if found is None:
            raise LaunchError(
                f"triton_server_path={server_path!r} is not an executable; for the mlserver launcher it must "
                "name the mlserver executable (e.g. .venv-mlserver/bin/mlserver)"
            )
        return Path(found)
    env = os.environ.get(ENV_MLSERVER)
    if env:
        found = shutil.which(env)
        if found is None:
            raise LaunchError(f"${ENV_MLSERVER}={env!r} is not an executable mlserver")
        return Path(found)
    candidates = [Path.cwd() / VENV_MLSERVER] + [p / VENV_MLSERVER for p in Path(__file__).resolve().parents]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("mlserver")
    if found:
        return Path(found)
    raise LaunchError(
        "MLServer not found: set triton_server_path (or $MODELYZER_MLSERVER) to the mlserver executable, or run "
        ".ci/setup to create .venv-mlserver (pip install mlserver==1.7.1 onnxruntime 'uvloop<0.22')"
    )


def python_of(mlserver: Path) -> str:
    """The interpreter that runs `mlserver` (its venv's python, or the script's shebang)."""
    sibling = mlserver.parent / "python"
    if os.access(sibling, os.X_OK):
        return str(sibling)
    try:
        first = mlserver.read_bytes()[:512].split(b"\n", 1)[0].decode()
    except OSError as err:
        raise LaunchError(f"cannot read {mlserver}: {err}") from err
    if first.startswith("#!"):
        return first[2:].strip().split()[0]
    raise LaunchError(f"cannot tell which Python runs {mlserver} (no sibling python, no #! line)")


def port_taken(error: BaseException) -> bool:
    """Whether a start failed because one of its ports was taken."""
    return "address already in use" in str(error).lower()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class ServerProcess:
    """One MLServer process with its own repository under `work_dir`."""

    def __init__(
        self,
        python: str,
        work_dir: Path,
        log_path: Path,
        workers: int,
        env: dict[str, str],
        ports: tuple[int, int, int] | None = None,
    ) -> None:
        """`ports` fixes (http, grpc, metrics); by default free loopback ports are chosen at each start."""
        self.python = python
        self.fixed_ports = ports
        self.work_dir = work_dir
        self.repo = work_dir / "repo"
        self.log_path = log_path
        self.workers = workers
        self.env = dict(env)
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self, timeout: float) -> None:
        """Start and wait until REST, gRPC and metrics answer; retry with new ports if one was taken."""
        again(lambda: self._start_once(timeout), attempts=START_ATTEMPTS, when=self.port_was_taken)

    def _start_once(self, timeout: float) -> None:
        self.spawn()
        try:
            self.wait_ready(timeout)
        except LaunchError:
            self.stop()
            raise

    def port_was_taken(self, error: BaseException) -> bool:
        """Whether a failed start is worth another try on new free ports."""
        return isinstance(error, LaunchError) and not self.fixed_ports and port_taken(error)

    def spawn(self) -> None:
        """Start the MLServer process on (new) ports; `ready()` tells when it answers."""
        self.http_port, self.grpc_port, self.metrics_port = self.fixed_ports or free_ports(3)
        self.repo.mkdir(parents=True, exist_ok=True)
        ext = self.work_dir / "ext" / convert.RUNTIME_PACKAGE
        shutil.rmtree(ext, ignore_errors=True)
        ext.mkdir(parents=True)
        for source in RUNTIME_DIR.glob("*.py"):
            shutil.copy2(source, ext / source.name)
        settings = convert.server_settings(
            self.http_port, self.grpc_port, self.metrics_port, self.workers, self.work_dir
        )
        (self.repo / "settings.json").write_text(json.dumps(settings, indent=2))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(self.env)
        env["PYTHONPATH"] = str(ext.parent)
        env["PYTHONUNBUFFERED"] = "1"
        env["MODELYZER_PARENT_PID"] = str(os.getpid())  # the server's watchdog stops it if we die
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(
                f"\n===== modelyzer: starting MLServer (parallel_workers={self.workers}) =====\n".encode()
            )
            log.flush()
            self.proc = subprocess.Popen(
                [self.python, "-m", convert.RUNTIME_PACKAGE, "start", str(self.repo)],
                cwd=self.work_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills the workers too
            )

    def ready(self) -> bool:
        """One readiness check: REST says ready, and the gRPC and metrics ports accept connections."""
        try:
            status, _ = self.request("GET", "/v2/health/ready", timeout=1.0)
        except OSError:
            return False
        return status == 200 and _port_open(self.grpc_port) and _port_open(self.metrics_port)

    def exited_message(self) -> str:
        code = None if self.proc is None else self.proc.returncode
        return f"MLServer exited with code {code} while starting; log {self.log_path}:\n{self.log_tail()}"

    def timeout_message(self, timeout: float) -> str:
        return (
            f"MLServer did not become ready within {timeout:.0f} s; log {self.log_path}:\n{self.log_tail()}"
        )

    def wait_ready(self, timeout: float) -> None:
        def exited() -> None:
            if not self.running:
                raise LaunchError(self.exited_message())

        if not poll(self.ready, interval=POLL_S, seconds=timeout, abort=exited).ok:
            raise LaunchError(self.timeout_message(timeout))

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after `grace` seconds (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        try:  # workers may outlive the leader: the group goes in any case
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def errors_since(self, offset: int, lines: int = 6) -> str:
        """The error lines the server logged after byte `offset` (the reason behind a bare HTTP 500)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        hits = [line.strip() for line in text if "Error" in line or "Exception" in line or "error" in line]
        return "\n".join(hits[-lines:])

    # --- REST client ----------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
        """(status, decoded JSON body or text) of a REST call; HTTP errors are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    @staticmethod
    def error_text(body: Any) -> str:
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])
        return str(body)
