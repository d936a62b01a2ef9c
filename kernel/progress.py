"""Progress reporting for long operations: one line per measurement with count, result and ETA.

The engine calls `expect/measured/skipped`; the default writes to a text stream (stderr). Frontends may pass
their own subclass (a live view, a quiet one).

The ETA is the time measurements are really taking — the mean interval between the last `RATE_WINDOW` finished
measurements (so parallel agent slots, model loads and retries all count, and the server's start-up before the
first one does not; the first measurement's own duration until a second one finishes) — times the RunConfigs
the strategy still expects. That count is the strategy's upper bound, so the ETA errs long, never short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from modelyzer.kernel.models import Measurement, RunConfig
from modelyzer.kernel.ranking import measurement_values


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


RATE_WINDOW = 8  # finished measurements the ETA's rate is taken over (recent ones: a profile's pace changes)


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.done = 0
        self.remaining = 0
        self.skipped_count = 0
        self._last: float | None = None  # when the previous measurement finished (monotonic)
        self._intervals: list[float] = []

    def expect(self, remaining: int) -> None:
        """Upper bound of RunConfigs still to measure (from the strategy's estimate)."""
        self.remaining = max(remaining, 0)

    def seconds_per_measurement(self) -> float | None:
        """The mean of the last `RATE_WINDOW` intervals between finished measurements (None: none finished yet)."""
        recent = self._intervals[-RATE_WINDOW:]
        return sum(recent) / len(recent) if recent else None

    def eta(self) -> str:
        per = self.seconds_per_measurement()
        return "?" if per is None else format_duration(per * self.remaining)

    def _clock(self, measurement: Measurement) -> None:
        now = time.monotonic()
        if self._last is not None:
            self._intervals.append(now - self._last)
        elif measurement.finished_at > measurement.started_at > 0:
            self._intervals.append(measurement.finished_at - measurement.started_at)
        self._last = now

    def _write(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.stream, flush=True)

    def skipped(self, rc: RunConfig) -> None:
        self.skipped_count += 1

    def measured(self, rc: RunConfig, measurement: Measurement) -> None:
        self._clock(measurement)
        self.done += 1
        self.remaining = max(self.remaining - 1, 0)
        total = self.done + self.remaining
        if measurement.ok:
            v = measurement_values(measurement)
            thr = v.get("perf_throughput")
            p99 = v.get("perf_latency_p99")
            result = (f"{thr:.1f} infer/s" if thr is not None else "no throughput") + (
                f", p99 {p99:.2f} ms" if p99 is not None else ""
            )
        else:
            result = f"FAILED: {measurement.error}"
        self._write(f"[{self.done}/~{total}] {rc.describe()}: {result}  (ETA {self.eta()})")

    def message(self, line: str) -> None:
        self._write(line)

    def status(self, line: str) -> None:
        """A transient line about the step in progress (e.g. a load generator's current pass); plain text
        progress leaves it out, a live view shows it until the next one."""
