"""The `mlserver` launcher: serves Triton-layout ONNX variants on a real MLServer 1.7.1 (CPU).

A `ManagedServerLauncher` (modelyzer's base of the launchers that start their server: start, readiness,
restart only on new server settings, stop). This module owns the variant → server mapping:
- the model is served under its ORIGINAL name (`Endpoints.model_name`), whatever the variant is called;
- a variant is loaded through MLServer's repository API (REST `load`), unloading first when its adaptive
  batching changes (a plain reload keeps the old batching in MLServer 1.7.1); the same settings again is a
  no-op;
- the server settings are the worker count (`instance_group` count → `parallel_workers`) and the server
  environment (`triton_server_environment`): the server restarts only when they change; Triton server flags
  do not apply;
- readiness is awaited for `client_max_retries` seconds, at least 30; a start whose free port was taken
  meanwhile is retried on new ports;
- `server_starts` / `model_loads` count what it did; failures raise LaunchError / ModelLoadError with the
  server's own reason (load error text, or the last lines of its log).
- several models are served at once (`serves_models_together`, concurrent multi-model): each is loaded under
  its own name and none is unloaded for another; the worker pool is the server's, so a group runs with the
  largest worker count any of its variants asks for.
- an ONNX variant whose config names the `openvino` CPU execution accelerator is served by the OpenVINO runtime
  (`cpu_accelerators`: the automatic search offers it as its `accelerator` dimension); the runtime writes the
  compiled model's properties next to the model settings, served at `GET /v2/models/<m>/accelerator`. Before
  serving it the accuracy guard (`accuracy.py`) compares OpenVINO's outputs with ONNX Runtime's; a variant that
  disagrees beyond `accuracy_tolerance` fails to load, so it is never ranked.
- Capabilities: the launcher's defaults (a server process on this host, Prometheus metrics on their own port),
  `cpu_accelerators = ("openvino",)`, and no GPU: `devices()` is `[]` because MLServer runs every model on the
  CPU, so the kernel profiles every model CPU-only, a KIND_GPU instance group (in `model_config_parameters` or
  the model's own config.pbtxt) as KIND_CPU with one warning line naming the model and the key, and reports say
  CPU (`kernel/gpus.py`, device truth); no NVML collector runs for it.

Process handling lives in `server.py`, the Triton → MLServer settings mapping in `convert.py`, the code that
runs inside MLServer in `runtime/`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError, ModelLoadError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, GpuDevice, RunConfig, canonical_json
from modelyzer.plugins.launchers.managed import ManagedServerLauncher, ServerSettings
from modelyzer_mlserver import convert
from modelyzer_mlserver.accuracy import AccuracyGuard
from modelyzer_mlserver.server import (
    POLL_S,
    START_ATTEMPTS,
    ServerProcess,
    port_taken,
    python_of,
    resolve_mlserver,
)

HTTP_LOADGEN_FLAGS = {"input-tensor-format": "json", "output-tensor-format": "json"}
MIN_START_TIMEOUT_S = 30.0
WORKERS = "parallel_workers"


class MLServerLauncher(ManagedServerLauncher):
    """Built as `MLServerLauncher(config, context)`; see the module docstring for the policy."""

    server_label: ClassVar[str] = "MLServer"
    serves_models_together: ClassVar[bool] = True
    cpu_accelerators: ClassVar[tuple[str, ...]] = convert.CPU_ACCELERATORS
    poll_seconds: ClassVar[float] = POLL_S
    start_attempts: ClassVar[int] = START_ATTEMPTS

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.protocol = config.client_protocol.lower()
        if self.protocol not in ("grpc", "http"):
            raise LaunchError(
                f"client_protocol must be 'grpc' or 'http' for the mlserver launcher, got {self.protocol!r}"
            )
        self._server: ServerProcess | None = None
        self._loaded: dict[str, tuple[str, convert.Batching | None]] = {}
        self._work_dir: Path | None = None
        self._accuracy = AccuracyGuard(config)

    def devices(self) -> list[GpuDevice]:
        """No GPU: MLServer runs every model on the CPU (a KIND_GPU instance group is profiled as KIND_CPU)."""
        return []

    @property
    def ready_seconds(self) -> float:
        return max(MIN_START_TIMEOUT_S, float(self.config.client_max_retries))

    # --- ManagedServerLauncher ----------------------------------------------------------------------------
    def settings_for(self, variant: ConfigVariant | None, run_config: RunConfig | None) -> ServerSettings:
        if variant is None or run_config is None:
            return ServerSettings(flags={WORKERS: 0})
        if run_config.server_flags:
            self.log.debug(
                "mlserver launcher ignores Triton server flags %s", sorted(run_config.server_flags)
            )
        env = {str(k): str(v) for k, v in (run_config.server_env or {}).items()}
        # the worker pool is the server's: models served together get the most any of them asks for
        configs = [dict(m.variant.config) for m in run_config.members] or [dict(variant.config)]
        return ServerSettings(flags={WORKERS: max(convert.parallel_workers(c) for c in configs)}, env=env)

    def note_restart(self, run_config: RunConfig, settings: ServerSettings) -> None:
        if self._server is not None:
            was = "" if self.settings is None else f"{self.settings.flags[WORKERS]} worker(s)"
            if self.settings is not None and self.settings.env != settings.env:
                was += f", environment {canonical_json(self.settings.env)}"
            self.log.info("mlserver: restarting for %d worker(s) (was %s)", settings.flags[WORKERS], was or "unknown")

    def launch(self, settings: ServerSettings) -> None:
        workers = int(settings.flags[WORKERS])
        mlserver = resolve_mlserver(self.config.triton_server_path)
        work_dir = self._ensure_work_dir()
        output = self.config.triton_output_path
        log_path = Path(output) if output else work_dir / "mlserver.log"
        self._server = ServerProcess(python_of(mlserver), work_dir, log_path, workers, settings.env)
        self.log.info("mlserver: starting %s (parallel_workers=%d), log %s", mlserver, workers, log_path)
        self._server.spawn()

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    def probe(self) -> bool:
        return self._server is not None and self._server.ready()

    def exited_message(self) -> str:
        return self._server.exited_message() if self._server is not None else "MLServer is not running"

    def timeout_message(self, seconds: float) -> str:
        assert self._server is not None
        return self._server.timeout_message(seconds)

    def retry_start(self, error: BaseException) -> bool:
        return isinstance(error, LaunchError) and port_taken(error)

    def halt(self) -> None:
        server, self._server = self._server, None
        self._loaded.clear()
        if server is not None:
            server.stop()

    def cleanup(self) -> None:
        if self._work_dir is not None:  # the log stays (it may be the only trace of a failure)
            for sub in ("repo", "ext", "metrics", "envs"):
                shutil.rmtree(self._work_dir / sub, ignore_errors=True)

    def serve(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        assert self._server is not None
        name = variant.model or run_config.model
        config = dict(variant.config)
        model_file, version = convert.find_model_file(Path(variant_dir), config)
        own = next((m for m in run_config.members if m.model == name), run_config)  # a group's: this model's load
        settings = convert.model_settings(name, config, model_file, version, own.load.batch_size)
        accelerator = convert.cpu_accelerator(config)
        if accelerator is not None:
            disagreement = self._accuracy.verdict(model_file, accelerator[1])
            if disagreement is not None:
                raise ModelLoadError(f"{variant.name or name} is not served: {disagreement}")
            report = self._server.repo / name / "accelerator.json"
            settings["parameters"]["extra"][convert.ACCELERATOR_REPORT] = str(report)
        self._load(self._server, name, settings, variant)
        return self._endpoints(self._server, name)

    # --- internals ----------------------------------------------------------------------------------------
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
        report = settings["parameters"]["extra"].get(convert.ACCELERATOR_REPORT)
        if report:  # written again by the runtime that loads: never a previous variant's properties
            Path(report).unlink(missing_ok=True)
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
