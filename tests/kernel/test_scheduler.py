"""kernel/scheduler.py: one RunConfig per slot, variant affinity, requeue on loss, exactly-once finish."""

from __future__ import annotations

import random

from modelyzer.kernel.models import ConfigVariant, LoadSpec, RunConfig
from modelyzer.kernel.scheduler import Scheduler, SlotSpec, variant_identity


def rc(variant: int, concurrency: int = 1) -> RunConfig:
    v = ConfigVariant("m", {"max_batch_size": variant}, name=f"m_config_{variant}")
    return RunConfig("m", v, LoadSpec(concurrency=concurrency))


def cpu_slots(n: int) -> list[SlotSpec]:
    return [SlotSpec(i) for i in range(n)]


def test_one_run_config_per_slot_spread_over_agents() -> None:
    s = Scheduler()
    s.add_agent("a", cpu_slots(2))
    s.add_agent("b", cpu_slots(2))
    s.submit([rc(1), rc(2), rc(3)])
    out = s.assign()
    assert len(out) == 3
    assert {x.agent for x in out} == {"a", "b"}  # the agent with the most free slots goes first
    assert s.in_flight == 3 and s.free_slots == 1 and s.queued == 0
    s.submit([rc(4), rc(5)])
    assert len(s.assign()) == 1
    assert s.queued == 1 and s.assign() == []


def test_a_slot_that_served_the_variant_is_preferred() -> None:
    s = Scheduler()
    s.add_agent("a", cpu_slots(1))
    s.add_agent("b", cpu_slots(1))
    first = rc(7, 1), rc(8, 1)
    s.submit(first)
    placed = {x.run_config.variant.name: (x.agent, x.slot) for x in s.assign()}
    for x in first:
        agent, slot = placed[x.variant.name]
        assert s.finish(agent, slot, x.key) == x
    s.submit([rc(8, 2), rc(7, 2)])  # reversed order: each still goes where its variant is loaded
    again = {x.run_config.variant.name: (x.agent, x.slot) for x in s.assign()}
    assert again == placed


def test_an_empty_slot_beats_one_whose_variant_is_still_wanted() -> None:
    s = Scheduler()
    s.add_agent("a", cpu_slots(1))
    s.submit([rc(1, 1)])
    (first,) = s.assign()
    s.finish("a", 0, first.run_config.key)
    s.add_agent("b", cpu_slots(1))
    s.submit([rc(2, 1), rc(1, 2)])
    placed = {x.run_config.variant.name: x.agent for x in s.assign()}
    assert placed == {"m_config_1": "a", "m_config_2": "b"}


def test_finish_returns_the_run_config_once() -> None:
    s = Scheduler()
    s.add_agent("a", cpu_slots(2))
    x = rc(1)
    s.submit([x])
    (a,) = s.assign()
    assert s.finish("a", a.slot, x.key) == x
    assert s.finish("a", a.slot, x.key) is None
    assert s.finish("zz", 0, "unknown") is None
    assert x.key in s.finished and s.unfinished == 0


def test_a_lost_agent_returns_its_work_to_the_front_of_the_queue() -> None:
    s = Scheduler()
    s.add_agent("a", cpu_slots(1))
    s.add_agent("b", cpu_slots(1))
    s.submit([rc(1), rc(2), rc(3)])
    sent = {x.agent: x.run_config for x in s.assign()}
    assert s.remove_agent("a") == [sent["a"].key]
    assert s.agents() == ["b"] and s.total_slots == 1
    s.finish("b", 0, sent["b"].key)
    (nxt,) = s.assign()
    assert nxt.run_config == sent["a"]  # requeued ahead of rc(3)


def test_reregistering_reclaims_busy_work_and_requeues_the_rest() -> None:
    s = Scheduler()
    s.add_agent("a", cpu_slots(2))
    x, y, z = rc(1), rc(2), rc(3)
    s.submit([x, y])
    s.assign()
    s.submit([z])
    # the agent comes back running x on slot 1 (it did not know about y)
    requeued = s.add_agent("a", cpu_slots(2), busy={1: x.key})
    assert requeued == [y.key]
    assert s.slot("a", 1).key == x.key  # type: ignore[union-attr]
    (a,) = s.assign()
    assert a.slot == 0 and a.run_config == y


def test_a_busy_key_reported_by_a_new_agent_is_reclaimed_from_the_queue() -> None:
    s = Scheduler()
    x = rc(1)
    s.submit([x])
    s.add_agent("a", cpu_slots(1), busy={0: x.key})
    assert s.queued == 0 and s.in_flight == 1
    assert s.finish("a", 0, x.key) == x


def test_release_vacate_hold_and_requeue() -> None:
    s = Scheduler()
    s.add_agent("a", cpu_slots(1))
    x = rc(1)
    s.submit([x])
    s.assign()
    assert s.release("a", 0, x.key)  # rejected: back in the queue
    assert s.queued == 1 and s.free_slots == 1
    s.assign()
    assert s.vacate("a", 0, x.key) and not s.vacate("a", 0, x.key)
    assert s.queued == 0 and s.pending(x.key)  # still expected
    assert s.requeue(x.key) and not s.requeue(x.key)
    assert s.hold(x.key) and not s.hold(x.key)
    assert s.queued == 0 and s.pending(x.key)


def test_submitting_a_pending_key_twice_queues_it_once() -> None:
    s = Scheduler()
    s.submit([rc(1), rc(1)])
    assert s.queued == 1 and s.submit([rc(1)]) == []


def test_variant_identity_ignores_the_name() -> None:
    a = rc(3)
    b = RunConfig("m", ConfigVariant("m", {"max_batch_size": 3}, name="other"), LoadSpec(concurrency=9))
    assert variant_identity(a) == variant_identity(b)


def test_random_failures_never_lose_or_duplicate_a_run_config() -> None:
    """A fake cluster: agents finish, die and come back at random; every key finishes exactly once."""
    rnd = random.Random(6)
    s = Scheduler()
    work = [rc(v, c) for v in range(1, 9) for c in (1, 2, 4, 8)]
    s.submit(work)
    agents = {f"a{i}": True for i in range(4)}
    for name in agents:
        s.add_agent(name, cpu_slots(2))
    finished: list[str] = []
    for _ in range(5000):
        if s.unfinished == 0:
            break
        s.assign()
        event = rnd.random()
        busy = [x for x in s.slots() if not x.free]
        if event < 0.7 and busy:
            slot = rnd.choice(busy)
            key = slot.key or ""
            if s.finish(slot.agent, slot.index, key) is not None:
                finished.append(key)
        elif event < 0.8:
            alive = [a for a, up in agents.items() if up]
            if len(alive) > 1:
                victim = rnd.choice(alive)
                agents[victim] = False
                s.remove_agent(victim)
        elif event < 0.9:
            down = [a for a, up in agents.items() if not up]
            if down:
                back = rnd.choice(down)
                agents[back] = True
                s.add_agent(back, cpu_slots(2))
        elif busy:  # a copy measured elsewhere (e.g. by an agent declared lost) arrives first
            key = rnd.choice(busy).key or ""
            if s.finish("ghost", 0, key) is not None:
                finished.append(key)
    assert s.unfinished == 0
    assert sorted(finished) == sorted({x.key for x in work}) and len(finished) == len(work)


def test_a_warming_slot_is_not_free_until_it_is_ready() -> None:
    s = Scheduler()
    s.add_agent("a", cpu_slots(2), warming=[0, 1])
    s.submit([rc(1), rc(2)])
    assert s.free_slots == 0 and s.warming_slots("a") == 2 and s.assign() == [] and s.in_flight == 0
    s.set_warming("a", [1])
    assert [(x.agent, x.slot) for x in s.assign()] == [("a", 0)]
    s.set_warming("a", [])
    assert [(x.agent, x.slot) for x in s.assign()] == [("a", 1)] and s.warming_slots() == 0
