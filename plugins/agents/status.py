"""`modelyzer agents status`: ask a running controller for its agents, slots and work, and print them.

The request is a `status` message on a fresh DEALER socket, authenticated like an agent (any key in the
controller's authorized directory); the controller answers with a `StatusReport` without registering the
asker as an agent.
"""

from __future__ import annotations

import time
from typing import Any

import zmq

from modelyzer.kernel.errors import ModelyzerError
from modelyzer.plugins.agents.keys import AgentKeys
from modelyzer.plugins.agents.protocol import (
    MessageType,
    ProtocolError,
    StatusReport,
    decode,
    encode,
    message,
    payload_of,
)


def query_status(controller: str, keys: AgentKeys | None, timeout: float = 5.0) -> StatusReport:
    """The controller's status; ModelyzerError when it does not answer within `timeout` seconds."""
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    if keys is not None:
        sock.curve_secretkey = keys.secret
        sock.curve_publickey = keys.public
        sock.curve_serverkey = keys.controller_public
    try:
        sock.connect(controller)
        sock.send(encode(message(MessageType.STATUS, agent="status")))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000)):
                break
            frames = sock.recv_multipart()
            try:
                msg = decode(frames[-1])
                if msg.type is MessageType.STATUS:
                    return payload_of(msg, StatusReport)
            except ProtocolError:
                continue
        raise ModelyzerError(f"agents status: no answer from {controller} within {timeout:g} s (is a profile with "
                             "--agents running there, and is this key authorized?)")
    finally:
        sock.close(linger=0)
        ctx.term()


def format_status(report: StatusReport) -> str:
    """A human-readable table of the report."""
    connected = sum(1 for a in report.agents if a.state == "connected")
    lines = [
        f"controller {report.bind} (session {report.session})",
        f"agents {connected} connected, {report.lost} lost · slots {report.slots} ({report.free} free) · "
        f"in flight {report.in_flight} · queued {report.queued} · done {report.done}",
    ]
    if report.agents:
        lines.append("")
        lines.append(f"{'agent':<20}{'key':<10}{'host':<20}{'state':<11}{'slots':>6}{'busy':>6}{'done':>7}"
                     f"{'silent':>8}  gpus")
        for a in report.agents:
            lines.append(f"{a.name[:19]:<20}{a.key:<10}{a.host[:19]:<20}{a.state:<11}{a.slots:>6}{a.busy:>6}"
                         f"{a.done:>7}{a.silent_seconds:>7.1f}s  {', '.join(a.gpus) or 'CPU'}")
    return "\n".join(lines)


__all__ = ["format_status", "query_status"]
