"""The `transformers_serve` launcher: a real `transformers serve` (OpenAI API, token streaming) on this host's CPU.

A `ManagedServerLauncher` (modelyzer's base of the launchers that start their server). This module owns:
- the model: `<model_repository>/<model name>` (a `save_pretrained` directory: config, weights, tokenizer), served
  pinned (`transformers serve <name>` run from the model repository), so requests name it by the model's own name
  (`Endpoints.model_name`), whatever the variant is called;
- the command: `HF_HUB_OFFLINE=1 transformers serve <name> --device cpu --host 127.0.0.1 --port P` plus the knobs
  the variant sets (`knobs.py`: `parameters` of its model config); the RunConfig's server environment is the
  server's environment (e.g. `OMP_NUM_THREADS`); Triton server flags do not apply (logged, ignored);
- restarts: the server settings are the model, its knobs and that environment; RunConfigs with the same settings
  reuse the warm server, new settings restart it; `start()` only checks what a start needs (the CLI, the model
  directory) so the first variant's own knobs make the first start;
- readiness: `GET /health` answers 200 (the model is loaded before the server listens), for `client_max_retries`
  seconds, at least 120 (continuous batching starts in about a minute on 2 cores); a free port taken meanwhile
  retries the start on a new one; `triton_http_endpoint`, when the user set it, fixes the port;
- the log: `<export_path>/transformers_serve/server.log` (or `triton_output_path`), kept after stop;
- stop: SIGTERM to the server's process group (it spawns helpers), SIGKILL after a grace period;
- errors are one line: the CLI missing (names `transformers_serve_path` and the set-up script), the model
  directory missing, a busy port, a server that exits (with its last log lines).
- Capabilities: a server process on this host that serves no Prometheus metrics and cannot run without a model.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import ClassVar

import psutil

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig, canonical_json
from modelyzer.plugins.launchers.local_server import PidFile, ServerLog, http_status, signal_group
from modelyzer.plugins.launchers.managed import ManagedServerLauncher, ServerSettings
from modelyzer_transformers_serve.knobs import flags_of, knobs_of
from modelyzer_transformers_serve.settings import SETUP_HINT, TransformersServeSettings, resolve_cli

HOST = "127.0.0.1"
HEALTH = "/health"
MIN_START_SECONDS = 120.0
STOP_GRACE_S = 10.0
PORT_KEY = "triton_http_endpoint"
TAIL_LINES = 3
DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
PORT_TAKEN = ("address already in use", "errno 98")


class TransformersServeLauncher(ManagedServerLauncher):
    """Built as `TransformersServeLauncher(config, context)`; see the module docstring for the policy."""

    serves_metrics: ClassVar[bool] = False
    server_only_window: ClassVar[bool] = False
    on_this_host: ClassVar[bool] = True
    starts_server: ClassVar[bool] = True
    #: one server process per model, no instance groups or Triton batching: only `parameters` knobs are searched
    tuned_fields: ClassVar[tuple[str, ...] | None] = ()

    server_label: ClassVar[str] = "transformers serve"
    start_failure: ClassVar[str] = "cannot start transformers serve"
    poll_seconds: ClassVar[float] = 0.25
    start_attempts: ClassVar[int] = 3  # a free port can be taken between choosing it and the server binding it

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.options = config.settings(TransformersServeSettings)
        self.port = 0
        self.argv: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: ServerLog | None = None
        self._leftover_checked = False

    @property
    def ready_seconds(self) -> float:
        return max(MIN_START_SECONDS, float(self.config.client_max_retries))

    # --- Launcher API -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Check what a start needs; the server itself starts with the first variant (its knobs decide)."""
        resolve_cli(self.options.transformers_serve_path)
        for spec in self.config.models:
            self.model_dir(spec.name)

    def writes_full_variant_dirs(self) -> bool:
        return False  # the server reads the model's own directory; variants differ only in server knobs

    # --- ManagedServerLauncher ----------------------------------------------------------------------------
    def settings_for(self, variant: ConfigVariant | None, run_config: RunConfig | None) -> ServerSettings:
        if variant is None or run_config is None:
            name = self.config.models[0].name if self.config.models else ""
            return ServerSettings(flags={"model": name, "knobs": {}})
        if run_config.server_flags:
            self.log.debug("transformers_serve ignores Triton server flags %s", sorted(run_config.server_flags))
        knobs = knobs_of(variant.config, variant.name or variant.model)
        env = {str(k): str(v) for k, v in (run_config.server_env or {}).items()}
        return ServerSettings(flags={"model": run_config.model, "knobs": knobs}, env=env)

    def note_restart(self, run_config: RunConfig, settings: ServerSettings) -> None:
        if self.running and self.settings is not None:
            self.log.info(
                "transformers serve: restarting for %s (was %s)",
                canonical_json({**settings.flags, "env": settings.env}),
                canonical_json({**self.settings.flags, "env": self.settings.env}),
            )

    def launch(self, settings: ServerSettings) -> None:
        cli = resolve_cli(self.options.transformers_serve_path)
        name = str(settings.flags["model"])
        model_dir = self.model_dir(name)
        configured = {"http": self.config.triton_http_endpoint} if PORT_KEY in self.config.user_set else {}
        self.port = self.ports_for({"http": PORT_KEY}, configured)["http"]
        self.argv = [str(cli), "serve", name, "--device", "cpu", "--host", HOST, "--port", str(self.port),
                     *flags_of(settings.flags["knobs"])]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
        env.update(settings.env)
        env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        log_path = self.log_path()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        pidfile = self.pidfile()
        if not self._leftover_checked:  # a server a SIGKILLed profile left behind (same export path) goes first
            self._leftover_checked = True
            pidfile.stop_leftover(STOP_GRACE_S)
        self._log = ServerLog(log_path)
        with open(log_path, "ab") as log:
            log.write(f"\n===== modelyzer: {' '.join(self.argv)} (cwd {model_dir.parent}) =====\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv,
                cwd=model_dir.parent,  # the model id is its directory name, relative to the repository
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() ends its helpers too; Ctrl-C is ours to relay
            )
        pidfile.write(self._proc.pid, self.argv)
        self.log.info("transformers serve: starting %s on port %d, log %s", name, self.port, log_path)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def probe(self) -> bool:
        return http_status(self.port, HEALTH, timeout=1.0, host=HOST) == 200

    def exited_message(self) -> str:
        code = None if self._proc is None else self._proc.returncode
        return f"transformers serve exited with code {code} while starting: {self.tail()} (log {self.log_path()})"

    def timeout_message(self, seconds: float) -> str:
        return (
            f"transformers serve did not answer {HEALTH} on port {self.port} within {seconds:.0f} s: {self.tail()} "
            f"(log {self.log_path()})"
        )

    def retry_start(self, error: BaseException) -> bool:
        return isinstance(error, LaunchError) and PORT_KEY not in self.config.user_set and any(
            text in str(error).lower() for text in PORT_TAKEN
        )

    def halt(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        members = group_members(proc.pid)  # the generation worker too, which may outlive the leader
        self.pidfile().remove(proc.pid)
        signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.log.warning("transformers serve: pid %d did not stop in %.0f s; killing it", proc.pid, STOP_GRACE_S)
        signal_group(proc.pid, signal.SIGKILL)  # helpers may outlive the leader: the group goes in any case
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        psutil.wait_procs(members, timeout=5)  # stop() returns when they are gone, not merely signalled


    def serve(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        assert self._proc is not None and self.settings is not None
        return Endpoints(
            http=f"{HOST}:{self.port}",
            api="openai",
            model_name=str(self.settings.flags["model"]),
            protocol="http",
            server_pid=self._proc.pid,
        )

    # --- helpers --------------------------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        """`<model_repository>/<name>`, resolved; LaunchError (one line) when it is not a model directory."""
        repo = self.config.model_repository
        if repo is None:
            raise LaunchError("transformers_serve needs model_repository (the directory holding <model>/config.json)")
        path = (Path(repo) / name).resolve()
        if not (path / "config.json").is_file():
            what = "does not exist" if not path.exists() else "has no config.json (not a save_pretrained directory)"
            raise LaunchError(
                f"transformers_serve: model directory {path} {what}; set model_repository and the model name "
                f"(`{SETUP_HINT}` makes examples/llm/model_repository/tiny_llama)"
            )
        return path

    def pidfile(self) -> PidFile:
        """The running server's identity, kept so the next profile can stop it if this one is SIGKILLed."""
        return PidFile(self.log_path().parent / "transformers_serve.pid", self.log, label="transformers serve")

    def log_path(self) -> Path:
        output = self.config.triton_output_path
        if output:
            return Path(output)
        return Path(self.context.export_path).resolve() / "transformers_serve" / "server.log"

    def tail(self) -> str:
        """The last non-empty lines of the server log, on one line."""
        text = self._log.tail(50) if self._log is not None else ""
        lines = [" ".join(line.split()) for line in text.splitlines() if line.strip() and "=====" not in line]
        return " | ".join(lines[-TAIL_LINES:]) or "(empty log)"


def group_members(pgid: int) -> list[psutil.Process]:
    """The processes of process group `pgid` (the server and the workers it spawned)."""
    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid:
                out.append(p)
        except (OSError, psutil.Error):
            continue
    return out
