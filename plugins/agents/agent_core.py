"""An agent's protocol logic without sockets: registering, heartbeats, running, keeping measurements until acked.

`AgentCore` is fed the controller's frames (`handle`) and time (`tick`), reports finished measurements
(`finished`), and queues frames to send in `outbox`; `plugins/agents/agent.py` owns the DEALER socket and the
slot threads. Rules (Paranoid Pirate, ZeroMQ guide ch. 4):

- until welcomed, say hello with a delay doubling from 1 to 32 s; the hello lists busy slots and the keys
  of unacknowledged measurements, so a controller that lost this agent (or restarted) can reconcile;
- any message from the controller proves it alive; after `interval × liveness` seconds of silence the
  caller recreates its socket (`tick()` returns `RECONNECT`) and says hello again; after `max_silence`
  seconds the agent gives up (`EXIT`);
- a finished measurement is kept until the controller acks it (after its SQLite commit) and is resent
  after a welcome and whenever it stayed unacknowledged for two liveness windows;
- a RUN for a busy slot is rejected, a RUN for a measurement already held is answered by resending it;
- a fatal refusal (protocol version mismatch) raises `AgentRefused`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from modelyzer.kernel.liveness import HEARTBEAT_INTERVAL, LIVENESS, Backoff, Clock, Liveness
from modelyzer.kernel.models import Measurement, RunConfig
from modelyzer.plugins.agents.protocol import (
    MAX_LISTED,
    PROTOCOL_VERSION,
    Ack,
    Heartbeat,
    Hello,
    MeasurementReport,
    Message,
    MessageType,
    ProtocolError,
    Refused,
    Reject,
    Run,
    SlotInfo,
    Welcome,
    decode,
    encode,
    message,
    payload_of,
)

log = logging.getLogger("modelyzer")

RECONNECT = "reconnect"
EXIT = "exit"
CONTROLLER = "controller"
MAX_SILENCE = 600.0  # seconds without the controller before the agent exits


class AgentRefused(Exception):
    """The controller refused this agent for good (e.g. a protocol version mismatch)."""


class AgentCore:
    """Agent state machine (see the module docstring)."""

    def __init__(
        self,
        *,
        name: str,
        host: str = "",
        pid: int = 0,
        slots: tuple[SlotInfo, ...],
        launch_modes: tuple[str, ...] = (),
        load_generators: tuple[str, ...] = (),
        on_run: Callable[[int, RunConfig], None] = lambda slot, rc: None,
        on_config: Callable[[dict[str, Any], str], None] = lambda config, config_id: None,
        on_bye: Callable[[], None] = lambda: None,
        counters: Callable[[], dict[str, int]] = dict,
        max_silence: float = MAX_SILENCE,
        clock: Clock = time.monotonic,
        warms: bool = False,
    ) -> None:
        self.name = name
        self.host = host
        self.pid = pid
        self.slots = {s.index: s for s in slots}
        self.launch_modes = launch_modes
        self.load_generators = load_generators
        self.on_run = on_run
        self.on_config = on_config
        self.on_bye = on_bye
        self.counters = counters
        self.max_silence = max_silence
        self.warms = warms  # on_config warms the slots up; each reports `slot_ready` (until then not free)
        self.clock = clock
        self.incarnation = uuid.uuid4().hex[:12]
        self.watch = Liveness(HEARTBEAT_INTERVAL, LIVENESS, clock)
        self.backoff = Backoff(clock=clock)
        self.registered = False
        self.session = ""
        self.token = ""  # of the last welcome: sent with every message (binds them to this registration)
        self.config_id = ""
        self.seq = 0
        self.seen_seq = 0
        self.busy: dict[int, str] = {}
        self.warming: set[int] = set()  # slots building their executor/server for `config_id`: not ready yet
        self.unacked: dict[str, tuple[float, MeasurementReport]] = {}
        self.outbox: list[bytes] = []
        self._alive_since = clock()

    # --- input -----------------------------------------------------------------------------------------------
    def handle(self, frame: bytes) -> None:
        """One frame from the controller; malformed ones are logged and dropped. Raises AgentRefused."""
        try:
            msg = decode(frame)
            self.watch.heard(CONTROLLER)
            self._alive_since = self.clock()
            self._dispatch(msg)
        except ProtocolError as err:
            log.warning("dropped a message from the controller: %s", err)

    def _dispatch(self, msg: Message) -> None:
        if msg.type is MessageType.WELCOME:
            self._welcome(payload_of(msg, Welcome), msg.seq)
            return
        self.seen_seq = max(self.seen_seq, msg.seq)
        if msg.type is MessageType.HEARTBEAT:
            return
        if msg.type is MessageType.RUN:
            self._run(payload_of(msg, Run))
        elif msg.type is MessageType.ACK:
            for key in payload_of(msg, Ack).keys:
                self.unacked.pop(key, None)
        elif msg.type is MessageType.REHELLO:
            if self.registered:
                log.info("the controller asks this agent to register again")
            self.registered = False
            self.backoff.reset()
        elif msg.type is MessageType.REFUSED:
            refused = payload_of(msg, Refused)
            if refused.fatal:
                raise AgentRefused(refused.reason)
            log.error("the controller refused this agent: %s (retrying later)", refused.reason)
            self.registered = False
        elif msg.type is MessageType.BYE:
            log.info("the controller finished its profile: stopping servers, waiting for the next one")
            self.on_bye()
        else:
            raise ProtocolError(f"unexpected {msg.type} message from the controller")

    def _welcome(self, welcome: Welcome, seq: int) -> None:
        self.registered = True
        self.session = welcome.session
        self.token = welcome.token
        self.seen_seq = seq
        self.backoff.reset()
        self.watch = Liveness(welcome.heartbeat_interval, welcome.liveness, self.clock)
        self.watch.heard(CONTROLLER)
        if welcome.config_id != self.config_id:
            self.config_id = welcome.config_id
            if self.warms:  # on_config warms them (or clears this when the config does not load)
                self.warming = set(self.slots)
            self.on_config(welcome.config, welcome.config_id)
        log.info("registered with the controller (session %s)%s", welcome.session,
                 f"; resending {len(self.unacked)} unacknowledged measurement(s)" if self.unacked else "")
        for key in list(self.unacked):
            self._send_measurement(key)

    def _run(self, run: Run) -> None:
        key = run.run_config.key
        if key in self.unacked:
            self._send_measurement(key)  # measured already: the controller has not seen it yet
            return
        if run.slot not in self.slots:
            self._send(MessageType.REJECT, Reject(run.slot, key, f"no slot {run.slot} on this agent"))
            return
        current = self.busy.get(run.slot)
        if current == key:
            return
        if current is not None:
            self._send(MessageType.REJECT, Reject(run.slot, key, f"slot busy with {current}"))
            return
        self.busy[run.slot] = key
        self.on_run(run.slot, run.run_config)

    # --- from the slots ---------------------------------------------------------------------------------------
    def slot_ready(self, slot: int) -> None:
        """A slot finished warming up; when the last one is, tell the controller at once (a heartbeat)."""
        if slot not in self.warming:
            return
        self.warming.discard(slot)
        if not self.warming and self.registered:
            self._heartbeat()

    def finished(self, slot: int, measurement: Measurement) -> None:
        """A slot finished: keep the measurement until acked, and send it now."""
        key = measurement.run_config_key
        if self.busy.get(slot) == key:
            del self.busy[slot]
        self.unacked[key] = (self.clock(), MeasurementReport(slot, measurement, **_counters(self.counters())))
        self._send_measurement(key)

    # --- time -------------------------------------------------------------------------------------------------
    def tick(self) -> str | None:
        """Hello, heartbeat and resend when due; RECONNECT after the liveness window, EXIT after max_silence."""
        now = self.clock()
        if now - self._alive_since > self.max_silence:
            return EXIT
        if not self.registered:
            if self.backoff.due():
                self.backoff.attempted()
                self.say_hello()
            return None
        if self.watch.silent_for(CONTROLLER) > self.watch.window:
            log.warning("no word from the controller for %.0f s: reconnecting", self.watch.silent_for(CONTROLLER))
            self.registered = False
            self.backoff.reset()
            return RECONNECT
        if self.watch.heartbeat_due([CONTROLLER]):
            self._heartbeat()
        resend_after = 2 * self.watch.window
        for key, (sent, _) in list(self.unacked.items()):
            if now - sent > resend_after:
                self._send_measurement(key)
        return None

    def say_hello(self) -> None:
        hello = Hello(PROTOCOL_VERSION, self.name, self.host, self.pid, tuple(self.slots.values()),
                      self.launch_modes, self.load_generators, dict(self.busy), tuple(list(self.unacked)[:MAX_LISTED]),
                      self.incarnation, warms=self.warms, config_id=self.config_id, warming=tuple(sorted(self.warming)))
        self._send(MessageType.HELLO, hello)

    def _heartbeat(self) -> None:
        held = tuple(list(self.unacked)[:MAX_LISTED])
        beat = Heartbeat(dict(self.busy), self.seen_seq, held, **_counters(self.counters()),
                         warming=tuple(sorted(self.warming)))
        self._send(MessageType.HEARTBEAT, beat)

    # --- output -----------------------------------------------------------------------------------------------
    def _send_measurement(self, key: str) -> None:
        _, report = self.unacked[key]
        self.unacked[key] = (self.clock(), report)
        if self.registered:
            self._send(MessageType.MEASUREMENT, report)

    def _send(self, type_: MessageType, payload: Any = None) -> None:
        self.seq += 1
        self.outbox.append(encode(message(type_, payload, agent=self.name, seq=self.seq, token=self.token)))
        self.watch.sent(CONTROLLER)

    def bye(self) -> None:
        self._send(MessageType.BYE)

    def take_outbox(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out


def _counters(values: dict[str, int]) -> dict[str, int]:
    return {"server_starts": int(values.get("server_starts", 0)), "model_loads": int(values.get("model_loads", 0))}


__all__ = ["EXIT", "MAX_SILENCE", "RECONNECT", "AgentCore", "AgentRefused"]
