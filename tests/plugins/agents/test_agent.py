"""plugins/agents/agent.py (+ guard.py) on real sockets: broken-off handshakes are explained within seconds."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from modelyzer.plugins.agents.controller import AgentsExecutor
from modelyzer.plugins.agents.keys import generate_keys
from tests.plugins.agents.realnet import Agents, profile_config, wait_until


def test_a_wrong_controller_key_is_named_within_seconds(replay: Any, keys: Path, tmp_path: Path, agents: Agents,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    values, recording = replay
    executor = AgentsExecutor(profile_config(values, recording, tmp_path, keys), min_agents=0)
    executor.start()
    other = tmp_path / "other"
    generate_keys(other)  # another controller's key pair
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for name in ("agent-1.key", "agent-1.key_secret"):
        shutil.copy(keys / name, wrong / name)
    shutil.copy(other / "controller.key", wrong / "controller.key")
    caplog.set_level(logging.INFO, logger="modelyzer")
    try:
        started = time.monotonic()
        code = agents.start(executor.endpoint, wrong, "agent-1", tmp_path)
        took = wait_until(lambda: "does not match" in caplog.text, 5, "the wrong-key line")
        lines = [r.getMessage() for r in caplog.records if "does not match" in r.getMessage()]
        assert len(lines) == 1 and str(wrong / "controller.key") in lines[0] and "copy controller.key" in lines[0]
        assert took < 3, took
        wait_until(lambda: "cryptographic error" in caplog.text, 2, "the controller's line")  # its side too
        assert str(keys / "controller.key") in caplog.text
        time.sleep(0.5)
        assert code == [] and not executor.hub.connected()  # it keeps trying (the controller may be the wrong one)
        assert len([r for r in caplog.records if "does not match" in r.getMessage()]) == 1  # once a minute at most
        print(f"wrong-key line after {time.monotonic() - started - 0.5:.2f} s")
    finally:
        agents.stop()
        executor.stop()


@pytest.mark.parametrize("agent_secure", [False, True])
def test_insecure_on_one_end_only_is_told(replay: Any, keys: Path, tmp_path: Path, agents: Agents,
                                          caplog: pytest.LogCaptureFixture, agent_secure: bool) -> None:
    values, recording = replay
    executor = AgentsExecutor(profile_config(values, recording, tmp_path, None if agent_secure else keys),
                              min_agents=0)
    executor.start()
    try:
        agents.start(executor.endpoint, keys if agent_secure else None, "agent-1" if agent_secure else None, tmp_path)
        wait_until(lambda: "--insecure" in caplog.text and "handshake with the controller" in caplog.text, 5,
                   "the handshake line")
    finally:
        agents.stop()
        executor.stop()
