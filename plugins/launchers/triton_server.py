"""What the launchers that run ``tritonserver`` themselves share (``local`` on this host, ``docker`` in a container).

``TritonServerLauncher`` is a ``ManagedServerLauncher`` that owns the Triton side; subclasses supply the process
or container (``prepare``, ``binary``, ``spawn``, ``running``, ``kill``) and the server log (``log_mark``,
``log_errors_since``, ``exited_message``, ``timeout_message``):

- settings: the RunConfig's server flags (checked, kebab-case: ``triton_server_flags``), its environment, and
  ``extra_settings(model)`` (docker arguments); the first start uses the first profiled model's (or the global)
  ones. Every model's flags are checked when the launcher is built;
- the command line: ``triton_server_path`` with ``--model-repository=<model_repository>``,
  ``--model-control-mode=explicit``, the three ports, ``--metrics-interval-ms=<monitoring_interval × 1000>``, then
  the user's flags (``triton_server_flags.server_argv``: the launcher's own win, with a warning);
- ports: those of ``triton_http_endpoint`` / ``triton_grpc_endpoint`` / ``triton_metrics_url`` when the user set
  them, else free ones; ``endpoints()`` hands out the user's endpoints where set, the server's own otherwise
  (``triton_metrics``: the metrics URL serves Triton's Prometheus metrics);
- the repository client (``TritonRepository``) talks HTTP, unless the user turned HTTP off (``allow-http:
  false``), then gRPC; readiness is ``/v2/health/ready`` over HTTP (or the gRPC ready call);
- ``serve()`` unloads what was loaded for other models, then loads the variant under the model's own name with
  Triton's load-with-config unless that config is already loaded; a refused load is a ModelLoadError with
  Triton's reason plus the error lines the server logged meanwhile.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, ModelLoadError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig
from modelyzer.plugins.launchers.local_server import http_status
from modelyzer.plugins.launchers.managed import ManagedServerLauncher, ServerSettings
from modelyzer.plugins.launchers.triton_repository import LOAD_TIMEOUT_S, TritonRepository
from modelyzer.plugins.launchers.triton_server_flags import check_flags, render_value, server_argv, warn_to

LOG_NAME = "tritonserver.log"
LOG_TAIL_LINES = 20
#: the server's ports and the config keys of the endpoints that fix them
ENDPOINT_KEYS = {
    "http": "triton_http_endpoint",
    "grpc": "triton_grpc_endpoint",
    "metrics": "triton_metrics_url",
}


def gpu_uuids(context: RunContext) -> list[str]:
    """UUIDs of the selected GPUs (``context.gpus`` holds UUID strings or GPU devices with ``.uuid``)."""
    return [g if isinstance(g, str) else str(g.uuid) for g in context.gpus]


class TritonServerLauncher(ManagedServerLauncher):
    """A tritonserver this launcher starts; see the module docstring."""

    server_label: ClassVar[str] = "tritonserver"
    serves_models_together: ClassVar[bool] = True
    #: the launch mode as messages name it ("required in local launch mode")
    mode_label: ClassVar[str] = "local"

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.client_protocol = config.client_protocol  # what the load generator uses
        self.global_flags = check_flags(config.triton_server_flags)
        for spec in config.models:
            check_flags(spec.triton_server_flags, f"profile_models.{spec.name}.triton_server_flags")
        output = config.triton_output_path
        self.log_path = Path(output).resolve() if output else Path(context.export_path) / LOG_NAME
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = {}
        self.repository = TritonRepository(
            config.client_protocol, "", "", config.client_max_retries, self.log, self.server_label,
            http_timeout=LOAD_TIMEOUT_S, on_load=self._count_load,
        )  # fmt: skip

    def _count_load(self) -> None:
        self.model_loads += 1

    # --- what subclasses supply -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Called before each start (e.g. connect to the engine, stop a leftover server)."""

    @abc.abstractmethod
    def binary(self) -> str:
        """The server executable as the command line names it."""

    @abc.abstractmethod
    def spawn(self, argv: list[str], settings: ServerSettings) -> None:
        """Start ``argv`` with ``settings`` (environment, extra settings) as a process or container."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop the process or container (idempotent; never raises)."""

    @abc.abstractmethod
    def log_mark(self) -> Any:
        """Where the server log stands now (``log_errors_since`` reads what comes after)."""

    @abc.abstractmethod
    def log_errors_since(self, mark: Any) -> str:
        """The error lines the server logged after ``mark``, `` | ``-joined ("" when none)."""

    def extra_settings(self, model: str) -> dict[str, Any]:
        """Settings beyond flags and environment that need a new server when they change."""
        return {}

    # --- settings and command line -------------------------------------------------------------------------
    def settings_for(self, variant: ConfigVariant | None, run_config: RunConfig | None) -> ServerSettings:
        if run_config is not None:
            flags, env, model = run_config.server_flags, run_config.server_env or {}, run_config.model
        elif self.config.models:  # the first start: the first profiled model's settings
            spec = self.config.models[0]
            flags, env, model = spec.triton_server_flags, spec.triton_server_environment, spec.name
        else:
            flags, env, model = self.global_flags, self.config.triton_server_environment, ""
        env = {str(k): str(v) for k, v in env.items()}
        return ServerSettings(flags=check_flags(flags), env=env, extra=self.extra_settings(model))

    def command(self, flags: dict[str, Any], ports: dict[str, int] | None = None) -> list[str]:
        """The server's command line for ``ports`` (default: the chosen ones) and the user's ``flags``."""
        ports = self.ports if ports is None else ports
        repo = self.config.model_repository
        if repo is None:
            raise ConfigError(
                f"model_repository: required in {self.mode_label} launch mode (the server loads models from it)"
            )
        own: dict[str, Any] = {
            "model-repository": str(Path(repo).resolve()),
            "model-control-mode": "explicit",
            "http-port": ports["http"],
            "grpc-port": ports["grpc"],
            "metrics-port": ports["metrics"],
            "metrics-interval-ms": int(float(self.config.monitoring_interval) * 1000),
        }
        return server_argv(self.binary(), own, flags, warn_to(self.log))

    def user_endpoints(self) -> dict[str, str]:
        """The endpoints the user set, by port name."""
        config = self.config
        values = {"http": config.triton_http_endpoint, "grpc": config.triton_grpc_endpoint,
                  "metrics": config.triton_metrics_url}  # fmt: skip
        return {name: value for name, value in values.items() if ENDPOINT_KEYS[name] in config.user_set}

    def choose_ports(self) -> dict[str, int]:
        """Configured ports for the endpoints the user set, free ones otherwise (kept in ``ports``)."""
        self.ports = self.ports_for(ENDPOINT_KEYS, self.user_endpoints())
        return self.ports

    def server_endpoints(self) -> Endpoints | None:
        return self.endpoints("") if self.running else None

    def endpoints(self, model: str) -> Endpoints:
        own = {"http": f"{self.host}:{self.ports['http']}", "grpc": f"{self.host}:{self.ports['grpc']}",
               "metrics": f"http://{self.host}:{self.ports['metrics']}/metrics"}  # fmt: skip
        chosen = {**own, **self.user_endpoints()}
        return Endpoints(
            http=chosen["http"],
            grpc=chosen["grpc"],
            metrics_url=chosen["metrics"],
            protocol=self.client_protocol,
            model_name=model,
            triton_metrics=True,
        )

    # --- ManagedServerLauncher ---------------------------------------------------------------------------
    def launch(self, settings: ServerSettings) -> None:
        self.prepare()
        self.choose_ports()
        argv = self.command(settings.flags)
        http_on = render_value(settings.flags.get("allow-http", True)).lower() != "false"
        repo = self.repository
        repo.close()
        repo.protocol = "http" if http_on else "grpc"
        repo.http, repo.grpc = f"{self.host}:{self.ports['http']}", f"{self.host}:{self.ports['grpc']}"
        self.spawn(argv, settings)

    def probe(self) -> bool:
        if self.repository.protocol == "http":
            return http_status(self.ports["http"], host=self.host) == 200
        return self.repository.server_ready()

    def halt(self) -> None:
        self.repository.close()  # forgets the loaded models too
        self.kill()

    def serve(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        model = variant.model or run_config.model
        composing = [spec.name for spec in self.config.bls_composing_models]
        # a concurrent group's other models and the pipeline being served (its composing variants) stay loaded
        together = [m.model for m in run_config.members] + [run_config.model]
        together += [c.model for c in run_config.variant.composing]
        self.repository.unload_others(model, keep=[*composing, *together])
        for name in composing:  # what the BLS model calls, as in the repository unless its variant was loaded
            if name not in self.repository.loaded:
                self.repository.load_as_is(name)
        if self.repository.loaded.get(model) != variant.config_hash:
            mark = self.log_mark()
            try:
                self.repository.load(variant)
            except ModelLoadError as err:
                logged = self.log_errors_since(mark)
                raise ModelLoadError(f"{err}" + (f"; server log: {logged}" if logged else "")) from err
        return self.endpoints(model)


__all__ = ["ENDPOINT_KEYS", "LOG_NAME", "LOG_TAIL_LINES", "TritonServerLauncher", "gpu_uuids"]
