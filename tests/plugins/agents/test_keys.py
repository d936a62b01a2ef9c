"""plugins/agents/keys.py: key generation and loading, and the ZAP decisions (authorized keys only)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
import zmq
from zmq.utils import z85

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.liveness import FakeClock
from modelyzer.plugins.agents.keys import (
    ZapHandler,
    agent_key_name,
    authorized_keys,
    generate_keys,
    load_agent_keys,
    load_controller_keys,
)


def zap_request(public: bytes | None, mechanism: bytes = b"CURVE", address: bytes = b"10.0.0.7") -> list[bytes]:
    credentials = [z85.decode(public)] if public else []
    return [b"route", b"", b"1.0", b"req-1", b"", address, b"", mechanism, *credentials]


def test_generate_writes_pairs_and_the_authorized_directory(tmp_path: Path) -> None:
    written = generate_keys(tmp_path / "k", agents=2)
    names = sorted(p.relative_to(tmp_path / "k").as_posix() for p in written)
    assert names == [
        "agent-1.key", "agent-1.key_secret", "agent-2.key", "agent-2.key_secret",
        "authorized_keys/agent-1.key", "authorized_keys/agent-2.key", "controller.key", "controller.key_secret",
    ]
    assert stat.S_IMODE((tmp_path / "k" / "controller.key_secret").stat().st_mode) == 0o600
    assert generate_keys(tmp_path / "k", agents=2) == []  # idempotent: nothing overwritten
    assert len(generate_keys(tmp_path / "k", agents=3)) == 3  # agent-3 added


def test_controller_and_agent_keys_load(tmp_path: Path) -> None:
    generate_keys(tmp_path, agents=1)
    controller = load_controller_keys(tmp_path)
    agent = load_agent_keys(tmp_path)
    assert agent.name == "agent" and agent.controller_public == controller.public
    assert list(authorized_keys(controller.authorized)) == [agent.public]


def test_missing_keys_are_one_line_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keys generate"):
        load_controller_keys(tmp_path)
    with pytest.raises(ConfigError, match="keys generate"):
        load_agent_keys(tmp_path, "agent")
    (tmp_path / "controller.key_secret").write_text("nonsense")
    with pytest.raises(ConfigError, match="not a CURVE key file"):
        load_controller_keys(tmp_path)


def test_the_agent_key_pair_is_chosen_or_must_be_named(tmp_path: Path) -> None:
    generate_keys(tmp_path, agents=2)
    with pytest.raises(ConfigError, match="--key NAME"):
        agent_key_name(tmp_path, None)
    assert agent_key_name(tmp_path, "agent-2") == "agent-2"
    (tmp_path / "agent-2.key_secret").unlink()
    assert agent_key_name(tmp_path, None) == "agent-1"


def test_zap_accepts_authorized_keys_with_the_key_as_user_id(tmp_path: Path) -> None:
    generate_keys(tmp_path)
    agent = load_agent_keys(tmp_path)
    reply = ZapHandler(tmp_path / "authorized_keys").reply(zap_request(agent.public))
    assert reply[:2] == [b"route", b""]
    assert reply[2:] == [b"1.0", b"req-1", b"200", b"OK", agent.public, b""]


def test_zap_refuses_and_logs_unknown_keys_and_other_mechanisms(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    generate_keys(tmp_path)
    stranger, _ = zmq.curve_keypair()
    clock = FakeClock()
    handler = ZapHandler(tmp_path / "authorized_keys", clock)
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        assert handler.reply(zap_request(stranger))[4] == b"400"
        assert handler.reply(zap_request(stranger))[4] == b"400"  # logged once per minute
        assert handler.reply(zap_request(None, b"NULL"))[4] == b"400"
    refusals = [r.getMessage() for r in caplog.records]
    assert len(refusals) == 2
    assert stranger.decode() in refusals[0] and "10.0.0.7" in refusals[0] and "authorized_keys" in refusals[0]
    assert "only CURVE" in refusals[1]
    assert handler.reply(zap_request(stranger)[:5]) == []  # too short: no answer
    assert handler.reply([b"r", b"", b"2.0", *zap_request(stranger)[3:]])[4] == b"500"


def test_a_key_added_later_is_accepted_without_restart(tmp_path: Path) -> None:
    generate_keys(tmp_path)
    handler = ZapHandler(tmp_path / "authorized_keys")
    generate_keys(tmp_path, agents=2)  # adds agent-1, agent-2 and authorizes them
    newcomer = load_agent_keys(tmp_path, "agent-2")
    assert handler.reply(zap_request(newcomer.public))[4] == b"200"


def test_a_deleted_key_is_refused_at_the_next_handshake_and_no_longer_admitted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    generate_keys(tmp_path, agents=2)
    clock = FakeClock()
    handler = ZapHandler(tmp_path / "authorized_keys", clock)
    agent = load_agent_keys(tmp_path, "agent-1")
    assert handler.reply(zap_request(agent.public))[4] == b"200"
    assert handler.admits(agent.public.decode())
    (tmp_path / "authorized_keys" / "agent-1.key").unlink()
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        assert handler.reply(zap_request(agent.public))[4] == b"400"  # every handshake looks at the directory
    assert "revoked" in caplog.text and "agent-1" in caplog.text
    assert not handler.admits(agent.public.decode())
    other = load_agent_keys(tmp_path, "agent-2")
    assert handler.reply(zap_request(other.public))[4] == b"200"  # the others stay authorized


def test_connected_keys_are_rechecked_for_messages_at_most_every_fifth_of_a_second(tmp_path: Path) -> None:
    generate_keys(tmp_path)
    clock = FakeClock()
    handler = ZapHandler(tmp_path / "authorized_keys", clock)
    agent = load_agent_keys(tmp_path).public.decode()
    (tmp_path / "authorized_keys" / "agent.key").unlink()
    assert handler.admits(agent)  # looked at just now (at start): not again before 0.2 s
    clock.advance(0.2)
    assert not handler.admits(agent)
    (tmp_path / "authorized_keys" / "agent.key").write_text((tmp_path / "agent.key").read_text())
    clock.advance(0.2)
    assert handler.admits(agent)  # put back: authorized again
