"""kernel/liveness.py: missing peers, due heartbeats, backoff and periodic actions, on an injected clock."""

from __future__ import annotations

import pytest

from modelyzer.kernel.liveness import Backoff, FakeClock, Liveness, Periodic


def test_a_peer_is_missing_after_the_window_and_any_traffic_resets_it() -> None:
    clock = FakeClock()
    live = Liveness(interval=1.0, liveness=3, clock=clock)
    assert live.window == 3.0
    live.heard("a")
    live.heard("b")
    clock.advance(2.5)
    live.heard("b")
    assert live.missing() == []
    clock.advance(0.6)
    assert live.missing() == ["a"]
    clock.advance(3.0)
    assert live.missing() == ["a", "b"]  # oldest first
    live.forget("a")
    assert live.missing() == ["b"]
    assert live.known() == ["b"]


def test_silent_for_is_infinite_for_an_unknown_peer() -> None:
    clock = FakeClock()
    live = Liveness(clock=clock)
    assert live.silent_for("x") == float("inf")
    live.heard("x")
    clock.advance(1.5)
    assert live.silent_for("x") == pytest.approx(1.5)


def test_heartbeat_is_due_once_per_interval_after_the_last_send() -> None:
    clock = FakeClock()
    live = Liveness(interval=1.0, liveness=5, clock=clock)
    live.heard("a")
    assert live.heartbeat_due() == ["a"]  # never sent anything
    live.sent("a")
    clock.advance(0.5)
    assert live.heartbeat_due() == []
    clock.advance(0.5)
    assert live.heartbeat_due() == ["a"]
    assert live.heartbeat_due(["z"]) == ["z"]  # explicit peers need not be known


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Liveness(interval=0)
    with pytest.raises(ValueError):
        Liveness(liveness=0)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    clock = FakeClock()
    backoff = Backoff(first=1, last=8, clock=clock)
    delays = []
    for _ in range(6):
        assert backoff.due()
        delays.append(backoff.attempted())
        assert not backoff.due()
        clock.advance(delays[-1])
    assert delays == [1, 2, 4, 8, 8, 8]
    backoff.attempted()
    backoff.reset()
    assert backoff.due() and backoff.delay == 1


def test_periodic_is_due_once_per_period() -> None:
    clock = FakeClock()
    every = Periodic(10, clock)
    assert not every.due()
    clock.advance(10)
    assert every.due()
    assert not every.due()
    assert Periodic(10, clock, start_due=True).due()
