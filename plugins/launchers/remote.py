"""The ``remote`` launcher: a Triton-compatible server that someone else runs (``triton_launch_mode: remote``).

- ``start()`` checks server readiness over ``client_protocol`` at ``triton_grpc_endpoint`` /
  ``triton_http_endpoint``, ``client_max_retries`` tries 1 s apart; failure is a one-line LaunchError naming the
  endpoint and the config key to fix.
- ``ensure()`` loads the variant through the repository API with a config override (``TritonRepository``: the
  model keeps its own name), then waits until the model is ready. The same config is not reloaded for the next
  RunConfig. With ``reload_model_disable`` nothing is loaded: the model must already be ready. A refused load is
  a ModelLoadError carrying the server's own message.
- Other models loaded on the server are reported once as a warning (they share the server's resources).
- ``stop()`` unloads nothing: the server and its models belong to the user, and unloading a model they serve
  could break their traffic. It only closes the client.
- Capabilities: the server runs elsewhere (``on_this_host`` False: this host's GPUs are not its GPUs), is not
  started here (``starts_server`` False) and cannot be sampled with no model loaded (``server_only_window``
  False); it serves Triton's ``/metrics`` at ``triton_metrics_url`` (``Endpoints.triton_metrics``).
- Only ``config.pbtxt`` is needed in the output repository (``writes_full_variant_dirs() is False``). No server
  PID is known, so CPU RAM of the server cannot be measured in this mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError, ModelLoadError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig
from modelyzer.plugins.launchers.readiness import one_line
from modelyzer.plugins.launchers.triton_repository import TritonRepository


class RemoteLauncher(Launcher):
    """Connects to an already running server; see the module docstring."""

    server_only_window = False
    on_this_host = False
    starts_server = False
    serves_models_together = True

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.server_starts = 0
        self.model_loads = 0
        self.repository = TritonRepository(
            config.client_protocol, config.triton_http_endpoint, config.triton_grpc_endpoint,
            config.client_max_retries, context.log, "remote server", on_load=self._count_load,
        )  # fmt: skip
        self._warned_others = False

    def _count_load(self) -> None:
        self.model_loads += 1

    @property
    def endpoint(self) -> str:
        return self.repository.endpoint

    @property
    def endpoint_key(self) -> str:
        return "triton_grpc_endpoint" if self.repository.protocol == "grpc" else "triton_http_endpoint"

    # --- Launcher --------------------------------------------------------------------------------------
    def start(self) -> None:
        repo = self.repository
        try:
            repo.connect()
        except Exception as exc:  # noqa: BLE001
            raise LaunchError(
                f"cannot create a {repo.protocol} client for {self.endpoint}: {one_line(exc)}; fix {self.endpoint_key}"
            ) from exc
        ready = repo.retry(repo.server_ready)
        if not ready.ok:
            raise LaunchError(
                f"remote server at {self.endpoint} ({repo.protocol}) is not ready after {repo.retries} tries "
                f"1 s apart: {ready.last}; start the server or fix {self.endpoint_key} / client_protocol "
                f"(client_max_retries sets the wait)"
            )
        self.context.log.info("remote server at %s (%s) is ready", self.endpoint, repo.protocol)

    def _warn_other_models(self, model: str) -> None:
        if self._warned_others:
            return
        try:
            others = self.repository.other_models(model)
        except Exception as exc:  # noqa: BLE001 - the index is informational only
            self.context.log.debug(
                "could not read the repository index of %s: %s", self.endpoint, one_line(exc)
            )
            return
        self._warned_others = True
        if others:
            self.context.log.warning(
                "other models are loaded on the remote server at %s: %s; they share its resources and can skew "
                "the measurements",
                self.endpoint,
                ", ".join(others),
            )

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        repo = self.repository
        if repo.client is None:
            self.start()
        model = variant.model
        self._warn_other_models(model)
        if self.config.reload_model_disable:
            ready = repo.retry(lambda: repo.model_ready(model))
            if not ready.ok:
                raise ModelLoadError(
                    f"model {model!r} is not ready on the remote server at {self.endpoint} ({ready.last}) and "
                    f"reload_model_disable is set; load it on the server or unset reload_model_disable"
                )
        else:
            repo.ensure_loaded(variant)
        return Endpoints(
            http=repo.http,
            grpc=repo.grpc,
            metrics_url=self.config.triton_metrics_url,
            protocol=repo.protocol,
            model_name=model,
            triton_metrics=True,
        )

    def stop(self) -> None:
        self.repository.close()

    def writes_full_variant_dirs(self) -> bool:
        return False


@hookimpl
def register_launchers(register: Any) -> None:
    register("remote", RemoteLauncher)
