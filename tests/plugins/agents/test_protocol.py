"""plugins/agents/protocol.py: one envelope, typed payloads, a JSON codec that refuses anything malformed."""

from __future__ import annotations

import json

import pytest

from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.plugins.agents.protocol import (
    MAX_MESSAGE_BYTES,
    PAYLOADS,
    PROTOCOL_VERSION,
    Ack,
    Empty,
    Heartbeat,
    Hello,
    MeasurementReport,
    Message,
    MessageType,
    ProtocolError,
    Run,
    SlotInfo,
    check_version,
    decode,
    encode,
    message,
    payload_of,
)


def a_run_config() -> RunConfig:
    variant = ConfigVariant("m", {"max_batch_size": 8, "instance_group": [{"count": 2, "kind": "KIND_CPU"}]},
                            name="m_config_1")
    return RunConfig("m", variant, LoadSpec(batch_size=2, concurrency=4), perf_analyzer_flags={"x": 1})


def test_every_message_type_has_a_payload_class() -> None:
    assert set(PAYLOADS) == set(MessageType)


def test_run_and_measurement_round_trip() -> None:
    rc = a_run_config()
    msg = decode(encode(message(MessageType.RUN, Run(1, rc), agent="controller", seq=7)))
    assert (msg.type, msg.agent, msg.seq) == (MessageType.RUN, "controller", 7)
    run = payload_of(msg, Run)
    assert run.run_config == rc and run.run_config.key == rc.key
    m = Measurement(rc.key, metrics=(Metric("perf_throughput", 12.5), Metric("gpu_used_memory", 3.0, "GPU-1")),
                    window_seconds=1.5, host="h")
    back = payload_of(decode(encode(message(MessageType.MEASUREMENT, MeasurementReport(0, m)))), MeasurementReport)
    assert back.measurement == m


def test_hello_with_busy_slots_round_trips() -> None:
    hello = Hello(PROTOCOL_VERSION, "a1", "host", 42, (SlotInfo(0, "GPU-1", "A100"), SlotInfo(1)), ("replay",),
                  ("replay",), {1: "abc"}, ("k1",), "inc")
    assert payload_of(decode(encode(message(MessageType.HELLO, hello))), Hello) == hello


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\xff\xfe garbage", "not JSON"),
        (b"[1, 2]", "not a message object"),
        (b'{"type": "launch_missiles"}', "unknown message type"),
        (b'{"agent": "x"}', "unknown message type"),
        (b'{"type": "heartbeat", "seq": "many"}', "malformed heartbeat"),
        (b'{"type": "heartbeat", "payload": [1]}', "malformed heartbeat"),
        (b"[" * 100000, "not JSON"),
    ],
)
def test_malformed_frames_are_protocol_errors(frame: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode(frame)


def test_a_payload_that_does_not_fit_is_a_protocol_error() -> None:
    msg = Message(MessageType.RUN, payload={"slot": "zero"})
    with pytest.raises(ProtocolError, match="malformed run payload"):
        payload_of(msg, Run)
    assert payload_of(Message(MessageType.BYE), Empty) == Empty()
    assert payload_of(Message(MessageType.ACK, payload={"keys": ["a"]}), Ack).keys == ("a",)


def test_oversized_frames_are_refused_both_ways() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        decode(b" " * (MAX_MESSAGE_BYTES + 1))
    huge = Message(MessageType.HEARTBEAT, payload={"x": "y" * MAX_MESSAGE_BYTES})
    with pytest.raises(ProtocolError, match="exceeds"):
        encode(huge)


def test_the_wire_form_is_plain_json() -> None:
    data = json.loads(encode(message(MessageType.HEARTBEAT, Heartbeat({0: "k"}, 3), agent="a", seq=1)))
    assert data == {"type": "heartbeat", "agent": "a", "seq": 1, "token": "",
                    "payload": {"busy": {"0": "k"}, "seen_seq": 3, "unacked": [], "server_starts": 0,
                                "model_loads": 0, "warming": []}}


def test_version_mismatch_is_explained() -> None:
    assert check_version(Hello(PROTOCOL_VERSION, "a")) is None
    reason = check_version(Hello(PROTOCOL_VERSION + 1, "a"))
    assert reason is not None and "version" in reason and "same modelyzer version" in reason
