"""The launchers' polling/retry helper (``readiness``, on tenacity): tries, time limits, abort, error text."""

from __future__ import annotations

import time

import pytest

from modelyzer.kernel.errors import LaunchError
from modelyzer.plugins.launchers.readiness import NOT_READY, again, one_line, poll


def test_poll_succeeds_after_failures_and_exceptions() -> None:
    answers = iter([False, RuntimeError("connection\n  refused"), True])

    def check() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    polled = poll(check, interval=0.01, attempts=5)
    assert polled.ok and polled.tries == 3 and polled.last == ""


def test_poll_gives_up_after_attempts_with_the_last_reason() -> None:
    calls: list[float] = []

    def check() -> bool:
        calls.append(time.monotonic())
        raise OSError("port\nclosed")

    started = time.monotonic()
    polled = poll(check, interval=0.05, attempts=3)
    assert not polled.ok and polled.last == "port closed" and polled.tries == 3 and len(calls) == 3
    assert 0.09 < time.monotonic() - started < 1.0  # two sleeps: none after the last try
    assert poll(lambda: False, interval=0.0, attempts=2).last == NOT_READY


def test_poll_for_seconds_and_abort() -> None:
    started = time.monotonic()
    polled = poll(lambda: False, interval=0.05, seconds=0.3)
    assert not polled.ok and 0.25 < time.monotonic() - started < 1.5 and polled.tries >= 3

    tries: list[int] = []

    def gone() -> None:
        if len(tries) == 2:
            raise LaunchError("server exited")
        tries.append(1)

    with pytest.raises(LaunchError, match="server exited"):
        poll(lambda: False, interval=0.01, seconds=30, abort=gone)
    with pytest.raises(ValueError):
        poll(lambda: True, interval=0.01)


def test_again_retries_only_what_when_accepts() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise LaunchError("address already in use")
        return "up"

    assert again(flaky, attempts=3, when=lambda e: "in use" in str(e)) == "up" and len(calls) == 3
    calls.clear()
    with pytest.raises(LaunchError, match="address already in use"):  # the last error, unchanged
        again(flaky, attempts=2, when=lambda e: True)
    calls.clear()
    with pytest.raises(LaunchError):
        again(flaky, attempts=5, when=lambda e: False)
    assert len(calls) == 1


def test_one_line() -> None:
    class ClientError(Exception):
        def message(self) -> str:
            return "model\n 'x' is\tnot ready"

    assert one_line(ClientError()) == "model 'x' is not ready"
    assert one_line(TimeoutError()) == "TimeoutError"
