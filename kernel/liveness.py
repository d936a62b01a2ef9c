"""Liveness of peers over an unreliable link: who is missing, when to heartbeat, how long to back off.

Pure timing logic with an injected clock (no sockets), used by both ends of the agent protocol and tested
without waiting. The rules follow the ZeroMQ guide's Paranoid Pirate and locust's missing-worker detection:

- any message from a peer counts as a heartbeat (`Liveness.heard`);
- a peer silent for `window = interval × liveness` seconds is missing (`Liveness.missing`);
- each side sends a heartbeat to each peer every `interval` seconds (`Liveness.heartbeat_due`);
- a side that lost its peer retries with a delay doubling from `Backoff.first` to `Backoff.last`;
- `Periodic` says when a repeating action (a status line, a resend) is due.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable

Clock = Callable[[], float]

HEARTBEAT_INTERVAL = 1.0  # seconds between heartbeats, both ways
LIVENESS = 5  # heartbeats a peer may miss before it is missing


class Liveness:
    """Last-heard and last-sent times per peer; a peer silent for `window` seconds is missing."""

    def __init__(self, interval: float = HEARTBEAT_INTERVAL, liveness: int = LIVENESS, clock: Clock = time.monotonic):
        if interval <= 0 or liveness < 1:
            raise ValueError("heartbeat interval must be > 0 and liveness ≥ 1")
        self.interval = float(interval)
        self.liveness = int(liveness)
        self.clock = clock
        self._heard: dict[Hashable, float] = {}
        self._sent: dict[Hashable, float] = {}

    @property
    def window(self) -> float:
        """Seconds of silence after which a peer is missing."""
        return self.interval * self.liveness

    def heard(self, peer: Hashable) -> None:
        """Any traffic from `peer` proves it alive."""
        self._heard[peer] = self.clock()

    def sent(self, peer: Hashable) -> None:
        """A message (heartbeat or data) went to `peer`: no heartbeat is due for another interval."""
        self._sent[peer] = self.clock()

    def forget(self, peer: Hashable) -> None:
        self._heard.pop(peer, None)
        self._sent.pop(peer, None)

    def known(self) -> list[Hashable]:
        return list(self._heard)

    def silent_for(self, peer: Hashable) -> float:
        """Seconds since `peer` was last heard (infinite for a peer never heard)."""
        last = self._heard.get(peer)
        return float("inf") if last is None else self.clock() - last

    def missing(self) -> list[Hashable]:
        """Peers silent for longer than the window, oldest first (they stay known until `forget`)."""
        now = self.clock()
        late = [(t, p) for p, t in self._heard.items() if now - t > self.window]
        return [p for _, p in sorted(late, key=lambda item: item[0])]

    def heartbeat_due(self, peers: Iterable[Hashable] | None = None) -> list[Hashable]:
        """Peers to which nothing was sent for an interval (all known peers by default)."""
        now = self.clock()
        chosen = self._heard if peers is None else peers
        return [p for p in chosen if now - self._sent.get(p, float("-inf")) >= self.interval]


class Backoff:
    """Retry delays doubling from `first` to `last` seconds; `reset()` after a success."""

    def __init__(self, first: float = 1.0, last: float = 32.0, clock: Clock = time.monotonic) -> None:
        self.first = first
        self.last = last
        self.clock = clock
        self.delay = first
        self._next = float("-inf")

    def due(self) -> bool:
        """True when the next attempt may be made now."""
        return self.clock() >= self._next

    def attempted(self) -> float:
        """Record an attempt; returns the delay before the next one (and doubles it, up to `last`)."""
        delay = self.delay
        self._next = self.clock() + delay
        self.delay = min(self.delay * 2, self.last)
        return delay

    def reset(self) -> None:
        self.delay = self.first
        self._next = float("-inf")


class Periodic:
    """Something to do every `every` seconds (a status line, a resend): `due()` is true once per period."""

    def __init__(self, every: float, clock: Clock = time.monotonic, start_due: bool = False) -> None:
        self.every = every
        self.clock = clock
        self._last = float("-inf") if start_due else clock()

    def due(self) -> bool:
        now = self.clock()
        if now - self._last >= self.every:
            self._last = now
            return True
        return False


class FakeClock:
    """A clock for tests: `clock()` returns the current time, `advance(s)` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


__all__ = ["HEARTBEAT_INTERVAL", "LIVENESS", "Backoff", "Clock", "FakeClock", "Liveness", "Periodic"]
