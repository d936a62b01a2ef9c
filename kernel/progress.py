"""Progress reporting for long operations: one line per measurement with count, result and ETA.

The engine calls `expect/measured/skipped`; the default writes to a text stream (stderr). Frontends may pass
their own subclass (a live view, a quiet one).
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


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.done = 0
        self.remaining = 0
        self.skipped_count = 0
        self._t0 = time.monotonic()

    def expect(self, remaining: int) -> None:
        """Upper bound of RunConfigs still to measure (from the strategy's estimate)."""
        self.remaining = max(remaining, 0)

    def eta(self) -> str:
        if not self.done:
            return "?"
        per = (time.monotonic() - self._t0) / self.done
        return format_duration(per * self.remaining)

    def _write(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.stream, flush=True)

    def skipped(self, rc: RunConfig) -> None:
        self.skipped_count += 1

    def measured(self, rc: RunConfig, measurement: Measurement) -> None:
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
