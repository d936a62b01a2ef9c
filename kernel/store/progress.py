"""What a running profile expects to measure still, stored for readers in other processes (the web UI's ETA).

The engine records, each time the search proposes a batch, how many measurements the run has stored and how many
RunConfigs the strategy still expects (its upper bound, as the CLI's progress line counts them). It lives in the
`search_state` side table under the scope `progress` (one JSON value per run), so no migration is needed and an
older DB simply has none.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from modelyzer.kernel.store.extras import ExtrasMixin

SCOPE = "progress"


@attrs.frozen
class RunProgress:
    """A run's expectation when it was recorded: measurements stored by then, RunConfigs still expected, when."""

    measured: int
    remaining: int
    at: float

    def remaining_after(self, measured_now: int) -> int:
        """The RunConfigs still expected once `measured_now` measurements of the run are stored."""
        return max(self.remaining - max(measured_now - self.measured, 0), 0)


class ProgressMixin(ExtrasMixin):
    def record_progress(self, run_id: int, measured: int, remaining: int) -> None:
        """Record that run `run_id` has stored `measured` measurements and expects `remaining` more (upper bound)."""
        self.set_search_state(SCOPE, str(run_id), {"measured": measured, "remaining": remaining, "at": time.time()})

    def progress(self, run_id: int) -> RunProgress | None:
        """The last expectation recorded for run `run_id`; None when none was (an import, an older modelyzer)."""
        value: Any = self.search_state(SCOPE, str(run_id))
        if not isinstance(value, dict):
            return None
        try:
            return RunProgress(int(value["measured"]), int(value["remaining"]), float(value["at"]))
        except (KeyError, TypeError, ValueError):
            return None
