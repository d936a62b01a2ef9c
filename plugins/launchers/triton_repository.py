"""Triton's repository API as the launchers use it: one client, load-with-config, readiness, unloads.

``TritonRepository`` is shared by the ``remote`` launcher (a server someone else runs) and the Triton servers a
launcher starts itself (``local``, ``docker``):

- ``connect()`` makes the tritonclient client for the chosen protocol (gRPC, or HTTP with a ``network_timeout``
  long enough for a large model's load request);
- ``load(variant)`` sends the variant's config with the load request (Triton's ``load_model(name,
  config=<json>)``; the model keeps its own name, ``name`` in the override is set to it and keys starting with
  ``_`` are dropped), then waits until the model is ready (``client_max_retries`` tries 1 s apart); the same
  config is not sent twice in a row. A refused load is a ModelLoadError with the server's own message;
- ``unload_others(model)`` unloads what it loaded for other models; ``other_models(model)`` lists the models
  loaded on the server besides ``model`` (for the remote launcher's warning);
- ``close()`` forgets what was loaded and closes the client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from modelyzer.kernel.errors import ModelLoadError
from modelyzer.kernel.models import ConfigVariant
from modelyzer.plugins.launchers.readiness import Polled, one_line, poll

RETRY_SECONDS = 1.0
LOAD_TIMEOUT_S = 600.0  # loading a large model can take minutes: the load request must not time out first

__all__ = ["LOAD_TIMEOUT_S", "RETRY_SECONDS", "TritonRepository", "one_line", "override_config"]


def override_config(variant: ConfigVariant) -> dict[str, Any]:
    """The JSON config sent with the load request: the variant's config under the model's own name."""
    config = {k: v for k, v in variant.config.items() if not str(k).startswith("_")}
    config["name"] = variant.model
    return config


class TritonRepository:
    """A repository-API client of one Triton-compatible server; see the module docstring."""

    def __init__(
        self,
        protocol: str,
        http: str,
        grpc: str,
        retries: int,
        log: logging.Logger,
        label: str,
        http_timeout: float = 60.0,
        on_load: Callable[[], None] = lambda: None,
    ) -> None:
        self.protocol = protocol
        self.http = http
        self.grpc = grpc
        self.retries = max(1, retries)
        self.log = log
        self.label = label  # how messages name the server
        self.http_timeout = http_timeout
        self.on_load = on_load  # called when the server accepted a load request (the launchers count them)
        self.client: Any = None
        self.loaded: dict[str, str] = {}  # model → config hash last loaded by us

    @property
    def endpoint(self) -> str:
        return self.grpc if self.protocol == "grpc" else self.http

    def connect(self) -> Any:
        """The client (made on first use)."""
        if self.client is None:
            if self.protocol == "grpc":
                import tritonclient.grpc as grpcclient

                self.client = grpcclient.InferenceServerClient(url=self.grpc)
            else:
                import tritonclient.http as httpclient

                self.client = httpclient.InferenceServerClient(
                    url=self.http, connection_timeout=5.0, network_timeout=self.http_timeout
                )
        return self.client

    def retry(self, check: Any) -> Polled:
        """``check()`` up to ``client_max_retries`` times, 1 s apart."""
        return poll(check, interval=RETRY_SECONDS, attempts=self.retries)

    def server_ready(self) -> bool:
        return bool(self.connect().is_server_ready())

    def model_ready(self, model: str) -> bool:
        return bool(self.connect().is_model_ready(model))

    def other_models(self, model: str) -> list[str]:
        """Models in state READY besides ``model`` (raises what the client raises)."""
        index = self.connect().get_model_repository_index(
            **({"as_json": True} if self.protocol == "grpc" else {})
        )
        if isinstance(index, dict):
            index = index.get("models", [])
        return sorted({str(m.get("name")) for m in (dict(m) for m in index or [])
                       if m.get("state") == "READY" and m.get("name") != model})  # fmt: skip

    def ensure_loaded(self, variant: ConfigVariant) -> None:
        """Load ``variant`` unless it is the config this client loaded last for its model."""
        if self.loaded.get(variant.model) != variant.config_hash:
            self.load(variant)

    def load(self, variant: ConfigVariant) -> None:
        model = variant.model
        label = variant.name or model
        self.loaded.pop(model, None)
        try:
            self.connect().load_model(model, config=json.dumps(override_config(variant)))
        except Exception as exc:  # noqa: BLE001 - InferenceServerException or transport errors
            raise ModelLoadError(
                f"{self.label} at {self.endpoint} refused to load {label} (model {model!r}): {one_line(exc)}"
            ) from exc
        self.on_load()
        ready = self.retry(lambda: self.model_ready(model))
        if not ready.ok:
            raise ModelLoadError(
                f"{label} was loaded on {self.endpoint} but model {model!r} never became ready: {ready.last}"
            )
        self.loaded[model] = variant.config_hash
        self.log.info("loaded %s on %s", label, self.endpoint)

    def load_as_is(self, model: str) -> None:
        """Load ``model`` with the config it has in the server's repository (a composing model a BLS model calls)."""
        try:
            self.connect().load_model(model)
        except Exception as exc:  # noqa: BLE001 - InferenceServerException or transport errors
            raise ModelLoadError(f"{self.label} at {self.endpoint} refused to load composing model {model!r}: "
                                 f"{one_line(exc)}") from exc
        ready = self.retry(lambda: self.model_ready(model))
        if not ready.ok:
            raise ModelLoadError(f"composing model {model!r} was loaded on {self.endpoint} but never became ready: "
                                 f"{ready.last}")
        self.loaded[model] = "as-is"
        self.log.info("loaded composing model %s on %s", model, self.endpoint)

    def unload_others(self, model: str, keep: Iterable[str] = ()) -> None:
        """Unload the models this client loaded for earlier models of the profile (one at a time), but `keep`."""
        kept = {model, *keep}
        for other in [m for m in self.loaded if m not in kept]:
            self.loaded.pop(other, None)
            try:
                self.connect().unload_model(other)
            except Exception as exc:  # noqa: BLE001 - the next load reports real problems
                self.log.debug("%s: unloading %s failed: %s", self.label, other, one_line(exc))

    def close(self) -> None:
        """Forget what was loaded and close the client (never raises)."""
        client, self.client = self.client, None
        self.loaded.clear()
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - stop must never raise
                pass
