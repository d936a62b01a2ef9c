"""The agent protocol: one `Message` envelope, typed payloads, one JSON codec (cattrs), size and version checks.

Every frame on the wire is `encode(Message)`: UTF-8 JSON of `{type, agent, seq, token, payload}`. `type` is a
`MessageType`; `agent` is the sender's self-declared name (informational — the controller identifies agents
by their authenticated CURVE key); `seq` counts the sender's messages in its session; `token` is the
registration token of the agent's last welcome, echoed in everything it sends (the controller takes a message
as the registered agent's only with the right token: another process presenting the same key has none); `payload` is the
unstructured form of the attrs class `PAYLOADS[type]`. `decode()` refuses frames over `MAX_MESSAGE_BYTES`,
non-JSON, unknown types and malformed envelopes with a `ProtocolError` (the receiver logs it and drops the
frame); `payload_of()` structures the payload, also raising `ProtocolError` when it does not fit.

The conversation (agent → controller ▸, controller → agent ◂):

    ▸ hello {version, name, host, slots, launch modes, load generators, busy, unacked}
    ◂ welcome {session, token, heartbeat interval, liveness, config}   or  ◂ refused {reason, fatal}
    ◂ run {slot, run_config}      ▸ measurement {slot, measurement}     ◂ ack {keys}
    ▸ reject {slot, key, reason}  (the slot cannot take it: it goes back to the queue)
    ▸◂ heartbeat (both ways; the agent's carries busy slots, the last controller seq seen, counters)
    ◂ rehello  (the controller does not know this agent, e.g. it was declared lost or restarted)
    ◂ bye  (the profile is over: stop servers)      ▸ bye (the agent is shutting down)
    ▸ status  ◂ status {snapshot}  (`modelyzer agents status`; answered without registering)
"""

from __future__ import annotations

import enum
import json
from typing import Any, TypeVar

import attrs
import cattrs

from modelyzer.kernel.models import Measurement, RunConfig, converter

PROTOCOL_VERSION = 2  # 2: the registration token (welcome → every agent message)
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # also the ZMQ_MAXMSGSIZE of the controller's socket
MAX_LISTED = 1000  # keys listed in a heartbeat or hello

T = TypeVar("T")


class ProtocolError(ValueError):
    """A frame that is not a valid message of this protocol (logged and dropped, never fatal)."""


class MessageType(enum.StrEnum):
    HELLO = "hello"
    WELCOME = "welcome"
    REFUSED = "refused"
    REHELLO = "rehello"
    HEARTBEAT = "heartbeat"
    RUN = "run"
    REJECT = "reject"
    MEASUREMENT = "measurement"
    ACK = "ack"
    BYE = "bye"
    STATUS = "status"


@attrs.frozen
class Message:
    """The one envelope of the protocol (see the module docstring)."""

    type: MessageType
    agent: str = ""
    seq: int = 0
    payload: dict[str, Any] = attrs.field(factory=dict)
    token: str = ""  # agent → controller: the token of its last welcome ("" before it was welcomed)


# --- payloads ----------------------------------------------------------------------------------------------
@attrs.frozen
class SlotInfo:
    """One slot an agent offers: its index, its GPU (UUID and name, empty for a CPU slot)."""

    index: int
    gpu: str = ""
    gpu_name: str = ""
    gpu_index: int = 0
    total_memory_mb: int = 0


@attrs.frozen
class Hello:
    version: int
    name: str
    host: str = ""
    pid: int = 0
    slots: tuple[SlotInfo, ...] = ()
    launch_modes: tuple[str, ...] = ()
    load_generators: tuple[str, ...] = ()
    busy: dict[int, str] = attrs.field(factory=dict)  # slot index → RunConfig key it is running
    unacked: tuple[str, ...] = ()  # keys of measurements it holds, not yet acknowledged
    incarnation: str = ""  # random per agent process: a stale hello of the same process is ignored
    warms: bool = False  # its slots warm up (build executors, start servers) for a new config, then report ready
    config_id: str = ""  # the config its slots are built for ("" none): another one means they warm up first
    warming: tuple[int, ...] = ()  # slots still warming up for `config_id`


@attrs.frozen
class Welcome:
    session: str
    heartbeat_interval: float
    liveness: int
    config: dict[str, Any] = attrs.field(factory=dict)
    config_id: str = ""
    token: str = ""  # this registration's token: the agent echoes it in every message until the next welcome


@attrs.frozen
class Refused:
    reason: str
    fatal: bool = True  # the agent exits (e.g. protocol mismatch); else it retries later


@attrs.frozen
class Heartbeat:
    busy: dict[int, str] = attrs.field(factory=dict)
    seen_seq: int = 0  # highest controller seq received in this session
    unacked: tuple[str, ...] = ()  # keys of measurements held, not yet acknowledged (at most MAX_LISTED)
    server_starts: int = 0
    model_loads: int = 0
    warming: tuple[int, ...] = ()  # slots still warming up: not free for RunConfigs yet


@attrs.frozen
class Run:
    slot: int
    run_config: RunConfig


@attrs.frozen
class Reject:
    slot: int
    key: str
    reason: str = ""


@attrs.frozen
class MeasurementReport:
    slot: int
    measurement: Measurement
    server_starts: int = 0  # the agent's counters when it sent this
    model_loads: int = 0


@attrs.frozen
class Ack:
    keys: tuple[str, ...] = ()


@attrs.frozen
class Empty:
    """Payload of rehello, bye and status requests."""


@attrs.frozen
class AgentStatus:
    name: str
    key: str
    host: str
    state: str  # connected, lost
    slots: int
    busy: int
    done: int
    gpus: tuple[str, ...] = ()
    silent_seconds: float = 0.0


@attrs.frozen
class StatusReport:
    bind: str
    session: str
    agents: tuple[AgentStatus, ...] = ()
    slots: int = 0
    free: int = 0
    in_flight: int = 0
    queued: int = 0
    done: int = 0
    lost: int = 0


PAYLOADS: dict[MessageType, type] = {
    MessageType.HELLO: Hello,
    MessageType.WELCOME: Welcome,
    MessageType.REFUSED: Refused,
    MessageType.REHELLO: Empty,
    MessageType.HEARTBEAT: Heartbeat,
    MessageType.RUN: Run,
    MessageType.REJECT: Reject,
    MessageType.MEASUREMENT: MeasurementReport,
    MessageType.ACK: Ack,
    MessageType.BYE: Empty,
    MessageType.STATUS: StatusReport,  # a request carries Empty, the answer a StatusReport
}


# --- codec -------------------------------------------------------------------------------------------------
def message(type_: MessageType, payload: Any = None, *, agent: str = "", seq: int = 0, token: str = "") -> Message:
    """A Message with `payload` (an attrs payload instance, or None) unstructured."""
    body = converter.unstructure(payload) if payload is not None else {}
    return Message(type_, agent=agent, seq=seq, payload=body, token=token)


def encode(msg: Message) -> bytes:
    data = json.dumps(converter.unstructure(msg), separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"{msg.type} message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    return data


def decode(frame: bytes) -> Message:
    """Parse one frame; `ProtocolError` (with a short reason) for anything that is not a valid Message."""
    if len(frame) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        data = json.loads(frame)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ProtocolError(f"not JSON ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"not a message object (JSON {type(data).__name__})")
    kind = data.get("type")
    if kind not in MessageType.__members__.values():
        raise ProtocolError(f"unknown message type {str(kind)[:40]!r}")
    try:
        return converter.structure(data, Message)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as err:
        raise ProtocolError(f"malformed {kind} message ({type(err).__name__})") from None


def payload_of(msg: Message, cls: type[T]) -> T:
    """The payload of `msg` as `cls`; `ProtocolError` when it does not fit."""
    try:
        return converter.structure(msg.payload, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        raise ProtocolError(f"malformed {msg.type} payload ({type(err).__name__}: {str(err)[:120]})") from None


def check_version(hello: Hello) -> str | None:
    """None when the agent speaks this protocol version, else the reason to refuse it."""
    if hello.version == PROTOCOL_VERSION:
        return None
    return (
        f"protocol version mismatch: agent {hello.name!r} speaks version {hello.version}, this controller "
        f"version {PROTOCOL_VERSION}; install the same modelyzer version on the agent and the controller"
    )


__all__ = [
    "MAX_LISTED",
    "MAX_MESSAGE_BYTES",
    "PAYLOADS",
    "PROTOCOL_VERSION",
    "Ack",
    "AgentStatus",
    "Empty",
    "Heartbeat",
    "Hello",
    "MeasurementReport",
    "Message",
    "MessageType",
    "ProtocolError",
    "Refused",
    "Reject",
    "Run",
    "SlotInfo",
    "StatusReport",
    "Welcome",
    "check_version",
    "decode",
    "encode",
    "message",
    "payload_of",
]
