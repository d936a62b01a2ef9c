"""The ``local`` launcher: starts ``tritonserver`` on this host and loads each variant into it (the default mode).

The command line, ports, settings, restarts and loads are ``TritonServerLauncher``'s (``triton_server``; the start,
readiness and restart policy are ``ManagedServerLauncher``'s, ``managed``). This module owns the process:

- The server is ``triton_server_path`` (default ``tritonserver`` on PATH, else the shim `.ci/setup` installs in
  ``.tools/bin``: Triton 2.51 from the nvidia-pytriton wheel; a missing one is a one-line LaunchError).
  The repository is the *original* one, as in Model Analyzer ≥ 1.32: a variant is loaded under the model's own
  name with Triton's load-with-config (``POST /v2/repository/models/<model>/load`` with ``{"parameters":
  {"config": "<json>"}}``), and Triton reads the model's files from ``<model_repository>/<model>``. The output
  model repository is still written, for the user.
- Ports: those of ``triton_http_endpoint`` / ``triton_grpc_endpoint`` / ``triton_metrics_url`` when the user set
  them, else free ports on 127.0.0.1. A port already in use is an error before anything starts, and says whether
  another server answers on it; it is never silently reused.
- Environment: ours, plus ``CUDA_VISIBLE_DEVICES`` = the UUIDs of the selected GPUs (``""`` when none is
  selected, so a CPU-only profile cannot use a GPU by accident, as in Model Analyzer), plus
  ``triton_server_environment`` (values with ``$VAR`` expanded; it may override ``CUDA_VISIBLE_DEVICES``).
- The server's stdout/stderr are appended to ``triton_output_path`` (default ``<export_path>/tritonserver.log``).
  Readiness is polled on ``/v2/health/ready`` for ``client_max_retries`` seconds; a server that exits or never
  gets ready is a LaunchError carrying the last lines of that log.
- The server restarts only when a RunConfig's server flags or environment differ from the running server's;
  ``server_starts`` / ``model_loads`` count what happened. A refused load is a ModelLoadError with Triton's
  reason (the API error, plus the error lines it logged). Models we loaded earlier are unloaded when another
  model is profiled, so each measurement sees only its own model.
- ``stop()`` sends SIGTERM to the server's process group, SIGKILL after 5 s; idempotent. The PID, start time and
  command line are kept in ``<export_path>/tritonserver.pid``; the next start stops a server left behind by a
  killed profile (after checking that the PID still runs that very command).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, RunConfig
from modelyzer.plugins.launchers.local_server import PidFile, ServerLog, signal_group
from modelyzer.plugins.launchers.managed import ServerSettings
from modelyzer.plugins.launchers.triton_server import LOG_TAIL_LINES, TritonServerLauncher, gpu_uuids
from modelyzer.plugins.setup_tools import setup_tool

PIDFILE_NAME = "tritonserver.pid"
STOP_GRACE_S = 5.0
DEFAULT_SERVER = "tritonserver"


class LocalLauncher(TritonServerLauncher):
    """Starts and owns a tritonserver process; see the module docstring."""

    server_label = "tritonserver"
    start_failure = "cannot start tritonserver"
    mode_label = "local"

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.pidfile = Path(context.export_path) / PIDFILE_NAME
        self.server_log = ServerLog(self.log_path)
        self.proc: subprocess.Popen[bytes] | None = None
        self.argv: list[str] = []
        self._leftover_checked = False

    # --- the process ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """triton_server_path names an executable (found before any server starts)."""
        self.binary()

    def binary(self) -> str:
        name = self.config.triton_server_path
        found = shutil.which(name) or (setup_tool(name) if name == DEFAULT_SERVER else None)
        if found is None or not Path(found).is_file():
            raise LaunchError(
                f"triton_server_path: {name!r} is not an executable"
                + (" on PATH" if os.sep not in name else "")
                + "; install Triton or set triton_server_path to the tritonserver binary"
            )
        return found

    def environment(self, user_env: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_uuids(self.context))
        for key, value in user_env.items():
            env[str(key)] = os.path.expandvars(str(value))
        return env

    def prepare(self) -> None:
        if not self._leftover_checked:
            self._leftover_checked = True
            PidFile(self.pidfile, self.log).stop_leftover(STOP_GRACE_S)

    def spawn(self, argv: list[str], settings: ServerSettings) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== modelyzer: starting {' '.join(argv)} =====\n".encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self.environment(settings.env), start_new_session=True,  # own process group: kill() kills it all
                )  # fmt: skip
            except OSError as err:
                raise LaunchError(f"triton_server_path: cannot run {argv[0]}: {err}") from err
        self.argv = argv
        PidFile(self.pidfile, self.log).write(self.proc.pid, argv)
        self.log.info(
            "tritonserver: started pid %d (%s), log %s", self.proc.pid, self.endpoints("").http, self.log_path
        )

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            signal_group(proc.pid, signal.SIGTERM)
            for sig in (signal.SIGKILL, None):
                try:
                    proc.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    pass
                if sig is not None:  # members may outlive the leader: the group goes in any case
                    signal_group(proc.pid, sig)
            PidFile(self.pidfile, self.log).remove(proc.pid)

    def endpoints(self, model: str) -> Endpoints:
        return attrs.evolve(
            super().endpoints(model), server_pid=self.proc.pid if self.proc is not None else None
        )

    def note_restart(self, run_config: RunConfig, settings: ServerSettings) -> None:
        if self.proc is not None and self.running:
            self.log.info(
                "tritonserver: restarting for new server flags/environment (%s)", run_config.describe()
            )
        elif self.proc is not None:
            self.log.warning(
                "tritonserver exited (code %s); starting it again; log %s:\n%s",
                self.proc.poll(), self.log_path, self.server_log.tail(LOG_TAIL_LINES),
            )  # fmt: skip

    # --- the log ---------------------------------------------------------------------------------------------
    def exited_message(self) -> str:
        code = None if self.proc is None else self.proc.returncode
        return (
            f"tritonserver exited with code {code} while starting; last lines of {self.log_path}:\n"
            f"{self.server_log.tail(LOG_TAIL_LINES)}"
        )

    def timeout_message(self, seconds: float) -> str:
        return (
            f"tritonserver did not become ready within {seconds} s (client_max_retries={seconds}, "
            f"polling /v2/health/ready on port {self.ports['http']}); last lines of {self.log_path}:\n"
            f"{self.server_log.tail(LOG_TAIL_LINES)}"
        )

    def log_mark(self) -> int:
        return self.server_log.size()

    def log_errors_since(self, mark: Any) -> str:
        return self.server_log.errors_since(int(mark))


@hookimpl
def register_launchers(register: Any) -> None:
    register("local", LocalLauncher)
