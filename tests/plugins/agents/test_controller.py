"""plugins/agents/controller.py + agent.py on real sockets, in one process: CURVE, ZAP, the engine, status, faults.

Agents run as threads here (fast); tests/integration/test_agents.py runs them as separate processes and
kills them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.errors import ConfigError, ModelyzerError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.kernel.store import Store
from modelyzer.plugins.agents.agent import EXIT_REFUSED
from modelyzer.plugins.agents.controller import AgentsExecutor
from modelyzer.plugins.agents.keys import generate_keys, load_agent_keys
from modelyzer.plugins.agents.protocol import Empty, MeasurementReport, MessageType, Refused, Run, payload_of
from modelyzer.plugins.agents.status import format_status, query_status
from tests.plugins.agents.realnet import Agents, RawAgent, profile_config, run_profile, wait_until


@pytest.fixture(autouse=True)
def fast_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYZER_AGENT_HEARTBEAT", "0.2")


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


def test_a_deleted_key_file_revokes_a_connected_agent(replay: Any, keys: Path, tmp_path: Path, agents: Agents,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    values, recording = replay
    executor = AgentsExecutor(profile_config(values, recording, tmp_path, keys), min_agents=0)
    executor.start()
    try:
        code = agents.start(executor.endpoint, keys, "agent-1", tmp_path)
        executor.wait_for_agents(1, timeout=20)
        agent_id = load_agent_keys(keys, "agent-1").public.decode()
        (keys / "authorized_keys" / "agent-1.key").unlink()
        # dropped at its next heartbeat (every 0.2 s), told so: it exits with code 2
        took = wait_until(lambda: bool(code), 5, "the revoked agent to exit")
        print(f"revoked agent dropped and exited {took:.2f} s after its key file was deleted")
        assert code == [EXIT_REFUSED] and took < 4
        assert executor.hub.agents[agent_id].state == "gone"
        assert "agent-1#" in caplog.text and "revoked" in caplog.text
        again = agents.start(executor.endpoint, keys, "agent-1", tmp_path)  # a new connection: refused at the handshake
        wait_until(lambda: bool(again), 10, "the second attempt to exit")
        assert again == [EXIT_REFUSED] and "refused agent key" in caplog.text
    finally:
        executor.stop()


def test_a_refused_twin_with_the_same_key_does_not_touch_the_real_agent(replay: Any, keys: Path, tmp_path: Path,
                                                                        agents: Agents,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYZER_AGENT_HEARTBEAT", "0.5")  # a 2.5 s window: a busy machine loses nobody
    values, recording = replay
    config = profile_config(values, recording, tmp_path, keys, replay_duration=0.1)
    executor = AgentsExecutor(config)
    agents.start(executor.listen(), keys, "agent-1", tmp_path)
    outcome: list[Any] = []
    engine = threading.Thread(target=lambda: outcome.append(run_profile(config, executor)), daemon=True)
    engine.start()
    agent_id = load_agent_keys(keys, "agent-1").public.decode()
    wait_until(lambda: executor.hub.done >= 2, 30, "the first measurements")
    twin = RawAgent(executor.endpoint, load_agent_keys(keys, "agent-1"), name="agent-1")
    try:
        twin.hello(incarnation="twin")
        refused = payload_of(twin.recv(MessageType.REFUSED), Refused)
        assert "in use" in refused.reason and not refused.fatal
        twin.send(MessageType.HEARTBEAT)
        twin.send(MessageType.BYE, Empty())
        twin.send(MessageType.BYE, Empty(), token="0" * 16)
        time.sleep(0.5)
        with executor._lock:
            real = executor.hub.agents[agent_id]
            assert real.state == "connected" and executor.hub.lost == 0 and real.host != "rawhost"
    finally:
        twin.close()
    engine.join(60)
    summary, _ = outcome[0]
    con = sqlite3.connect(config.results_db)
    count, distinct = con.execute("select count(*), count(distinct run_config_key) from measurements").fetchone()
    con.close()
    assert summary.status == "finished" and summary.failed == 0
    assert count == distinct == summary.measured == Store(recording).counts()["measurements"]
    assert executor.hub.lost == 0


def test_invalid_results_from_a_connected_agent_are_rejected_requeued_then_failed(
        replay: Any, keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MODELYZER_AGENT_HEARTBEAT", "1")  # the raw agent sends no heartbeats: a 5 s window
    values, recording = replay
    config = profile_config(values, recording, tmp_path, keys)
    executor = AgentsExecutor(config, min_agents=1)
    raw = RawAgent(executor.listen(), load_agent_keys(keys, "agent-1"), name="agent-1")
    model = config.models[0].name
    work = RunConfig(model, ConfigVariant(model, {"max_batch_size": 1}, name=f"{model}_config_1"),
                     LoadSpec(concurrency=1))
    bad = [(Metric("perf_throughput", float("nan")),), (Metric("perf_throughput", -4.0),),
           (Metric("perf_latency_p99", 2.0),)]  # NaN, negative, "ok" without the throughput to rank by
    runs: list[Run] = []

    def serve() -> None:
        raw.hello()
        raw.recv(MessageType.WELCOME)
        for metrics in bad:
            runs.append(payload_of(raw.recv(MessageType.RUN), Run))
            m = Measurement(runs[-1].run_config.key, metrics=metrics)
            raw.send(MessageType.MEASUREMENT, MeasurementReport(runs[-1].slot, m))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        results = list(executor.execute([work]))
        server.join(10)
    finally:
        executor.stop()
        raw.close()
    assert [r.run_config.key for r in runs] == [work.key] * 3  # requeued twice after an invalid result, then given up
    ((got, stored),) = results
    assert got == work and stored.status == "failed" and "invalid result from agent agent-1#" in str(stored.error)
    assert "without perf_throughput" in str(stored.error)
    for reason in ("perf_throughput is nan", "perf_throughput is negative (-4)", "requeued (2 of 3",
                   "stored as failed after 3"):
        assert reason in caplog.text
