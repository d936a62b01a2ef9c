"""The ``local`` launcher: starts ``tritonserver`` on this host and loads each variant into it (the default mode).

- The server is ``triton_server_path`` (default ``tritonserver`` on PATH) with ``--model-repository=<the
  model_repository>``, ``--model-control-mode=explicit``, ``--http-port``/``--grpc-port``/``--metrics-port`` and
  ``--metrics-interval-ms=<monitoring_interval × 1000>``, then the user's ``triton_server_flags`` (checked against
  tritonserver's options, see ``triton_server_flags``; the launcher's own flags win, with a warning). The
  repository is the *original* one, as in Model Analyzer ≥ 1.32: a variant is loaded under the model's own name
  with Triton's load-with-config (``POST /v2/repository/models/<model>/load`` with ``{"parameters": {"config":
  "<json>"}}``), and Triton reads the model's files from ``<model_repository>/<model>``. The output model
  repository is still written, for the user.
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

The repository API client is the ``remote`` launcher's (``RemoteLauncher``); it talks HTTP, which this launcher
always enables, unless the user turned HTTP off (``allow-http: false``), then gRPC.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from modelyzer.kernel.errors import ConfigError, LaunchError, ModelLoadError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig, canonical_json
from modelyzer.plugins.launchers.local_server import (
    PidFile,
    ServerLog,
    free_ports,
    http_status,
    port_of,
    port_problem,
    signal_group,
)
from modelyzer.plugins.launchers.remote import RemoteLauncher
from modelyzer.plugins.launchers.triton_server_flags import check_flags, render_value, server_argv, warn_to

DEFAULT_SERVER = "tritonserver"
LOG_NAME = "tritonserver.log"
PIDFILE_NAME = "tritonserver.pid"
STOP_GRACE_S = 5.0
POLL_S = 0.2
LOAD_TIMEOUT_S = 600.0
LOG_TAIL_LINES = 20
ENDPOINT_KEYS = ("triton_http_endpoint", "triton_grpc_endpoint", "triton_metrics_url")
DEFAULT_ENDPOINTS = {
    "triton_http_endpoint": "localhost:8000",
    "triton_grpc_endpoint": "localhost:8001",
    "triton_metrics_url": "http://localhost:8002/metrics",
}


def _cfg(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


def gpu_uuids(context: RunContext) -> list[str]:
    """UUIDs of the selected GPUs (``context.gpus`` holds UUID strings or GPU devices with ``.uuid``)."""
    return [g if isinstance(g, str) else str(g.uuid) for g in context.gpus]


class LocalLauncher(RemoteLauncher):
    """Starts and owns a tritonserver process; see the module docstring."""

    server_label = "tritonserver"

    def __init__(self, config: Any, context: RunContext) -> None:
        super().__init__(config, context)
        self.client_protocol = self.protocol  # what the load generator uses
        self.log = context.log
        self.global_flags = check_flags(_cfg(config, "triton_server_flags", {}))
        for spec in _cfg(config, "models", ()) or ():
            check_flags(spec.triton_server_flags, f"profile_models.{spec.name}.triton_server_flags")
        export = Path(context.export_path)
        output = _cfg(config, "triton_output_path", None)
        self.log_path = Path(output).resolve() if output else export / LOG_NAME
        self.pidfile = export / PIDFILE_NAME
        self.server_log = ServerLog(self.log_path)
        self.proc: subprocess.Popen[bytes] | None = None
        self.argv: list[str] = []
        self.ports: dict[str, int] = {}
        self._server_key: str | None = None
        self._leftover_checked = False

    # --- Launcher API -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        specs = _cfg(self.config, "models", ()) or ()
        if specs:
            flags, env = dict(specs[0].triton_server_flags), dict(specs[0].triton_server_environment)
        else:
            flags, env = self.global_flags, dict(_cfg(self.config, "triton_server_environment", {}))
        self._start_server(flags, env)

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        flags = check_flags(run_config.server_flags)
        env = {str(k): str(v) for k, v in (run_config.server_env or {}).items()}
        if not self.running or self._server_key != canonical_json({"flags": flags, "env": env}):
            if self.proc is not None and self.running:
                self.log.info("tritonserver: restarting for new server flags/environment (%s)", run_config.describe())
            elif self.proc is not None:
                self.log.warning(
                    "tritonserver exited (code %s); starting it again; log %s:\n%s",
                    self.proc.poll(), self.log_path, self.server_log.tail(LOG_TAIL_LINES),
                )
            self._start_server(flags, env)
        model = variant.model or run_config.model
        self._unload_others(model)
        if self._loaded.get(model) != variant.config_hash:
            self._load(variant)
        return self.endpoints(model)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        self._server_key = None
        super().stop()  # closes the client, forgets loaded models
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

    def writes_full_variant_dirs(self) -> bool:
        return True

    # --- server process -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def binary(self) -> str:
        name = str(_cfg(self.config, "triton_server_path", DEFAULT_SERVER))
        found = shutil.which(name)
        if found is None or not Path(found).is_file():
            raise LaunchError(
                f"triton_server_path: {name!r} is not an executable"
                + (" on PATH" if os.sep not in name else "")
                + "; install Triton or set triton_server_path to the tritonserver binary"
            )
        return found

    def command(self, flags: dict[str, Any]) -> list[str]:
        """The server's command line for the chosen ports and the user's ``flags``."""
        repo = _cfg(self.config, "model_repository", None)
        if repo is None:
            raise ConfigError("model_repository: required in local launch mode (the server loads models from it)")
        own: dict[str, Any] = {
            "model-repository": str(Path(repo).resolve()),
            "model-control-mode": "explicit",
            "http-port": self.ports["http"],
            "grpc-port": self.ports["grpc"],
            "metrics-port": self.ports["metrics"],
            "metrics-interval-ms": int(float(_cfg(self.config, "monitoring_interval", 1.0)) * 1000),
        }
        return server_argv(self.binary(), own, flags, warn_to(self.log))

    def environment(self, user_env: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_uuids(self.context))
        for key, value in user_env.items():
            env[str(key)] = os.path.expandvars(str(value))
        return env

    def _user_set(self, key: str) -> bool:
        user_set = getattr(self.config, "user_set", None)
        if user_set is not None:
            return key in user_set
        return str(_cfg(self.config, key, DEFAULT_ENDPOINTS[key])) != DEFAULT_ENDPOINTS[key]

    def _choose_ports(self) -> None:
        names = ("http", "grpc", "metrics")
        chosen = {n: port_of(k, _cfg(self.config, k, "")) for n, k in zip(names, ENDPOINT_KEYS, strict=True)
                  if self._user_set(k)}  # fmt: skip
        spare = [port for port in free_ports(6) if port not in chosen.values()]  # at least 3 remain
        for n in names:
            chosen.setdefault(n, spare.pop(0))
        for n, key in zip(names, ENDPOINT_KEYS, strict=True):
            problem = port_problem(chosen[n], key if self._user_set(key) else f"a free port for {key}")
            if problem:
                raise LaunchError(f"cannot start tritonserver: {problem}")
        self.ports = chosen

    def endpoints(self, model: str) -> Endpoints:
        def pick(key: str, own: str) -> str:
            return str(_cfg(self.config, key, own)) if self._user_set(key) else own

        return Endpoints(
            http=pick("triton_http_endpoint", f"127.0.0.1:{self.ports['http']}"),
            grpc=pick("triton_grpc_endpoint", f"127.0.0.1:{self.ports['grpc']}"),
            metrics_url=pick("triton_metrics_url", f"http://127.0.0.1:{self.ports['metrics']}/metrics"),
            protocol=self.client_protocol,
            server_pid=self.proc.pid if self.proc is not None else None,
            model_name=model,
        )

    def _start_server(self, flags: dict[str, Any], env: dict[str, str]) -> None:
        self.stop()
        if not self._leftover_checked:
            self._leftover_checked = True
            PidFile(self.pidfile, self.log).stop_leftover(STOP_GRACE_S)
        flags = check_flags(flags)
        self._choose_ports()
        argv = self.command(flags)
        self.protocol = "grpc" if render_value(flags.get("allow-http", True)).lower() == "false" else "http"
        self.http, self.grpc = f"127.0.0.1:{self.ports['http']}", f"127.0.0.1:{self.ports['grpc']}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== modelyzer: starting {' '.join(argv)} =====\n".encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self.environment(env), start_new_session=True,  # own process group: stop() kills it all
                )  # fmt: skip
            except OSError as err:
                raise LaunchError(f"triton_server_path: cannot run {argv[0]}: {err}") from err
        self.argv = argv
        PidFile(self.pidfile, self.log).write(self.proc.pid, argv)
        self.log.info("tritonserver: started pid %d (%s), log %s", self.proc.pid, self.endpoints("").http, self.log_path)
        try:
            self._wait_ready()
            self._client = self._make_client()
        except BaseException:
            self.stop()
            raise
        self._server_key = canonical_json({"flags": flags, "env": env})
        self.server_starts += 1

    def _make_client(self) -> Any:
        if self.protocol == "grpc":
            return super()._make_client()
        import tritonclient.http as httpclient

        # loading a large model can take minutes: the load request must not time out first
        return httpclient.InferenceServerClient(url=self.http, connection_timeout=5.0, network_timeout=LOAD_TIMEOUT_S)

    def _probe(self) -> bool:
        if self.protocol == "http":
            return http_status(self.ports["http"]) == 200
        if self._client is None:
            self._client = self._make_client()
        try:
            return bool(self._client.is_server_ready())
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def _wait_ready(self) -> None:
        seconds = max(1, int(_cfg(self.config, "client_max_retries", 50)))
        deadline = time.monotonic() + seconds
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise LaunchError(
                    f"tritonserver exited with code {code} while starting; last lines of {self.log_path}:\n"
                    f"{self.server_log.tail(LOG_TAIL_LINES)}"
                )
            if self._probe():
                return
            if time.monotonic() >= deadline:
                raise LaunchError(
                    f"tritonserver did not become ready within {seconds} s (client_max_retries={seconds}, "
                    f"polling /v2/health/ready on port {self.ports['http']}); last lines of {self.log_path}:\n"
                    f"{self.server_log.tail(LOG_TAIL_LINES)}"
                )
            time.sleep(POLL_S)

    # --- loading --------------------------------------------------------------------------------------
    def _load(self, variant: ConfigVariant) -> None:
        offset = self.server_log.size()
        try:
            super()._load(variant)
        except ModelLoadError as err:
            logged = self.server_log.errors_since(offset)
            raise ModelLoadError(f"{err}" + (f"; server log: {logged}" if logged else "")) from err


@hookimpl
def register_launchers(register: Any) -> None:
    register("local", LocalLauncher)
