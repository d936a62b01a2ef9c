"""The managed-server base (``ManagedServerLauncher``) with a throw-away in-memory server: restart only on new
settings or a dead server, readiness errors, a retried start, stop/cleanup, and port choice."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from modelyzer.plugins.launchers.managed import ManagedServerLauncher, ServerSettings
from tests.support.configs import profile_config


class Toy(ManagedServerLauncher):
    """A "server" that is a flag (``up``); it answers from the ``ready_after``-th probe on; with ``exits`` set a
    launched one exits at once."""

    start_failure = "cannot start the toy"
    poll_seconds = 0.01
    start_attempts = 2

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.up = False
        self.probes = 0
        self.ready_after = 1
        self.exits = False
        self.fail_launches: list[str] = []
        self.events: list[str] = []

    def settings_for(self, variant: ConfigVariant | None, run_config: RunConfig | None) -> ServerSettings:
        return ServerSettings(env=dict(run_config.server_env) if run_config is not None else {})

    def launch(self, settings: ServerSettings) -> None:
        self.events.append(f"launch {dict(settings.env)}")
        if self.fail_launches:
            raise LaunchError(self.fail_launches.pop(0))
        self.up, self.probes = not self.exits, 0

    @property
    def running(self) -> bool:
        return self.up

    def probe(self) -> bool:
        self.probes += 1
        return self.probes >= self.ready_after

    def exited_message(self) -> str:
        return "toy exited"

    def timeout_message(self, seconds: float) -> str:
        return f"toy not ready within {seconds} s"

    def halt(self) -> None:
        if self.up:
            self.events.append("halt")
        self.up = False

    def cleanup(self) -> None:
        self.events.append("cleanup")

    def serve(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        self.model_loads += 1
        return Endpoints(model_name=variant.model)

    def retry_start(self, error: BaseException) -> bool:
        return "port taken" in str(error)


def toy(tmp_path: Path, **values: object) -> Toy:
    context = RunContext(export_path=tmp_path, output_model_repository=tmp_path / "omr")
    return Toy(profile_config(client_max_retries=1, **values), context)


def rc(env: dict[str, str] | None = None) -> RunConfig:
    variant = ConfigVariant("add_sub", {"max_batch_size": 4}, name="add_sub_config_0")
    return RunConfig("add_sub", variant, LoadSpec(concurrency=1), server_env=env or {})


def test_restarts_only_for_new_settings_or_a_dead_server(tmp_path: Path) -> None:
    lau = toy(tmp_path)
    lau.start()
    lau.start()  # already running
    lau.ensure(rc().variant, tmp_path, rc())
    assert (lau.server_starts, lau.model_loads) == (1, 1)
    lau.ensure(rc().variant, tmp_path, rc({"A": "1"}))
    assert lau.server_starts == 2 and lau.settings == ServerSettings(env={"A": "1"})
    lau.up = False  # the server died
    lau.ensure(rc().variant, tmp_path, rc({"A": "1"}))  # same settings, but the server is gone
    assert lau.server_starts == 3
    lau.stop()
    lau.stop()
    assert lau.settings is None and lau.events[-2:] == ["cleanup", "cleanup"]
    assert lau.events.count("launch {}") == 1 and lau.events.count("launch {'A': '1'}") == 2


def test_readiness_errors_and_a_retried_start(tmp_path: Path) -> None:
    lau = toy(tmp_path)
    lau.ready_after = 10**9
    with pytest.raises(LaunchError, match=r"toy not ready within 1 s"):
        lau.start()
    assert lau.server_starts == 0 and not lau.up  # halted after the failed start

    lau.ready_after, lau.exits = 1, True
    with pytest.raises(LaunchError, match="toy exited"):
        lau.start()

    lau.exits = False
    lau.fail_launches = ["port taken"]
    lau.start()  # the second attempt starts it
    assert lau.server_starts == 1 and lau.events[-2:] == ["launch {}", "launch {}"]
    lau.stop()
    lau.fail_launches = ["port taken", "port taken"]
    with pytest.raises(LaunchError, match="port taken"):  # start_attempts = 2
        lau.start()
    lau.fail_launches = ["no binary"]
    with pytest.raises(LaunchError, match="no binary"):  # not retried
        lau.start()
    assert lau.fail_launches == []


def test_ports_for_configured_and_free_ports(tmp_path: Path) -> None:
    lau = toy(tmp_path)
    keys = {"http": "triton_http_endpoint", "grpc": "triton_grpc_endpoint"}
    free = lau.ports_for(keys, {})
    assert len(set(free.values())) == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        chosen = lau.ports_for(keys, {})
        assert port not in chosen.values()
        with pytest.raises(LaunchError, match=rf"cannot start the toy: port {port} \(triton_grpc_endpoint\)"):
            lau.ports_for(keys, {"grpc": f"localhost:{port}"})
    assert lau.ports_for(keys, {"http": f"localhost:{port}"})["http"] == port  # free again
