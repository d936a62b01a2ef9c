"""plugins/agents/guard.py: pending connections capped, the fd limit raised, failures explained; real sockets too."""

from __future__ import annotations

import logging
import resource
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from modelyzer.kernel.liveness import FakeClock
from modelyzer.plugins.agents.controller import AgentsExecutor
from modelyzer.plugins.agents.guard import ConnectionGuard, pending_cap, raise_fd_limit, shutdown_fd
from tests.plugins.agents.realnet import Agents, profile_config, wait_until

RAW_CONNECTIONS = 300


def test_the_oldest_pending_connections_beyond_the_cap_are_closed(caplog: pytest.LogCaptureFixture) -> None:
    closed: list[int] = []
    clock = FakeClock()
    guard = ConnectionGuard(cap=3, bind="tcp://*:1", fd_limit=64, clock=clock, close=closed.append)
    for fd in range(10, 16):
        guard.event(zmq.EVENT_ACCEPTED, fd)
    guard.seen(11)  # authenticated: never evicted
    guard.event(zmq.EVENT_DISCONNECTED, 12)
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        assert guard.enforce() == 1 and closed == [10]
        guard.event(zmq.EVENT_ACCEPTED, 16)
        assert guard.enforce() == 1 and closed == [10, 13]  # logged once a minute only
    assert list(guard.pending) == [14, 15, 16] and guard.authenticated == {11}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "not completed the handshake (cap 3" in lines[0]


def test_failures_are_logged_with_their_cause_once_a_minute(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    guard = ConnectionGuard(cap=8, bind="tcp://*:1", fd_limit=64, keys_dir=tmp_path, clock=clock)
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        for _ in range(3):
            guard.event(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        guard.event(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        guard.event(zmq.EVENT_ACCEPT_FAILED, 24)  # EMFILE
        clock.advance(61)
        guard.event(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert "another controller's public key" in lines[0] and str(tmp_path / "controller.key") in lines[0]
    assert "--insecure" in lines[1] and "Too many open files" in lines[2] and "cryptographic" in lines[3]


def test_the_fd_limit_is_raised_and_the_cap_fits_in_it() -> None:
    soft = raise_fd_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 256
    assert pending_cap(1024) == 256 and pending_cap(200) == 100 and pending_cap(4, 2) == 8


def test_shutdown_fd_ends_a_connection_without_closing_the_descriptor() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    shutdown_fd(accepted.fileno())
    assert client.recv(1) == b""  # EOF at the peer
    assert accepted.fileno() >= 0  # the descriptor stays its owner's
    shutdown_fd(10**6)  # not open: nothing happens
    for s in (accepted, client, server):
        s.close()


def test_a_real_agent_gets_in_past_hundreds_of_connections_that_never_handshake(
        replay: Any, keys: Path, tmp_path: Path, agents: Agents, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MODELYZER_AGENT_MAX_PENDING", "50")
    monkeypatch.setenv("MODELYZER_AGENT_HEARTBEAT", "0.2")
    values, recording = replay
    executor = AgentsExecutor(profile_config(values, recording, tmp_path, keys), min_agents=0)
    executor.start()
    idle: list[socket.socket] = []
    try:
        port = int(executor.endpoint.rsplit(":", 1)[1])
        started = time.monotonic()
        for _ in range(RAW_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        assert executor.guard is not None
        wait_until(lambda: executor.guard is not None and executor.guard.evicted >= RAW_CONNECTIONS - 50, 5,
                   "the oldest idle connections to be closed")
        agents.start(executor.endpoint, keys, "agent-1", tmp_path)
        executor.wait_for_agents(1, timeout=10)
        took = time.monotonic() - started
        assert "have not completed the handshake (cap 50" in caplog.text
        assert len(executor.guard.pending) <= 50
        print(f"{RAW_CONNECTIONS} idle connections, {executor.guard.evicted} closed, agent in after {took:.2f} s")
    finally:
        for s in idle:
            s.close()
        agents.stop()
        executor.stop()
