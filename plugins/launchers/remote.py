"""The ``remote`` launcher: a Triton-compatible server that someone else runs (``triton_launch_mode: remote``).

- ``start()`` checks server readiness over ``client_protocol`` at ``triton_grpc_endpoint`` /
  ``triton_http_endpoint``, ``client_max_retries`` tries 1 s apart; failure is a one-line LaunchError naming the
  endpoint and the config key to fix.
- ``ensure()`` loads the variant through the repository API with a config override (Triton's
  ``load_model(name, config=<json>)``; the model keeps its own name, ``name`` in the override is set to it and
  keys starting with ``_`` are dropped), then waits until the model is ready. The same config is not reloaded
  for the next RunConfig. With ``reload_model_disable`` nothing is loaded: the model must already be ready.
  A refused load is a ModelLoadError carrying the server's own message.
- Other models loaded on the server are reported once as a warning (they share the server's resources).
- ``stop()`` unloads nothing: the server and its models belong to the user, and unloading a model they serve
  could break their traffic. It only closes the client.
- Only ``config.pbtxt`` is needed in the output repository (``writes_full_variant_dirs() is False``). No server
  PID is known, so CPU RAM of the server cannot be measured in this mode.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from modelyzer.kernel.errors import LaunchError, ModelLoadError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig

RETRY_SECONDS = 1.0


def _cfg(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


def one_line(exc: BaseException) -> str:
    """An exception as one line (tritonclient messages can span lines or be empty)."""
    method = getattr(exc, "message", None)
    message = method() if callable(method) else str(exc)
    text = " ".join(str(message or exc.__class__.__name__).split())
    return text or exc.__class__.__name__


def override_config(variant: ConfigVariant) -> dict[str, Any]:
    """The JSON config sent with the load request: the variant's config under the model's own name."""
    config = {k: v for k, v in variant.config.items() if not str(k).startswith("_")}
    config["name"] = variant.model
    return config


class RemoteLauncher(Launcher):
    """Connects to an already running server; see the module docstring."""

    #: how messages name the server (subclasses that start their own server change it)
    server_label = "remote server"
    protocol: str = "grpc"

    def __init__(self, config: Any, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.protocol: str = str(_cfg(config, "client_protocol", "grpc"))
        self.http = str(_cfg(config, "triton_http_endpoint", "localhost:8000"))
        self.grpc = str(_cfg(config, "triton_grpc_endpoint", "localhost:8001"))
        self.retries = max(1, int(_cfg(config, "client_max_retries", 50)))
        self.server_starts = 0
        self.model_loads = 0
        self._client: Any = None
        self._loaded: dict[str, str] = {}  # model → config hash last loaded by us
        self._warned_others = False

    # --- client ------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return self.grpc if self.protocol == "grpc" else self.http

    @property
    def endpoint_key(self) -> str:
        return "triton_grpc_endpoint" if self.protocol == "grpc" else "triton_http_endpoint"

    def _make_client(self) -> Any:
        if self.protocol == "grpc":
            import tritonclient.grpc as grpcclient

            return grpcclient.InferenceServerClient(url=self.grpc)
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(url=self.http, connection_timeout=5.0, network_timeout=60.0)

    def _retry(self, check: Any) -> tuple[bool, str]:
        """Call ``check()`` up to ``client_max_retries`` times, 1 s apart; (succeeded, last error)."""
        last = "not ready"
        for attempt in range(self.retries):
            try:
                if check():
                    return True, ""
                last = "not ready"
            except Exception as exc:  # noqa: BLE001 - any client failure means "not yet"
                last = one_line(exc)
            if attempt + 1 < self.retries:
                time.sleep(RETRY_SECONDS)
        return False, last

    # --- Launcher --------------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self._client = self._make_client()
        except Exception as exc:  # noqa: BLE001
            raise LaunchError(
                f"cannot create a {self.protocol} client for {self.endpoint}: {one_line(exc)}; fix {self.endpoint_key}"
            ) from exc
        ok, last = self._retry(self._client.is_server_ready)
        if not ok:
            raise LaunchError(
                f"remote server at {self.endpoint} ({self.protocol}) is not ready after {self.retries} tries "
                f"1 s apart: {last}; start the server or fix {self.endpoint_key} / client_protocol "
                f"(client_max_retries sets the wait)"
            )
        self.context.log.info("remote server at %s (%s) is ready", self.endpoint, self.protocol)

    def _index(self) -> list[dict[str, Any]]:
        index = self._client.get_model_repository_index(
            **({"as_json": True} if self.protocol == "grpc" else {})
        )
        if isinstance(index, dict):
            index = index.get("models", [])
        return [dict(m) for m in index or []]

    def _warn_other_models(self, model: str) -> None:
        if self._warned_others:
            return
        try:
            others = sorted(
                {
                    str(m.get("name"))
                    for m in self._index()
                    if m.get("state") == "READY" and m.get("name") != model
                }
            )
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

    def _ready(self, model: str) -> bool:
        return bool(self._client.is_model_ready(model))

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        if self._client is None:
            self.start()
        model = variant.model
        self._warn_other_models(model)
        if _cfg(self.config, "reload_model_disable", False):
            ok, last = self._retry(lambda: self._ready(model))
            if not ok:
                raise ModelLoadError(
                    f"model {model!r} is not ready on the remote server at {self.endpoint} ({last}) and "
                    f"reload_model_disable is set; load it on the server or unset reload_model_disable"
                )
        elif self._loaded.get(model) != variant.config_hash:
            self._load(variant)
        return Endpoints(
            http=self.http,
            grpc=self.grpc,
            metrics_url=str(_cfg(self.config, "triton_metrics_url", "")),
            protocol=self.protocol,
            model_name=model,
        )

    def _load(self, variant: ConfigVariant) -> None:
        model = variant.model
        label = variant.name or model
        self._loaded.pop(model, None)
        try:
            self._client.load_model(model, config=json.dumps(override_config(variant)))
        except Exception as exc:  # noqa: BLE001 - InferenceServerException or transport errors
            raise ModelLoadError(
                f"{self.server_label} at {self.endpoint} refused to load {label} (model {model!r}): {one_line(exc)}"
            ) from exc
        self.model_loads += 1
        ok, last = self._retry(lambda: self._ready(model))
        if not ok:
            raise ModelLoadError(
                f"{label} was loaded on {self.endpoint} but model {model!r} never became ready: {last}"
            )
        self._loaded[model] = variant.config_hash
        self.context.log.info("loaded %s on %s", label, self.endpoint)

    def _unload_others(self, model: str) -> None:
        """Unload the models this launcher loaded for earlier models of the profile (one at a time)."""
        for other in [m for m in self._loaded if m != model]:
            self._loaded.pop(other, None)
            try:
                self._client.unload_model(other)
            except Exception as exc:  # noqa: BLE001 - the next load reports real problems
                self.context.log.debug("%s: unloading %s failed: %s", self.server_label, other, one_line(exc))

    def stop(self) -> None:
        client, self._client = self._client, None
        self._loaded.clear()
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - stop must never raise
                pass

    def writes_full_variant_dirs(self) -> bool:
        return False


@hookimpl
def register_launchers(register: Any) -> None:
    register("remote", RemoteLauncher)
