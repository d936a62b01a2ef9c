"""Helpers for the agent tests on real sockets: agent daemons in threads, a raw protocol client, a profile run."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import zmq

from modelyzer.kernel import assembly
from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.engine import Engine
from modelyzer.kernel.progress import Progress
from modelyzer.kernel.store import Store
from modelyzer.plugins.agents.agent import AgentDaemon
from modelyzer.plugins.agents.controller import AgentsExecutor
from modelyzer.plugins.agents.keys import AgentKeys, load_agent_keys
from modelyzer.plugins.agents.protocol import (
    PROTOCOL_VERSION,
    Hello,
    Message,
    MessageType,
    SlotInfo,
    decode,
    encode,
    message,
)


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


class RawAgent:
    """A DEALER speaking the protocol by hand (CURVE with `keys`), to send what a real agent never would."""

    def __init__(self, url: str, keys: AgentKeys | None, name: str = "raw") -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if keys is not None:
            self.sock.curve_secretkey = keys.secret
            self.sock.curve_publickey = keys.public
            self.sock.curve_serverkey = keys.controller_public
        self.sock.connect(url)
        self.name = name
        self.seq = 0
        self.token = ""

    def send(self, type_: MessageType, payload: Any = None, token: str | None = None) -> None:
        self.seq += 1
        self.sock.send(encode(message(type_, payload, agent=self.name, seq=self.seq,
                                      token=self.token if token is None else token)))

    def hello(self, slots: int = 1, incarnation: str = "raw-1") -> None:
        self.send(MessageType.HELLO, Hello(PROTOCOL_VERSION, self.name, "rawhost", slots=tuple(
            SlotInfo(i) for i in range(slots)), launch_modes=("replay",), incarnation=incarnation))

    def recv(self, wanted: MessageType, timeout: float = 10.0) -> Message:
        """The next message of type `wanted` (others are skipped; heartbeats are answered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sock.poll(50):
                msg = decode(self.sock.recv())
                if msg.type is MessageType.WELCOME:
                    self.token = str(msg.payload.get("token", ""))
                if msg.type is wanted:
                    return msg
        raise AssertionError(f"no {wanted} message within {timeout} s")

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


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


def wait_until(condition: Any, timeout: float, what: str) -> float:
    """Seconds until `condition()` held (AssertionError after `timeout`)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started
