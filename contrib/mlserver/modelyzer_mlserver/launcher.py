"""The `mlserver` launcher: serves Triton-layout ONNX variants on a real MLServer 1.7.1 (CPU).

Owns the variant → server mapping and its restart policy:
- the model is served under its ORIGINAL name (`Endpoints.model_name`), whatever the variant is called;
- a variant is loaded through MLServer's repository API (REST `load`), unloading first when its adaptive
  batching changes (a plain reload keeps the old batching in MLServer 1.7.1); the same settings again is a
  no-op;
- the server restarts only when the worker count (`instance_group` count → `parallel_workers`) or the
  server environment (`triton_server_environment`) changes;
- `server_starts` / `model_loads` count what it did; failures raise LaunchError / ModelLoadError with the
  server's own reason (load error text, or the last lines of its log).

Process handling lives in `server.py`, the Triton → MLServer settings mapping in `convert.py`, the code that
runs inside MLServer in `runtime/`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modelyzer.kernel.errors import LaunchError, ModelLoadError
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig, canonical_json

from . import convert
from .server import ServerProcess, python_of, resolve_mlserver

HTTP_LOADGEN_FLAGS = {"input-tensor-format": "json", "output-tensor-format": "json"}
MIN_START_TIMEOUT_S = 30.0


class MLServerLauncher(Launcher):
    """Built as `MLServerLauncher(config, context)`; see the module docstring for the policy."""

    def __init__(self, config: Any, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.log = context.log
        self.protocol = str(getattr(config, "client_protocol", "grpc") or "grpc").lower()
        if self.protocol not in ("grpc", "http"):
            raise LaunchError(
                f"client_protocol must be 'grpc' or 'http' for the mlserver launcher, got {self.protocol!r}"
            )
        retries = int(getattr(config, "client_max_retries", 0) or 0)
        self.start_timeout = max(MIN_START_TIMEOUT_S, float(retries))
        self.server_starts = 0
        self.model_loads = 0
        self._server: ServerProcess | None = None
        self._server_key: tuple[int, str] | None = None
        self._loaded: dict[str, tuple[str, convert.Batching | None]] = {}
        self._work_dir: Path | None = None

    # --- Launcher API -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._server is None or not self._server.running:
            self._start_server(workers=0, env={})

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        name = variant.model or run_config.model
        config = dict(variant.config)
        model_file, version = convert.find_model_file(Path(variant_dir), config)
        settings = convert.model_settings(name, config, model_file, version, run_config.load.batch_size)
        workers = convert.parallel_workers(config)
        env = {str(k): str(v) for k, v in (run_config.server_env or {}).items()}
        if run_config.server_flags:
            self.log.debug(
                "mlserver launcher ignores Triton server flags %s", sorted(run_config.server_flags)
            )
        server = self._server
        if server is None or not server.running or self._server_key != (workers, canonical_json(env)):
            if server is not None:
                self.log.info("mlserver: restarting for %d worker(s) (was %s)", workers, self._server_key)
            server = self._start_server(workers, env)
        self._load(server, name, settings, variant)
        return self._endpoints(server, name)

    def stop(self) -> None:
        server, self._server = self._server, None
        self._server_key = None
        self._loaded.clear()
        if server is not None:
            server.stop()
        if self._work_dir is not None:  # the log stays (it may be the only trace of a failure)
            for sub in ("repo", "ext", "metrics", "envs"):
                shutil.rmtree(self._work_dir / sub, ignore_errors=True)

    # --- internals ----------------------------------------------------------------------------------------
    def _start_server(self, workers: int, env: dict[str, str]) -> ServerProcess:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._loaded.clear()
        mlserver = resolve_mlserver(getattr(self.config, "triton_server_path", None))
        work_dir = self._ensure_work_dir()
        output = getattr(self.config, "triton_output_path", None)
        log_path = Path(output) if output else work_dir / "mlserver.log"
        server = ServerProcess(python_of(mlserver), work_dir, log_path, workers, env)
        self.log.info("mlserver: starting %s (parallel_workers=%d), log %s", mlserver, workers, log_path)
        server.start(self.start_timeout)
        self._server = server
        self._server_key = (workers, canonical_json(env))
        self.server_starts += 1
        return server

    def _ensure_work_dir(self) -> Path:
        if self._work_dir is None or not self._work_dir.is_dir():
            base = Path(self.context.export_path).resolve() / "mlserver"
            try:
                base.mkdir(parents=True, exist_ok=True)
            except OSError:
                base = Path(tempfile.gettempdir())
            self._work_dir = Path(tempfile.mkdtemp(prefix="server-", dir=base))
        return self._work_dir

    def _load(
        self, server: ServerProcess, name: str, settings: dict[str, Any], variant: ConfigVariant
    ) -> None:
        digest = canonical_json(settings)
        batching = convert.adaptive_batching_of(settings)
        previous = self._loaded.get(name)
        if previous is not None and previous[0] == digest:
            return
        model_dir = server.repo / name
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / "model-settings.json").write_text(json.dumps(settings, indent=2))
        if previous is not None and previous[1] != batching:
            self._unload(server, name)
        self._loaded.pop(name, None)
        offset = server.log_size()
        status, body = server.request("POST", f"/v2/repository/models/{name}/load")
        self.model_loads += 1
        if status != 200:
            reason = server.error_text(body) or f"HTTP {status}"
            if not isinstance(body, dict):  # a bare "Internal Server Error": the reason is in the log
                reason = (
                    f"HTTP {status} {reason}; server log: {server.errors_since(offset) or server.log_tail(5)}"
                )
            self._unload(server, name)
            raise ModelLoadError(
                f"MLServer could not load {variant.name or name} as '{name}': {reason} (log {server.log_path})"
            )
        status, _ = server.request("GET", f"/v2/models/{name}/ready", timeout=10.0)
        if status != 200:
            raise ModelLoadError(
                f"MLServer loaded '{name}' but it is not ready (HTTP {status}); log:\n{server.log_tail()}"
            )
        self._loaded[name] = (digest, batching)
        self.log.info("mlserver: serving %s as '%s' (batching %s)", variant.name or name, name, batching)

    def _unload(self, server: ServerProcess, name: str) -> None:
        status, body = server.request("POST", f"/v2/repository/models/{name}/unload")
        if status != 200:
            self.log.debug("mlserver: unload of %s: HTTP %s %s", name, status, server.error_text(body))

    def _endpoints(self, server: ServerProcess, name: str) -> Endpoints:
        return Endpoints(
            http=f"127.0.0.1:{server.http_port}",
            grpc=f"127.0.0.1:{server.grpc_port}",
            metrics_url=f"http://127.0.0.1:{server.metrics_port}/metrics",
            protocol=self.protocol,
            server_pid=server.proc.pid if server.proc is not None else None,
            model_name=name,
            loadgen_flags=dict(HTTP_LOADGEN_FLAGS) if self.protocol == "http" else {},
        )
