"""The controller's protocol logic: agents, liveness, scheduling, exactly-once delivery — without sockets.

`Hub` is fed frames (`handle(route, user_id, frame)`) and time (`tick()`), and puts the frames it wants to
send in `outbox` as `(route, bytes)`; `plugins/agents/controller.py` moves them over a ROUTER socket. Tests drive
it with a fake clock and read the outbox (locust's `mocked_rpc` idea). Its state is guarded by the caller.

Delivery rules (see docs/agents.md, "Guarantees"):
- a measurement is handed to `deliver(run_config, measurement)` only the first time its RunConfig key
  arrives while that RunConfig is pending; a duplicate is acknowledged at once and dropped;
- the delivering agent gets its ack only from `committed(key)`, which the executor calls after the engine
  committed the measurement to SQLite; until then the agent keeps it and resends it after reconnecting;
- a measurement for a key nobody asked for yet (an agent resending after a controller restart) is kept
  unacknowledged as an *orphan* and delivered as soon as the engine submits that key (resume without
  re-measuring); orphans never asked for are acknowledged when the profile ends (`finish()`);
- an agent silent for the liveness window is lost: its in-flight RunConfigs go back to the front of the
  queue and `on_lost` fires; any later message from it gets a `rehello`, and its hello re-registers it;
- a message counts as the registered agent's only with the token of its welcome: a second process presenting
  the same key (refused) has none, so its `bye` or anything else cannot touch the registered agent;
- a key no longer `authorized` (its file deleted) is dropped at its next message, told so (fatal refusal);
- a result that fails `validate.check_measurement` (NaN, negative, "ok" without the throughput to rank by) is
  acknowledged and dropped, and its RunConfig requeued; after `MAX_INVALID` such results it is delivered as a
  `failed` measurement carrying the reason.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from modelyzer.kernel.liveness import Clock, Liveness, Periodic
from modelyzer.kernel.models import STATUS_FAILED, GpuDevice, Measurement, RunConfig
from modelyzer.kernel.scheduler import Scheduler, SlotSpec
from modelyzer.plugins.agents.keys import fingerprint
from modelyzer.plugins.agents.protocol import (
    MAX_LISTED,
    Ack,
    AgentStatus,
    Heartbeat,
    Hello,
    MeasurementReport,
    Message,
    MessageType,
    ProtocolError,
    Refused,
    Reject,
    Run,
    StatusReport,
    Welcome,
    check_version,
    decode,
    encode,
    message,
    payload_of,
)
from modelyzer.plugins.agents.records import AgentRecord, peer_label
from modelyzer.plugins.agents.validate import MAX_INVALID, check_measurement

log = logging.getLogger("modelyzer")

STATUS_EVERY = 10.0  # seconds between status lines
REHELLO_EVERY = 1.0  # at most one rehello per second to an unknown sender
EXPECTED_FACTOR = 2  # liveness windows to wait for a measurement an agent says it holds
MAX_REMEMBERED = 10000  # unknown senders remembered for rate limiting


class Hub:
    """Controller state machine (see the module docstring)."""

    def __init__(
        self,
        *,
        config: dict[str, Any],
        config_id: str = "",
        launch_mode: str = "",
        bind: str = "",
        interval: float = 1.0,
        liveness: int = 5,
        clock: Clock = time.monotonic,
        deliver: Callable[[RunConfig, Measurement], None] = lambda rc, m: None,
        on_joined: Callable[[AgentRecord], None] = lambda agent: None,
        on_lost: Callable[[AgentRecord], None] = lambda agent: None,
        status_every: float = STATUS_EVERY,
        authorized: Callable[[str], bool] = lambda key: True,
        required: Callable[[RunConfig], frozenset[str]] = lambda rc: frozenset(),
    ) -> None:
        self.config = config
        self.config_id = config_id
        self.launch_mode = launch_mode
        self.bind = bind
        self.clock = clock
        self.liveness = Liveness(interval, liveness, clock)
        self.scheduler = Scheduler()
        self.deliver = deliver
        self.on_joined = on_joined
        self.on_lost = on_lost
        self.authorized = authorized  # is this (authenticated) key still authorized? (revocation)
        self.required = required  # the metrics an `ok` result of a RunConfig must have
        self.submitted: dict[str, RunConfig] = {}  # pending keys → RunConfig (to validate their results)
        self.invalid: dict[str, int] = {}  # key → invalid results received
        self.session = uuid.uuid4().hex[:12]
        self.agents: dict[str, AgentRecord] = {}
        self.outbox: list[tuple[bytes, bytes]] = []
        self.delivered: dict[str, str] = {}  # key → agent id, awaiting commit and ack
        self.orphans: dict[str, tuple[str, Measurement]] = {}
        self.expected: dict[str, float] = {}  # key → deadline of a measurement an agent holds
        self.done = 0
        self.lost = 0
        self.dropped = 0
        self._rehello_sent: dict[bytes, float] = {}
        self._status = Periodic(status_every, clock)

    # --- input --------------------------------------------------------------------------------------------
    def handle(self, route: bytes, user_id: str, frame: bytes) -> None:
        """One frame from `route` (authenticated as `user_id`, "" in insecure mode); never raises."""
        try:
            msg = decode(frame)
            self._dispatch(route, user_id, msg)
        except ProtocolError as err:
            self.dropped += 1
            log.warning("dropped a message from %s: %s", peer_label(route, user_id), err)

    def _dispatch(self, route: bytes, user_id: str, msg: Message) -> None:
        agent_id = user_id or f"insecure:{msg.agent or route.hex()}"
        if user_id and not self.authorized(user_id):
            self._revoked(route, user_id)
            return
        if msg.type is MessageType.STATUS:
            self.outbox.append((route, encode(message(MessageType.STATUS, self.status()))))
            return
        if msg.type is MessageType.HELLO:
            hello = payload_of(msg, Hello)
            known = self.agents.get(agent_id)
            stale = (known is not None and known.state == "connected" and hello.incarnation
                     and known.incarnation == hello.incarnation and msg.seq <= known.hello_seq)
            if not stale:
                self._hello(agent_id, route, hello, msg.seq)
            return
        rec = self.agents.get(agent_id)
        if rec is None or rec.state != "connected":
            if msg.type is not MessageType.BYE:
                self._rehello(route)
            return
        if msg.token != rec.token:
            # not the registered connection: a refused process with the same key, or a stale copy from before
            # the agent's last welcome — it must not touch (or keep alive) the registered agent
            log.debug("ignored a %s for agent %s without its registration token (route %s)", msg.type, rec.label,
                      route.hex())
            return
        rec.route = route  # the same agent over a new connection (libzmq reconnected it)
        self.liveness.heard(agent_id)
        if msg.type is MessageType.HEARTBEAT:
            self._heartbeat(rec, payload_of(msg, Heartbeat))
        elif msg.type is MessageType.MEASUREMENT:
            self._measurement(rec, payload_of(msg, MeasurementReport))
        elif msg.type is MessageType.REJECT:
            reject = payload_of(msg, Reject)
            log.warning("agent %s rejected %s on slot %d: %s", rec.label, reject.key, reject.slot, reject.reason)
            self.scheduler.release(rec.id, reject.slot, reject.key)
        elif msg.type is MessageType.BYE:
            self._drop_agent(rec, "gone", "left")
        else:
            raise ProtocolError(f"unexpected {msg.type} message from an agent")

    def _hello(self, agent_id: str, route: bytes, hello: Hello, seq: int = 0) -> None:
        reason = check_version(hello)
        fatal = True
        if reason is None and self.launch_mode and self.launch_mode not in hello.launch_modes:
            have = ", ".join(hello.launch_modes) or "none"
            reason = f"agent {hello.name!r} has no launcher {self.launch_mode!r} (it has {have}); install the plugin there"
            fatal = False
        if reason is None and not hello.slots:
            reason, fatal = f"agent {hello.name!r} offers no slots", False
        if reason is not None:
            log.warning("refused agent %s at %s: %s", hello.name, peer_label(route, agent_id), reason)
            self.outbox.append((route, encode(message(MessageType.REFUSED, Refused(reason, fatal)))))
            return
        old = self.agents.get(agent_id)
        if (old is not None and old.state == "connected" and old.incarnation != hello.incarnation
                and old.route != route and self.liveness.silent_for(agent_id) < self.liveness.window):
            reason = (f"key {fingerprint(agent_id)} is in use by agent {old.name!r} on {old.host or '?'}; "
                      "give each agent its own key pair (modelyzer keys generate DIR --agents N)")
            log.warning("refused a second agent with key %s: %s", fingerprint(agent_id), reason)
            self.outbox.append((route, encode(message(MessageType.REFUSED, Refused(reason, fatal=False)))))
            return
        rec = AgentRecord(agent_id, hello.name, hello.host, route, hello.slots, hello.launch_modes,
                          hello.load_generators, done=old.done if old else 0, incarnation=hello.incarnation,
                          hello_seq=seq, counters=dict(old.counters) if old and old.incarnation == hello.incarnation
                          else {}, token=uuid.uuid4().hex[:16])
        self.agents[agent_id] = rec
        specs = [SlotSpec(s.index, s.gpu, s.gpu_name) for s in hello.slots]
        # an agent that warms up builds its slots for our config after this welcome: not free until it says so
        cold = (s.index for s in hello.slots) if hello.warms and hello.config_id != self.config_id else hello.warming
        requeued = self.scheduler.add_agent(agent_id, specs, hello.busy, warming=cold)
        deadline = self.clock() + EXPECTED_FACTOR * self.liveness.window
        for key in hello.unacked:
            if self.scheduler.hold(key) or (self.scheduler.pending(key) and key not in self.expected):
                self.expected[key] = deadline
        self.liveness.heard(agent_id)
        welcome = Welcome(self.session, self.liveness.interval, self.liveness.liveness, self.config, self.config_id,
                          rec.token)
        self._send(rec, MessageType.WELCOME, welcome)
        gpus = ", ".join(g.uuid for g in rec.gpus) or "CPU"
        verb = "rejoined" if old is not None else "joined"
        log.info("agent %s %s from %s: %d slot(s) (%s)%s", rec.label, verb, hello.host or "?", len(hello.slots),
                 gpus, f"; {len(requeued)} RunConfig(s) requeued" if requeued else "")
        self.on_joined(rec)

    def _heartbeat(self, rec: AgentRecord, beat: Heartbeat) -> None:
        rec.seen_seq = max(rec.seen_seq, beat.seen_seq)
        rec.count(beat.server_starts, beat.model_loads)
        self.scheduler.set_warming(rec.id, beat.warming)
        deadline = self.clock() + EXPECTED_FACTOR * self.liveness.window
        held = set(beat.unacked)
        for slot in self.scheduler.slots(rec.id):
            key = slot.key
            if key is None or not slot.seq or slot.seq > beat.seen_seq or beat.busy.get(slot.index) == key:
                continue
            if key in held or len(beat.unacked) >= MAX_LISTED:
                # measured, and the measurement was lost in transit: it will be resent; requeue if it is not
                self.scheduler.vacate(rec.id, slot.index, key)
                self.expected.setdefault(key, deadline)
            else:
                log.warning("agent %s does not run %s sent to its slot %d: requeued", rec.label, key, slot.index)
                self.scheduler.release(rec.id, slot.index, key)

    def _measurement(self, rec: AgentRecord, report: MeasurementReport) -> None:
        m = attrs.evolve(report.measurement, agent=rec.label)
        key = m.run_config_key
        rec.count(report.server_starts, report.model_loads)
        self.expected.pop(key, None)
        submitted = self.submitted.get(key)
        problem = check_measurement(m, self.required(submitted) if submitted is not None else frozenset())
        if problem is not None:
            self._invalid(rec, report.slot, m, problem)
            return
        rc = self.scheduler.finish(rec.id, report.slot, key)
        if rc is not None:
            self._deliver(rc, m, rec.id)
        elif self.delivered.get(key) == rec.id or self.orphans.get(key, ("",))[0] == rec.id:
            pass  # a resend of the copy we hold: it is acknowledged once committed
        elif key in self.scheduler.finished or key in self.orphans:
            self._send(rec, MessageType.ACK, Ack((key,)))  # another copy is stored (or held): drop this one
        else:
            self.orphans[key] = (rec.id, m)  # nobody asked for it yet (a controller restart): keep it unacked

    def _invalid(self, rec: AgentRecord, slot: int, m: Measurement, problem: str) -> None:
        """An invalid result: the agent forgets it; its RunConfig is requeued, or stored as failed at the limit."""
        key = m.run_config_key
        self._send(rec, MessageType.ACK, Ack((key,)))
        if not self.scheduler.pending(key):
            log.warning("agent %s sent an invalid result for %s (%s): dropped", rec.label, key, problem)
            return
        count = self.invalid[key] = self.invalid.get(key, 0) + 1
        if count < MAX_INVALID:
            self.scheduler.release(rec.id, slot, key)
            log.warning("agent %s sent an invalid result for %s (%s): rejected and requeued (%d of %d before it is "
                        "stored as failed)", rec.label, key, problem, count, MAX_INVALID)
            return
        rc = self.scheduler.finish(rec.id, slot, key)
        if rc is None:
            return
        error = f"invalid result from agent {rec.label} ({count} times, the last: {problem})"
        log.warning("agent %s sent an invalid result for %s (%s): stored as failed after %d", rec.label, key, problem,
                    count)
        failed = Measurement(key, STATUS_FAILED, error=error, started_at=m.started_at, finished_at=m.finished_at,
                             host=m.host, agent=rec.label, gpu=m.gpu)
        self._deliver(rc, failed, rec.id)

    def _deliver(self, rc: RunConfig, m: Measurement, agent_id: str) -> None:
        self.submitted.pop(rc.key, None)
        self.delivered[key := rc.key] = agent_id
        self.done += 1
        rec = self.agents.get(agent_id)
        if rec is not None:
            rec.done += 1
        self.deliver(rc, m)
        log.debug("delivered %s from %s", key, agent_id)

    # --- from the engine ------------------------------------------------------------------------------------
    def submit(self, run_configs: Sequence[RunConfig]) -> None:
        """Queue a batch; RunConfigs whose measurement is already here (orphans) are delivered at once."""
        queued = self.scheduler.submit(run_configs)
        for rc in queued:
            self.submitted[rc.key] = rc
        for rc in queued if self.orphans else ():
            key = rc.key
            orphan = self.orphans.pop(key, None)
            if orphan is None:
                continue
            problem = check_measurement(orphan[1], self.required(rc))
            if problem is not None:  # held since before this controller knew what it needs: measure it again
                log.warning("a held result for %s is invalid (%s): measured again", key, problem)
                rec = self.agents.get(orphan[0])
                if rec is not None:
                    self._send(rec, MessageType.ACK, Ack((key,)))
            elif self.scheduler.finish("", -1, key) is not None:
                self._deliver(rc, orphan[1], orphan[0])

    def committed(self, key: str) -> None:
        """The engine committed `key`'s measurement: acknowledge it to the agent that sent it."""
        agent_id = self.delivered.pop(key, None)
        rec = self.agents.get(agent_id or "")
        if rec is not None:
            self._send(rec, MessageType.ACK, Ack((key,)))

    def finish(self) -> None:
        """End of the profile: acknowledge orphans never asked for, tell connected agents to stop their servers."""
        for key, (agent_id, _) in list(self.orphans.items()):
            rec = self.agents.get(agent_id)
            if rec is not None:
                self._send(rec, MessageType.ACK, Ack((key,)))
        self.orphans.clear()
        for rec in self.agents.values():
            if rec.state == "connected":
                self._send(rec, MessageType.BYE)

    # --- time ---------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Detect lost agents and lost RUNs, dispatch queued work, send due heartbeats, log the status line."""
        now = self.clock()
        for agent_id in self.liveness.missing():
            rec = self.agents.get(str(agent_id))
            self.liveness.forget(agent_id)
            if rec is not None and rec.state == "connected":
                self._drop_agent(rec, "lost", f"lost (silent for more than {self.liveness.window:g} s)")
        window = self.liveness.window
        for slot in self.scheduler.slots():
            rec = self.agents.get(slot.agent)
            if slot.key and slot.seq and rec is not None and rec.seen_seq < slot.seq and now - slot.since > window:
                log.warning("agent %s never confirmed %s: requeued", rec.label, slot.key)
                self.scheduler.release(slot.agent, slot.index, slot.key)
        for key, deadline in list(self.expected.items()):
            if now > deadline:
                del self.expected[key]
                if self.scheduler.requeue(key):
                    log.warning("measurement of %s did not arrive: requeued", key)
        for a in self.scheduler.assign():
            rec = self.agents[a.agent]
            self._send(rec, MessageType.RUN, Run(a.slot, a.run_config))
            placed = self.scheduler.slot(a.agent, a.slot)
            if placed is not None:
                placed.seq, placed.since = rec.seq, now
        connected = [a for a, r in self.agents.items() if r.state == "connected"]
        for agent_id in self.liveness.heartbeat_due(connected):
            self._send(self.agents[str(agent_id)], MessageType.HEARTBEAT)
        if self._status.due() and (self.agents or self.scheduler.unfinished):
            log.info("%s", self.status_line())

    def _drop_agent(self, rec: AgentRecord, state: str, why: str) -> None:
        rec.state = state
        self.liveness.forget(rec.id)
        requeued = self.scheduler.remove_agent(rec.id)
        self.lost += 1
        log.warning("agent %s %s; %d RunConfig(s) back in the queue", rec.label, why, len(requeued))
        self.on_lost(rec)

    # --- output -------------------------------------------------------------------------------------------
    def _send(self, rec: AgentRecord, type_: MessageType, payload: Any = None) -> None:
        rec.seq += 1
        self.outbox.append((rec.route, encode(message(type_, payload, agent="controller", seq=rec.seq))))
        self.liveness.sent(rec.id)

    def _rehello(self, route: bytes) -> None:
        if self._due(route):
            self.outbox.append((route, encode(message(MessageType.REHELLO, agent="controller"))))

    def _revoked(self, route: bytes, key: str) -> None:
        """A message under a key no longer authorized: drop its agent, tell the sender (at most once a second)."""
        rec = self.agents.get(key)
        if rec is not None and rec.state == "connected":
            self._drop_agent(rec, "gone", "revoked (its key file is no longer in the authorized directory)")
        if self._due(route):
            reason = (f"this agent's key {fingerprint(key)} is no longer authorized by the controller (its file was "
                      "removed from authorized_keys)")
            self.outbox.append((route, encode(message(MessageType.REFUSED, Refused(reason, fatal=True),
                                                      agent="controller"))))

    def _due(self, route: bytes) -> bool:
        """Rate limit of answers to senders the controller does not take as registered agents."""
        now = self.clock()
        if now - self._rehello_sent.get(route, float("-inf")) < REHELLO_EVERY:
            return False
        if len(self._rehello_sent) > MAX_REMEMBERED:
            self._rehello_sent.clear()
        self._rehello_sent[route] = now
        return True

    def take_outbox(self) -> list[tuple[bytes, bytes]]:
        out, self.outbox = self.outbox, []
        return out

    # --- views ----------------------------------------------------------------------------------------------
    def connected(self) -> list[AgentRecord]:
        return [r for r in self.agents.values() if r.state == "connected"]

    def gpus(self) -> list[GpuDevice]:
        seen: dict[str, GpuDevice] = {}
        for rec in self.connected():
            for gpu in rec.gpus:
                seen.setdefault(gpu.uuid, gpu)
        return list(seen.values())

    def counters(self) -> dict[str, int]:
        out = {"server_starts": 0, "model_loads": 0}
        for rec in self.agents.values():
            for name in out:
                out[name] += int(rec.counters.get(name, 0))
        return out

    def status(self) -> StatusReport:
        s = self.scheduler
        agents = tuple(
            AgentStatus(
                name=r.name, key=fingerprint(r.id) if not r.id.startswith("insecure:") else "", host=r.host,
                state=r.state, slots=len(r.slots), busy=sum(1 for x in s.slots(r.id) if not x.free), done=r.done,
                gpus=tuple(g.uuid for g in r.gpus), silent_seconds=round(min(self.liveness.silent_for(r.id), 1e9), 1),
            )
            for r in sorted(self.agents.values(), key=lambda r: r.name)
        )
        return StatusReport(self.bind, self.session, agents, s.total_slots, s.free_slots, s.in_flight, s.queued,
                            self.done, self.lost)

    def status_line(self) -> str:
        st = self.status()
        connected = sum(1 for a in st.agents if a.state == "connected")
        return (f"agents {connected} connected, {st.lost} lost · slots {st.slots} ({st.free} free) · "
                f"in flight {st.in_flight} · queued {st.queued} · done {st.done}")


__all__ = ["AgentRecord", "Hub"]
