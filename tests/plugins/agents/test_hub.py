"""plugins/agents/hub.py + zmq_agent_core.py over a fake transport and a fake clock (no sockets).

`Net` moves frames between one `Hub` and several `AgentCore`s, and can cut an agent off (both ways) or drop
single messages, like locust's `mocked_rpc`. Time only moves when a test advances the clock.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelyzer.kernel.liveness import FakeClock
from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.plugins.agents.agent_core import EXIT, RECONNECT, AgentCore, AgentRefused
from modelyzer.plugins.agents.hub import AgentRecord, Hub
from modelyzer.plugins.agents.protocol import (
    PROTOCOL_VERSION,
    Hello,
    MeasurementReport,
    MessageType,
    Run,
    SlotInfo,
    StatusReport,
    decode,
    encode,
    message,
    payload_of,
)

WINDOW = 5.0  # interval 1 s × liveness 5


def rc(variant: int, concurrency: int = 1) -> RunConfig:
    return RunConfig("m", ConfigVariant("m", {"max_batch_size": variant}, name=f"m_config_{variant}"),
                     LoadSpec(concurrency=concurrency))


def measured(run_config: RunConfig) -> Measurement:
    return Measurement(run_config.key, metrics=(Metric("perf_throughput", 1.0),))


class Net:
    """One hub, several agent cores, in memory."""

    def __init__(self, clock: FakeClock, **hub_args: object) -> None:
        self.clock = clock
        self.delivered: list[tuple[RunConfig, Measurement]] = []
        self.joined: list[AgentRecord] = []
        self.lost: list[AgentRecord] = []
        self.hub = self.new_hub(**hub_args)
        self.cores: dict[str, AgentCore] = {}
        self.ran: list[tuple[str, int, RunConfig]] = []
        self.configs: dict[str, dict[str, object]] = {}
        self.down: set[str] = set()
        self.drop_next: dict[str, Callable[[MessageType], bool]] = {}  # name → drop this message to the hub?
        self.drop_next_to: dict[str, Callable[[MessageType], bool]] = {}  # name → drop this message to it?

    def new_hub(self, **hub_args: object) -> Hub:
        args: dict[str, object] = {"config": {"triton_launch_mode": "replay"}, "config_id": "cfg1",
                                   "launch_mode": "replay", "clock": self.clock}
        args.update(hub_args)
        return Hub(**args, deliver=lambda r, m: self.delivered.append((r, m)),  # type: ignore[arg-type]
                   on_joined=self.joined.append, on_lost=self.lost.append)

    def add(self, name: str, slots: int = 1, launch_modes: tuple[str, ...] = ("replay",)) -> AgentCore:
        core = AgentCore(
            name=name, host="h", slots=tuple(SlotInfo(i) for i in range(slots)), launch_modes=launch_modes,
            on_run=lambda slot, run: self.ran.append((name, slot, run)),
            on_config=lambda config, config_id: self.configs.__setitem__(name, config), clock=self.clock,
        )
        self.cores[name] = core
        return core

    def route(self, name: str) -> bytes:
        return f"route-{name}".encode()

    def key(self, name: str) -> str:
        return f"KEY-{name}".ljust(40, "x")

    def pump(self, rounds: int = 6) -> None:
        for _ in range(rounds):
            for name, core in self.cores.items():
                if name in self.down:
                    core.take_outbox()
                    continue
                core.tick()
                for frame in core.take_outbox():
                    drop = self.drop_next.get(name)
                    if drop is not None and drop(decode(frame).type):
                        del self.drop_next[name]
                        continue
                    self.hub.handle(self.route(name), self.key(name), frame)
            self.hub.tick()
            for route, frame in self.hub.take_outbox():
                name = route.decode().removeprefix("route-")
                if name in self.down or name not in self.cores:
                    continue
                drop = self.drop_next_to.get(name)
                if drop is not None and drop(decode(frame).type):
                    del self.drop_next_to[name]
                    continue
                self.cores[name].handle(frame)

    def advance(self, seconds: float, step: float = 0.5) -> None:
        """Let time pass in steps, pumping messages (heartbeats flow between the steps)."""
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            self.pump(2)

    def finish(self, name: str, slot: int, run_config: RunConfig) -> None:
        self.cores[name].finished(slot, measured(run_config))
        self.pump()


@pytest.fixture
def net() -> Net:
    return Net(FakeClock())


def test_register_run_deliver_and_ack_only_after_commit(net: Net) -> None:
    a = net.add("a", slots=2)
    net.pump()
    assert a.registered and net.configs["a"] == {"triton_launch_mode": "replay"}
    assert [r.name for r in net.joined] == ["a"] and net.hub.scheduler.total_slots == 2
    work = [rc(1), rc(2), rc(3)]
    net.hub.submit(work)
    net.pump()
    assert [(slot, run) for _, slot, run in net.ran] == [(0, work[0]), (1, work[1])]
    net.finish("a", 0, work[0])
    assert [r for r, _ in net.delivered] == [work[0]]
    assert net.delivered[0][1].agent == f"a#{net.key('a')[:8]}"  # the authenticated key names it
    assert work[0].key in a.unacked  # not acknowledged before the commit
    assert net.ran[-1] == ("a", 0, work[2])  # the freed slot got the next one
    net.hub.committed(work[0].key)
    net.pump()
    assert work[0].key not in a.unacked


def test_a_resent_copy_is_not_acked_before_commit_and_a_duplicate_is_dropped(net: Net) -> None:
    a = net.add("a")
    b = net.add("b")
    net.pump()
    x = rc(1)
    net.hub.submit([x])
    net.pump()
    runner = net.ran[0][0]
    net.finish(runner, 0, x)
    net.advance(2 * WINDOW + 1)  # the agent resends its unacknowledged copy
    assert len(net.delivered) == 1 and x.key in net.cores[runner].unacked
    other = b if runner == "a" else a
    other.finished(0, measured(x))  # the same RunConfig measured elsewhere too
    net.pump()
    assert len(net.delivered) == 1 and x.key not in other.unacked  # dropped and acknowledged
    net.hub.committed(x.key)
    net.pump()
    assert not net.cores[runner].unacked


def test_a_silent_agent_is_lost_its_work_requeued_and_it_rejoins(net: Net) -> None:
    net.add("a")
    b = net.add("b")
    net.pump()
    x, y = rc(1), rc(2)
    net.hub.submit([x, y])
    net.pump()
    on_a = next(run for name, _, run in net.ran if name == "a")
    on_b = next(run for name, _, run in net.ran if name == "b")
    net.down.add("a")
    net.advance(WINDOW + 1)
    assert [r.name for r in net.lost] == ["a"] and net.hub.status().lost == 1
    assert net.hub.scheduler.queued == 1  # a's RunConfig waits for a free slot
    net.finish("b", 0, on_b)
    assert net.ran[-1] == ("b", 0, on_a)  # b runs a's RunConfig
    # a comes back, still holding its finished copy: it is told to register again and its copy is dropped
    net.down.discard("a")
    net.cores["a"].finished(0, measured(on_a))
    net.advance(3)
    assert net.cores["a"].registered and [r.name for r in net.joined] == ["a", "b", "a"]
    net.finish("b", 0, on_a)
    keys = [r.key for r, _ in net.delivered]
    assert sorted(keys) == sorted([x.key, y.key])  # each exactly once
    assert not b.busy


def test_reconnect_and_exit_after_silence() -> None:
    clock = FakeClock()
    net = Net(clock)
    a = net.add("a")
    a.max_silence = 60
    net.pump()
    net.down.add("a")
    clock.advance(WINDOW + 0.1)
    assert a.tick() == RECONNECT and not a.registered
    clock.advance(60)
    assert a.tick() == EXIT


def test_orphans_after_a_controller_restart_are_delivered_when_asked_for(net: Net) -> None:
    a = net.add("a")
    net.pump()
    x, y, z = rc(1), rc(2), rc(3)
    net.hub.submit([x])
    net.pump()
    net.finish("a", 0, x)  # delivered, never committed: the controller dies
    a.finished(0, measured(z))  # a measurement the next controller will not ask for
    net.hub = net.new_hub()
    net.delivered.clear()
    net.advance(WINDOW + 2)  # silence, reconnect, hello, welcome, resend
    assert a.registered and net.hub.orphans.keys() == {x.key, z.key} and not net.delivered
    net.hub.submit([x, y])
    net.pump()
    assert [r.key for r, _ in net.delivered] == [x.key]  # resumed without re-measuring
    assert net.ran[-1][2] == y
    net.hub.committed(x.key)
    net.hub.finish()
    byes: list[bool] = []
    a.on_bye = lambda: byes.append(True)
    net.pump()
    assert set(a.unacked) == set() and byes == [True]


def test_a_lost_run_message_is_requeued(net: Net) -> None:
    net.add("a")
    net.pump()
    net.drop_next_to["a"] = lambda kind: kind is MessageType.RUN
    x = rc(1)
    net.hub.submit([x])
    net.pump()
    assert net.ran == []
    net.advance(WINDOW + 1)
    assert [run for _, _, run in net.ran] == [x]


def test_a_lost_measurement_is_resent_and_a_vanished_one_requeued(net: Net) -> None:
    a = net.add("a")
    net.pump()
    x = rc(1)
    net.hub.submit([x])
    net.pump()
    net.drop_next["a"] = lambda kind: kind is MessageType.MEASUREMENT
    net.finish("a", 0, x)
    assert not net.delivered
    net.advance(1)
    assert x.key in net.hub.expected and net.hub.scheduler.free_slots == 1  # the heartbeat said it holds it
    net.advance(2 * WINDOW)  # the agent resends
    assert [r.key for r, _ in net.delivered] == [x.key]
    y = rc(2)
    net.hub.submit([y])
    net.pump()
    net.drop_next["a"] = lambda kind: kind is MessageType.MEASUREMENT
    net.finish("a", 0, y)
    a.unacked.clear()  # the agent lost it for good
    net.advance(3 * WINDOW)
    assert [run for _, _, run in net.ran].count(y) == 2  # measured again


def test_refusals_version_and_missing_launcher(net: Net) -> None:
    old = encode(message(MessageType.HELLO, Hello(PROTOCOL_VERSION + 1, "old", slots=(SlotInfo(0),)), agent="old"))
    net.hub.handle(b"r1", "K1", old)
    ((route, frame),) = net.hub.take_outbox()
    assert route == b"r1"
    core = net.add("old")
    del net.cores["old"]
    with pytest.raises(AgentRefused, match="protocol version mismatch"):
        core.handle(frame)
    other = net.add("nolauncher", launch_modes=("local",))
    net.pump()
    assert not other.registered and not net.joined
    assert net.hub.scheduler.total_slots == 0


def test_garbage_never_raises_and_unknown_senders_are_asked_to_register(net: Net) -> None:
    for frame in (b"\x00\x01", b"{}", b'{"type":"nope"}', b'{"type":"run","payload":{"slot":"x"}}',
                  b'{"type":"hello","payload":{"version":"one"}}'):
        net.hub.handle(b"r", "K", frame)
    assert net.hub.dropped == 4  # the run from an unknown sender is not parsed: it is asked to register
    net.hub.handle(b"r", "K", encode(message(MessageType.HEARTBEAT)))  # rate-limited
    out = net.hub.take_outbox()
    assert [decode(f).type for _, f in out] == [MessageType.REHELLO]


def test_status_is_answered_without_registering(net: Net) -> None:
    net.add("a", slots=2)
    net.pump()
    net.hub.submit([rc(1)])
    net.pump()
    net.hub.handle(b"asker", "KEY-a".ljust(40, "x"), encode(message(MessageType.STATUS)))
    ((route, frame),) = [item for item in net.hub.take_outbox() if item[0] == b"asker"]
    report = payload_of(decode(frame), StatusReport)
    assert (report.slots, report.free, report.in_flight, report.queued) == (2, 1, 1, 0)
    assert report.agents[0].name == "a" and report.agents[0].busy == 1
    assert net.hub.agents[net.key("a")].route == net.route("a")  # the asker did not take the agent's route
    assert "agents 1 connected" in net.hub.status_line()


def test_a_stale_hello_of_the_same_process_is_ignored(net: Net) -> None:
    a = net.add("a")
    net.pump()
    net.hub.submit([rc(1)])
    net.pump()
    a.seq = 0  # replay an old hello (lower seq, same incarnation)
    a.say_hello()
    frame = a.take_outbox()[0]
    net.hub.handle(net.route("a"), net.key("a"), frame)
    assert net.hub.scheduler.in_flight == 1 and len(net.joined) == 1


def test_agent_core_rejects_a_busy_slot_and_resends_a_held_measurement(net: Net) -> None:
    a = net.add("a")
    net.pump()
    x, y = rc(1), rc(2)
    a.busy[0] = x.key
    a.handle(encode(message(MessageType.RUN, Run(0, y), seq=50)))
    a.handle(encode(message(MessageType.RUN, Run(3, y), seq=51)))
    kinds = [decode(f) for f in a.take_outbox()]
    assert [k.type for k in kinds] == [MessageType.REJECT, MessageType.REJECT]
    assert "busy" in kinds[0].payload["reason"] and "no slot 3" in kinds[1].payload["reason"]
    a.finished(0, measured(x))
    a.take_outbox()
    a.handle(encode(message(MessageType.RUN, Run(0, x), seq=52)))
    assert [decode(f).type for f in a.take_outbox()] == [MessageType.MEASUREMENT]
    assert a.seen_seq == 52


def test_a_second_process_with_the_same_key_is_refused_until_the_first_is_lost(net: Net) -> None:
    net.add("a")
    net.pump()
    twin = AgentCore(name="a", host="other", slots=(SlotInfo(0),), launch_modes=("replay",), clock=net.clock)
    twin.say_hello()
    net.hub.handle(b"route-twin", net.key("a"), twin.take_outbox()[0])
    ((route, frame),) = [item for item in net.hub.take_outbox() if item[0] == b"route-twin"]
    twin.handle(frame)
    assert not twin.registered and len(net.joined) == 1
    net.down.add("a")
    net.advance(WINDOW + 1)
    twin.say_hello()
    net.hub.handle(b"route-twin", net.key("a"), twin.take_outbox()[0])
    assert [r.host for r in net.joined] == ["h", "other"]


def test_a_warming_agent_gets_work_only_once_its_slots_are_ready(net: Net) -> None:
    a = net.add("a", slots=2)
    a.warms = True
    net.pump()
    assert a.registered and a.warming == {0, 1}  # the welcome's config: both slots warm up
    assert net.hub.scheduler.warming_slots() == 2  # the hello said so: the slots were never free
    net.hub.submit([rc(1), rc(2)])
    net.pump()
    assert net.ran == []
    a.slot_ready(0)  # one slot ready: not reported until all are (one heartbeat)
    net.pump()
    assert net.ran == [] and not a.warming - {1}
    a.slot_ready(1)
    net.pump()
    assert sorted(slot for _, slot, _ in net.ran) == [0, 1] and net.hub.scheduler.warming_slots() == 0
    # re-registering for the same config (e.g. after a reconnect): nothing to warm again
    a.registered = False
    a.backoff.reset()
    net.pump()
    assert a.registered and not a.warming and net.hub.scheduler.warming_slots() == 0


def test_a_revoked_key_is_dropped_at_its_next_message_and_told_so(net: Net) -> None:
    a = net.add("a")
    revoked: set[str] = set()
    net.hub.authorized = lambda key: key not in revoked
    net.pump()
    work = [rc(1)]
    net.hub.submit(work)
    net.pump()
    assert net.hub.scheduler.in_flight == 1
    revoked.add(net.key("a"))
    a.tick()
    a._heartbeat()  # its next message
    with pytest.raises(AgentRefused, match="no longer authorized"):
        net.pump()
    assert [r.name for r in net.lost] == ["a"] and net.hub.agents[net.key("a")].state == "gone"
    assert net.hub.scheduler.in_flight == 0 and net.hub.scheduler.queued == 1  # its RunConfig back in the queue
    a.finished(0, measured(work[0]))  # a late result under the revoked key is never delivered
    net.cores.pop("a")
    net.hub.handle(net.route("a"), net.key("a"), a.take_outbox()[-1])
    assert net.delivered == []


def test_a_refused_twin_cannot_touch_the_registered_agent(net: Net) -> None:
    net.add("a")
    net.pump()
    work = [rc(1), rc(2)]
    net.hub.submit(work)
    net.pump()
    twin = AgentCore(name="a", host="other", slots=(SlotInfo(0),), launch_modes=("replay",), clock=net.clock)
    twin.say_hello()
    net.hub.handle(b"route-twin", net.key("a"), twin.take_outbox()[0])  # refused: the key is in use
    twin.take_outbox()
    for token in ("", "0" * 16):  # no token, a guessed one: a forged result and a bye
        forged = MeasurementReport(0, measured(work[1]))
        for frame in (encode(message(MessageType.MEASUREMENT, forged, agent="a", seq=7, token=token)),
                      encode(message(MessageType.BYE, agent="a", seq=8, token=token))):
            net.hub.handle(b"route-twin", net.key("a"), frame)
    assert net.hub.agents[net.key("a")].state == "connected" and net.lost == []
    assert net.hub.agents[net.key("a")].route == net.route("a")
    net.finish("a", 0, work[0])
    net.hub.committed(work[0].key)
    net.pump()
    net.finish("a", 0, work[1])
    assert [r for r, _ in net.delivered] == work  # each once, both from the real agent
    assert {m.agent for _, m in net.delivered} == {f"a#{net.key('a')[:8]}"}


def test_the_registered_agent_is_followed_to_a_new_connection_by_its_token(net: Net) -> None:
    a = net.add("a")
    net.pump()
    a._heartbeat()
    net.hub.handle(b"route-new", net.key("a"), a.take_outbox()[0])  # libzmq reconnected it: a new routing id
    assert net.hub.agents[net.key("a")].route == b"route-new" and net.lost == []


def test_an_invalid_result_is_rejected_requeued_then_stored_as_failed(net: Net,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    a = net.add("a")
    net.hub.required = lambda run_config: frozenset({"perf_throughput"})
    net.pump()
    work = rc(1)
    net.hub.submit([work])
    net.pump()
    bad = (Measurement(work.key, metrics=(Metric("perf_throughput", float("nan")),)),
           Measurement(work.key, metrics=(Metric("perf_throughput", 3.0), Metric("perf_latency_p99", -2.0))),
           Measurement(work.key))  # "ok" without metrics
    for attempt, m in enumerate(bad, 1):
        assert net.ran[-1] == ("a", 0, work) and len(net.ran) == attempt  # (re)sent to the agent
        a.finished(0, m)
        net.pump()
        assert work.key not in a.unacked  # acknowledged: the agent forgets the bad copy
    assert len(net.ran) == 3 and len(net.delivered) == 1
    stored = net.delivered[0][1]
    assert stored.status == "failed" and "3 times" in str(stored.error) and "without any metric" in str(stored.error)
    assert "perf_throughput is nan" in caplog.text and "requeued (1 of 3" in caplog.text
    a.finished(0, measured(work))  # a late good copy: dropped (stored once), acknowledged with the commit
    net.hub.committed(work.key)
    net.pump()
    assert len(net.delivered) == 1 and work.key not in a.unacked
