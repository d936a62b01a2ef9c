"""plugins/agents/controller.py + zmq_agent.py on real sockets, in one process: CURVE, ZAP, the engine, status.

Agents run as threads here (fast); tests/integration/test_agents.py runs them as separate processes and
kills them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel import assembly
from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.engine import Engine
from modelyzer.kernel.errors import ConfigError, ModelyzerError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.progress import Progress
from modelyzer.kernel.store import Store
from modelyzer.plugins.agents.agent import EXIT_REFUSED, AgentDaemon
from modelyzer.plugins.agents.controller import AgentsExecutor
from modelyzer.plugins.agents.keys import generate_keys, load_agent_keys
from modelyzer.plugins.agents.protocol import SlotInfo
from modelyzer.plugins.agents.status import format_status, query_status
from tests.integration import bench_agents


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("replay")
    return bench_agents().make_fixture(root, instances=[1, 2], batch_sizes=[1, 2, 4], concurrency=[1, 2, 4])  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def fast_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYZER_AGENT_HEARTBEAT", "0.2")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    generate_keys(tmp_path / "keys", agents=2)
    return tmp_path / "keys"


class Agents:
    """Agent daemons in threads; stopped at the end of the test."""

    def __init__(self) -> None:
        self.daemons: list[tuple[AgentDaemon, threading.Thread, list[int]]] = []

    def start(self, url: str, keys: Path | None, key: str | None, tmp: Path, slots: int = 2) -> list[int]:
        agent_keys = load_agent_keys(keys, key) if keys else None
        daemon = AgentDaemon(url, agent_keys, tuple(SlotInfo(i) for i in range(slots)), name=key or "plain",
                             workdir=tmp / f"agent-{len(self.daemons)}", max_silence=30)
        code: list[int] = []
        thread = threading.Thread(target=lambda: code.append(daemon.run()), daemon=True)
        thread.start()
        self.daemons.append((daemon, thread, code))
        return code

    def stop(self) -> None:
        for daemon, thread, _ in self.daemons:
            daemon.request_stop()
            thread.join(15)


@pytest.fixture
def agents() -> Iterator[Agents]:
    pool = Agents()
    yield pool
    pool.stop()


def profile_config(values: dict[str, Any], recording: Path, tmp: Path, keys: Path | None, **extra: Any) -> Any:
    security = {"insecure": True} if keys is None else {"agent_keys": str(keys)}
    return config_from_dict({**values, "results_db": str(tmp / "results.db"), "triton_launch_mode": "replay",
                             "replay_results_db": str(recording), "agents": "tcp://127.0.0.1:0", **security,
                             **extra})


def run_profile(config: Any, executor: AgentsExecutor) -> tuple[Any, Store]:
    store = Store(config.results_db)
    engine = Engine(config, store, executor, assembly.codec(), assembly.strategy_factory(config),
                    Progress(quiet=True))
    return engine.run(), store


def test_two_curve_agents_measure_every_run_config_once(replay: Any, keys: Path, tmp_path: Path,
                                                         agents: Agents) -> None:
    values, recording = replay
    config = profile_config(values, recording, tmp_path, keys, min_agents=2)
    executor = AgentsExecutor(config)
    url = executor.listen()
    agents.start(url, keys, "agent-1", tmp_path)
    agents.start(url, keys, "agent-2", tmp_path)
    executor.start()  # waits for min_agents
    assert executor.slots == 4
    report = query_status(executor.endpoint, load_agent_keys(keys, "agent-1"))
    assert sorted(a.name for a in report.agents) == ["agent-1", "agent-2"] and report.slots == 4
    assert "agents 2 connected" in format_status(report)
    summary, store = run_profile(config, executor)
    recorded = Store(recording).counts()["measurements"]
    count, distinct = store.db.execute("select count(*), count(distinct run_config_key) from measurements").fetchone()
    assert summary.status == "finished" and summary.failed == 0
    assert count == distinct == summary.measured == recorded
    stored_agents = {row[0] for row in store.db.execute("select distinct agent from measurements")}
    assert {a.split("#")[0] for a in stored_agents} == {"agent-1", "agent-2"}
    assert summary.counters["model_loads"] > 0


def test_plaintext_with_insecure(replay: Any, tmp_path: Path, agents: Agents) -> None:
    values, recording = replay
    config = profile_config(values, recording, tmp_path, None)
    executor = AgentsExecutor(config)
    agents.start(executor.listen(), None, None, tmp_path, slots=3)
    summary, _ = run_profile(config, executor)
    assert summary.status == "finished" and summary.failed == 0 and summary.measured > 0


def test_an_unknown_key_is_refused_and_the_agent_exits(replay: Any, keys: Path, tmp_path: Path,
                                                        agents: Agents, caplog: pytest.LogCaptureFixture) -> None:
    values, recording = replay
    stranger = tmp_path / "stranger"
    generate_keys(stranger)
    (stranger / "controller.key").write_text((keys / "controller.key").read_text())  # knows the controller
    executor = AgentsExecutor(profile_config(values, recording, tmp_path, keys), min_agents=0)
    executor.start()
    try:
        code = agents.start(executor.endpoint, stranger, "agent", tmp_path)
        agents.daemons[-1][1].join(15)
        assert code == [EXIT_REFUSED]
        assert "refused agent key" in caplog.text
        with pytest.raises(ModelyzerError, match="only 0 of 1"):
            executor.wait_for_agents(1, timeout=0.5)
    finally:
        executor.stop()


def test_without_keys_or_insecure_the_controller_refuses_to_start(replay: Any, tmp_path: Path) -> None:
    values, recording = replay
    config = config_from_dict({**values, "agents": "tcp://127.0.0.1:0"})
    with pytest.raises(ConfigError, match="keys generate"):
        AgentsExecutor(config)


def test_an_address_in_use_is_a_config_error(replay: Any, keys: Path, tmp_path: Path) -> None:
    values, recording = replay
    first = AgentsExecutor(profile_config(values, recording, tmp_path, keys), min_agents=0)
    first.start()
    try:
        second = AgentsExecutor(profile_config(values, recording, tmp_path, keys, agents=first.endpoint),
                                min_agents=0)
        with pytest.raises(ConfigError, match="cannot listen"):
            second.start()
        second.stop()
    finally:
        first.stop()


class AgentEvents:
    """A throw-away plugin recording the agent_joined / agent_lost hooks."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    @hookimpl
    def agent_joined(self, agent: Any) -> None:
        self.events.append(("joined", agent.name))

    @hookimpl
    def agent_lost(self, agent: Any) -> None:
        self.events.append(("lost", agent.name))


def test_agent_joined_and_agent_lost_hooks_fire(replay: Any, keys: Path, tmp_path: Path, agents: Agents,
                                                register_plugin: Any) -> None:
    recorder = AgentEvents()
    register_plugin(recorder, "agent-events")
    values, recording = replay
    executor = AgentsExecutor(profile_config(values, recording, tmp_path, keys), min_agents=0)
    executor.start()
    try:
        agents.start(executor.endpoint, keys, "agent-1", tmp_path)
        executor.wait_for_agents(1, timeout=20)
        agents.stop()  # the agent says bye: it leaves the pool at once
        deadline = time.monotonic() + 10
        while ("lost", "agent-1") not in recorder.events and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        executor.stop()
    assert recorder.events == [("joined", "agent-1"), ("lost", "agent-1")]


def test_min_agents_is_only_waited_for_at_the_start(replay: Any, tmp_path: Path, agents: Agents) -> None:
    values, recording = replay
    config = profile_config(values, recording, tmp_path, None, min_agents=2)
    executor = AgentsExecutor(config)
    url = executor.listen()
    agents.start(url, None, "plain-1", tmp_path)
    agents.start(url, None, "plain-2", tmp_path)
    executor.start()
    daemon, thread, _ = agents.daemons[1]
    daemon.request_stop()
    thread.join(15)
    executor.wait_for_agents(1, timeout=5)
    summary, _ = run_profile(config, executor)  # one agent left: it still finishes
    assert summary.status == "finished" and summary.failed == 0 and summary.measured > 0
