"""Waiting for servers and models, on ``tenacity``: the one polling/retry helper of the launchers.

- ``poll(check, interval=…, attempts=… | seconds=…, abort=…)``: call ``check()`` until it returns true, at most
  ``attempts`` times and/or for ``seconds``, ``interval`` seconds apart (no sleep after the last try). An
  exception from ``check`` counts as "not yet" and its one-line text is kept; ``abort()`` runs before each try and
  may raise to give up at once (a server process that exited). Returns a ``Polled`` (did it succeed, the last
  reason it did not, how many tries): callers raise their own error, with their own message, when it did not.
- ``again(call, attempts=…, when=…)``: run ``call()`` once more (up to ``attempts`` times in all) while the
  exception it raised satisfies ``when``; the last exception propagates unchanged.

Users of it: the remote launcher (server and model readiness, ``client_max_retries`` tries 1 s apart), the
managed servers (local, docker, MLServer: readiness for ``client_max_retries`` seconds), MLServer's own process
(readiness, and a start retried on new ports when one was taken meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import attrs
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_fixed,
)
from tenacity.stop import stop_base

T = TypeVar("T")
NOT_READY = "not ready"


@attrs.frozen
class Polled:
    """The outcome of ``poll``: ``ok`` when ``check()`` answered true; else ``last`` says why the last try failed."""

    ok: bool
    last: str = ""
    tries: int = 0


def one_line(exc: BaseException) -> str:
    """An exception as one line (client messages can span lines, be empty, or hide behind ``message()``)."""
    method = getattr(exc, "message", None)
    message = method() if callable(method) else str(exc)
    text = " ".join(str(message or exc.__class__.__name__).split())
    return text or exc.__class__.__name__


def poll(
    check: Callable[[], object],
    *,
    interval: float,
    attempts: int | None = None,
    seconds: float | None = None,
    abort: Callable[[], None] | None = None,
) -> Polled:
    """Call ``check()`` until it is true, for at most ``attempts`` tries and/or ``seconds``; see the module docstring."""
    stops: list[stop_base] = []
    if attempts is not None:
        stops.append(stop_after_attempt(max(1, attempts)))
    if seconds is not None:
        stops.append(stop_after_delay(seconds))
    if not stops:
        raise ValueError("poll needs attempts or seconds")

    def attempt() -> tuple[bool, str]:
        if abort is not None:
            abort()  # raises to give up now; tenacity does not retry an exception (retry is on the result only)
        try:
            return (True, "") if check() else (False, NOT_READY)
        except Exception as exc:  # noqa: BLE001 - any failure of the probe means "not yet"
            return False, one_line(exc)

    def gave_up(state: RetryCallState) -> tuple[bool, str]:
        assert state.outcome is not None
        result: tuple[bool, str] = state.outcome.result()
        return result

    retrying = Retrying(
        stop=stop_any(*stops),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda result: not result[0]),
        retry_error_callback=gave_up,
    )
    ok, last = retrying(attempt)
    return Polled(ok=ok, last=last, tries=retrying.statistics.get("attempt_number", 0))


def again(call: Callable[[], T], *, attempts: int, when: Callable[[BaseException], bool]) -> T:
    """``call()``, repeated (``attempts`` times in all) while the exception it raises satisfies ``when``."""
    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        retry=retry_if_exception(when),
        reraise=True,
    )
    return retrying(call)
