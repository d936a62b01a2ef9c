"""Scheduling RunConfigs onto the slots of remote agents: one RunConfig per slot at a time.

Pure bookkeeping, no sockets and no clock of its own: the controller (`plugins/agents/hub.py`) feeds it events
(an agent registered or was lost, a batch was submitted, a measurement arrived) and sends what `assign()`
returns. A *slot* is one GPU of an agent (or one CPU slot of a CPU-only agent); its server keeps the variant
it last served, so `assign()` prefers the slot that already serves a RunConfig's variant (no model reload),
then an empty slot, then a slot whose variant no queued RunConfig wants, and spreads work over the agents
with the most free slots.

Guarantees the controller builds on:
- a submitted RunConfig is pending until `finish()` sees its key: queued or in flight, never dropped — when
  its agent is lost or rejects it, it goes back to the *front* of the queue;
- `finish()` returns the RunConfig only the first time its key finishes; later copies (a lost agent that came
  back, a RunConfig measured twice after a requeue) return None and are acknowledged and dropped upstream;
- a slot an agent reports busy when it (re)registers stays busy with that key (a queued copy is reclaimed
  instead of being run twice).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence

import attrs

from modelyzer.kernel.models import RunConfig


@attrs.frozen
class SlotSpec:
    """A slot as an agent advertises it: its index on the agent and its GPU (UUID, "" for a CPU slot)."""

    index: int
    gpu: str = ""
    gpu_name: str = ""


@attrs.define
class Slot:
    """A slot as the controller tracks it."""

    agent: str
    index: int
    gpu: str = ""
    key: str | None = None  # RunConfig key in flight (None: free)
    served: str = ""  # variant identity of the last RunConfig sent here (the slot's server has it)
    seq: int = 0  # controller message seq of the RUN that sent `key`
    since: float = 0.0  # when `key` was sent
    warming: bool = False  # the agent is still building this slot's executor/server: not free yet

    @property
    def free(self) -> bool:
        return self.key is None and not self.warming


@attrs.frozen
class Assignment:
    """Run `run_config` on slot `slot` of agent `agent`."""

    agent: str
    slot: int
    run_config: RunConfig


def _free_per_agent(free: Sequence[Slot]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in free:
        counts[s.agent] = counts.get(s.agent, 0) + 1
    return counts


def _rank(slot: Slot, free_per_agent: Mapping[str, int], wanted: set[str]) -> tuple[int, int, str, int]:
    """Lower is better: an empty slot, then one whose variant nobody queued wants; the agent with most free slots."""
    tier = 0 if not slot.served else (1 if slot.served not in wanted else 2)
    return tier, -free_per_agent[slot.agent], slot.agent, slot.index


def variant_identity(run_config: RunConfig) -> str:
    """What a slot's server must have loaded to run `run_config` without a reload."""
    return run_config.variant.config_hash


class Scheduler:
    """Queue, in-flight table and slots of the connected agents (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: dict[str, RunConfig] = {}  # insertion-ordered: the next RunConfigs to send
        self._pending: dict[str, RunConfig] = {}  # submitted and not finished (queued or in flight)
        self._slots: dict[tuple[str, int], Slot] = {}
        self._variants: dict[str, str] = {}  # key → variant identity (hashing is not free: computed once)
        self.finished: set[str] = set()

    # --- agents -----------------------------------------------------------------------------------------
    def add_agent(self, agent: str, specs: Sequence[SlotSpec], busy: Mapping[int, str] | None = None,
                  warming: Iterable[int] = ()) -> list[str]:
        """Register (or re-register) `agent` with `specs`; `busy` maps slot index → key it is running.

        Slots in `warming` are not free until `set_warming` says they are ready.

        Work this scheduler had sent to the agent that the agent no longer reports busy goes back to the
        queue (unless the caller knows a measurement is on its way: remove those keys from the result).
        Returns the requeued keys.
        """
        busy = dict(busy or {})
        cold = set(warming)
        old = {s.index: s for s in self.slots(agent)}
        for index in old:
            del self._slots[(agent, index)]
        running = set(busy.values())
        requeued = [s.key for s in old.values() if s.key is not None and s.key not in running]
        for spec in specs:
            key = busy.get(spec.index) or None
            previous = old.get(spec.index)
            slot = Slot(agent, spec.index, spec.gpu, key=key, served=previous.served if previous else "",
                        warming=spec.index in cold)
            self._slots[(agent, spec.index)] = slot
            if key is not None:
                self._queue.pop(key, None)  # reclaimed: the agent is already running it
        return [k for k in requeued if self._requeue(k)]

    def set_warming(self, agent: str, warming: Iterable[int]) -> None:
        """The slots of `agent` still warming up (the others are ready)."""
        cold = set(warming)
        for slot in self.slots(agent):
            slot.warming = slot.index in cold

    def warming_slots(self, agent: str | None = None) -> int:
        return sum(1 for s in self.slots(agent) if s.warming)

    def remove_agent(self, agent: str) -> list[str]:
        """Forget `agent`'s slots; its in-flight RunConfigs go back to the front of the queue (returned)."""
        keys = [s.key for s in self.slots(agent) if s.key is not None]
        for slot in self.slots(agent):
            del self._slots[(agent, slot.index)]
        return [k for k in keys if self._requeue(k)]

    def agents(self) -> list[str]:
        return sorted({agent for agent, _ in self._slots})

    def slots(self, agent: str | None = None) -> list[Slot]:
        return [s for (a, _), s in sorted(self._slots.items()) if agent is None or a == agent]

    def slot(self, agent: str, index: int) -> Slot | None:
        return self._slots.get((agent, index))

    # --- work ------------------------------------------------------------------------------------------
    def submit(self, run_configs: Iterable[RunConfig]) -> list[RunConfig]:
        """Queue RunConfigs not already pending; returns those queued now."""
        queued = []
        for rc in run_configs:
            key = rc.key
            if key in self._pending:
                continue
            self.finished.discard(key)
            self._pending[key] = rc
            self._variants[key] = variant_identity(rc)
            if not self._in_flight(key):
                self._queue[key] = rc
                queued.append(rc)
        return queued

    def assign(self) -> list[Assignment]:
        """Fill free slots from the queue (see the module docstring for the preferences)."""
        free = [s for s in self._slots.values() if s.free]
        if not free or not self._queue:
            return []
        out: list[Assignment] = []
        # pass 1: a RunConfig whose variant a free slot already serves goes there
        for key, rc in list(self._queue.items()):
            variant = self._variants[key]
            match = next((s for s in free if s.served == variant), None)
            if match is not None:
                out.append(self._send(match, key, rc))
                free.remove(match)
        # pass 2: the rest, in queue order
        wanted = {self._variants[key] for key in self._queue}
        for key, rc in list(self._queue.items()):
            if not free:
                break
            best = min(free, key=functools.partial(_rank, free_per_agent=_free_per_agent(free), wanted=wanted))
            out.append(self._send(best, key, rc))
            free.remove(best)
        return out

    def _send(self, slot: Slot, key: str, rc: RunConfig) -> Assignment:
        del self._queue[key]
        slot.key = key
        slot.served = self._variants[key]
        slot.seq, slot.since = 0, 0.0
        return Assignment(slot.agent, slot.index, rc)

    def finish(self, agent: str, index: int, key: str) -> RunConfig | None:
        """A measurement of `key` arrived from a slot: free the slot; the RunConfig the first time, else None."""
        slot = self._slots.get((agent, index))
        if slot is not None and slot.key == key:
            slot.key = None
        rc = self._pending.pop(key, None)
        if rc is None:
            return None
        self._variants.pop(key, None)
        self._queue.pop(key, None)
        self.finished.add(key)
        return rc

    def release(self, agent: str, index: int, key: str) -> bool:
        """The slot did not run `key` (rejected, or the RUN was lost): free it, requeue `key` at the front."""
        self.vacate(agent, index, key)
        return self._requeue(key)

    def vacate(self, agent: str, index: int, key: str) -> bool:
        """Free the slot if it runs `key`, leaving `key` pending (its measurement is still expected)."""
        slot = self._slots.get((agent, index))
        if slot is None or slot.key != key:
            return False
        slot.key = None
        return True

    def hold(self, key: str) -> bool:
        """Take a queued `key` out of the queue without finishing it (its measurement is expected from an agent
        that already ran it); `requeue()` puts it back if the measurement does not come."""
        return self._queue.pop(key, None) is not None

    def requeue(self, key: str) -> bool:
        """Put a pending `key` that is neither queued nor in flight back at the front of the queue."""
        return self._requeue(key)

    def _in_flight(self, key: str) -> bool:
        return any(s.key == key for s in self._slots.values())

    def _requeue(self, key: str) -> bool:
        rc = self._pending.get(key)
        if rc is None or key in self._queue or self._in_flight(key):
            return False
        self._queue = {key: rc, **self._queue}
        return True

    # --- counts -----------------------------------------------------------------------------------------
    def pending(self, key: str) -> bool:
        return key in self._pending

    @property
    def total_slots(self) -> int:
        return len(self._slots)

    @property
    def free_slots(self) -> int:
        return sum(1 for s in self._slots.values() if s.free)

    @property
    def in_flight(self) -> int:
        return sum(1 for s in self._slots.values() if s.key is not None)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def unfinished(self) -> int:
        """Submitted RunConfigs not finished yet (queued or in flight)."""
        return len(self._pending)


__all__ = ["Assignment", "Scheduler", "Slot", "SlotSpec", "variant_identity"]
