"""Event hooks: a journal of the profile in `<export_path>/demo-events.log` (run started, each measurement
committed, run finished). Events are broadcasts: every plugin implementing them is called, returns ignored."""

from __future__ import annotations

from pathlib import Path

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.models import Measurement, RunConfig

_journal: Path | None = None


def _write(line: str) -> None:
    if _journal is not None:
        with _journal.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


@hookimpl
def run_started(run_id: int, config: ProfileConfig) -> None:
    global _journal
    _journal = Path(config.export_path) / "demo-events.log"
    _write(f"run_started {run_id}")


@hookimpl
def measurement_recorded(run_config: RunConfig, measurement: Measurement) -> None:
    _write(f"measurement_recorded {run_config.variant.name} {run_config.load.describe()} {measurement.status}")


@hookimpl
def run_finished(run_id: int, status: str) -> None:
    _write(f"run_finished {run_id} {status}")
