"""The base of the launchers that start and own their server: ``ManagedServerLauncher``.

It owns the policy the ``local``, ``docker`` and contrib ``mlserver`` launchers share; subclasses supply how the
server process (or container) starts, answers and stops, and how a variant is loaded into it:

- ``start()`` starts the server with the settings of the profile's first model, unless it already runs;
- ``ensure(variant, …)`` restarts the server only when the RunConfig needs other ``ServerSettings`` (server flags,
  environment, anything else the subclass puts in them) than the running server's, or when it died; then the
  subclass's ``serve()`` loads the variant (through the server's repository API) and returns the endpoints;
- a start is ``halt()`` of the old server, ``launch()`` of the new one, then polling ``probe()`` every
  ``poll_seconds`` for ``ready_seconds`` (``client_max_retries`` seconds by default) while ``running``; a server
  that exits or never gets ready is a LaunchError with the subclass's message (``exited_message()`` /
  ``timeout_message()``: they carry the server's log). A start whose error ``retry_start()`` accepts (a free port
  taken meanwhile) is tried again, ``start_attempts`` times in all. ``server_starts`` counts the starts that
  became ready;
- ``ports_for()`` chooses the server's ports: those of the endpoints the user configured, free ones otherwise, and
  refuses a port already in use (saying whether another server answers on it);
- ``stop()`` halts the server and removes what the subclass keeps only while it runs (``cleanup()``); idempotent.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig, canonical_json
from modelyzer.plugins.launchers.local_server import free_ports, port_of, port_problem
from modelyzer.plugins.launchers.readiness import again, poll

POLL_S = 0.2


def _dict(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value or {})


@attrs.frozen
class ServerSettings:
    """What a managed server is started with; a RunConfig that needs other settings restarts the server."""

    flags: dict[str, Any] = attrs.field(factory=dict, converter=_dict)  # server options
    env: dict[str, str] = attrs.field(factory=dict, converter=_dict)  # environment variables
    extra: dict[str, Any] = attrs.field(factory=dict, converter=_dict)  # e.g. docker run arguments

    @property
    def key(self) -> str:
        return canonical_json({"flags": self.flags, "env": self.env, "extra": self.extra})


class ManagedServerLauncher(Launcher):
    """A server this launcher starts, loads variants into and stops; see the module docstring."""

    #: how messages name the server
    server_label: ClassVar[str] = "server"
    #: the first words of a LaunchError for a port that cannot be used
    start_failure: ClassVar[str] = "cannot start the server"
    poll_seconds: ClassVar[float] = POLL_S
    start_attempts: ClassVar[int] = 1

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.log = context.log
        self.server_starts = 0
        self.model_loads = 0
        self.settings: ServerSettings | None = None  # of the running server

    # --- what subclasses supply -------------------------------------------------------------------------
    @abc.abstractmethod
    def settings_for(self, variant: ConfigVariant | None, run_config: RunConfig | None) -> ServerSettings:
        """The settings a RunConfig needs (``None``: the first start, before any RunConfig)."""

    @abc.abstractmethod
    def launch(self, settings: ServerSettings) -> None:
        """Start the server process or container (no waiting: the base polls ``probe()`` afterwards)."""

    @property
    @abc.abstractmethod
    def running(self) -> bool:
        """Whether the server process/container still runs."""

    @abc.abstractmethod
    def probe(self) -> bool:
        """One readiness check (an exception counts as "not yet")."""

    @abc.abstractmethod
    def exited_message(self) -> str:
        """The LaunchError text for a server that exited while starting."""

    @abc.abstractmethod
    def timeout_message(self, seconds: float) -> str:
        """The LaunchError text for a server that was not ready within ``seconds``."""

    @abc.abstractmethod
    def halt(self) -> None:
        """Stop the server process/container (idempotent; never raises)."""

    @abc.abstractmethod
    def serve(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        """Make ``variant`` the served model of the running server; return where it answers."""

    def note_restart(self, run_config: RunConfig, settings: ServerSettings) -> None:
        """Log why ``ensure`` starts the server again (a new setting, or the server died)."""

    def retry_start(self, error: BaseException) -> bool:
        """Whether a failed start is worth another try (``start_attempts`` in all)."""
        return False

    def cleanup(self) -> None:
        """Remove what only the running server needs (called by ``stop()`` after ``halt()``)."""

    @property
    def ready_seconds(self) -> float:
        """How long a start may take to become ready."""
        return max(1, int(self.config.client_max_retries))

    # --- Launcher API ---------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.running:
            self._start_server(self.settings_for(None, None))

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        settings = self.settings_for(variant, run_config)
        if not self.running or self.settings is None or self.settings.key != settings.key:
            self.note_restart(run_config, settings)
            self._start_server(settings)
        return self.serve(variant, variant_dir, run_config)

    def stop(self) -> None:
        self.settings = None
        self.halt()
        self.cleanup()

    # --- starting ---------------------------------------------------------------------------------------
    def _start_server(self, settings: ServerSettings) -> None:
        again(lambda: self._start_once(settings), attempts=self.start_attempts, when=self.retry_start)
        self.settings = settings
        self.server_starts += 1

    def _start_once(self, settings: ServerSettings) -> None:
        self.settings = None
        self.halt()
        try:
            self.launch(settings)
            self.wait_ready()
        except BaseException:
            self.halt()
            raise

    def wait_ready(self) -> None:
        """Poll ``probe()`` for ``ready_seconds`` while the server runs; LaunchError when it exits or times out."""
        seconds = self.ready_seconds

        def exited() -> None:
            if not self.running:
                raise LaunchError(self.exited_message())

        if not poll(self.probe, interval=self.poll_seconds, seconds=seconds, abort=exited).ok:
            raise LaunchError(self.timeout_message(seconds))

    def ports_for(self, keys: Mapping[str, str], configured: Mapping[str, str]) -> dict[str, int]:
        """A port per name of ``keys`` (name → config key): the port of ``configured[name]`` (an endpoint the user
        set), else a free one on 127.0.0.1; LaunchError naming the key for a port that cannot be used."""
        chosen = {name: port_of(keys[name], value) for name, value in configured.items()}
        spare = [port for port in free_ports(2 * len(keys)) if port not in chosen.values()]  # enough remain
        for name in keys:
            chosen.setdefault(name, spare.pop(0))
        for name, key in keys.items():
            problem = port_problem(chosen[name], key if name in configured else f"a free port for {key}")
            if problem:
                raise LaunchError(f"{self.start_failure}: {problem}")
        return chosen
