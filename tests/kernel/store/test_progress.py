"""The running profile's expectation, recorded for readers in other processes (the web UI's ETA)."""

from __future__ import annotations

from pathlib import Path

from modelyzer.kernel.store import Store
from modelyzer.kernel.store.progress import RunProgress


def test_progress_is_recorded_per_run_and_read_back_read_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    run_id = store.start_run({})
    assert store.progress(run_id) is None
    store.record_progress(run_id, 3, 10)
    store.record_progress(run_id, 5, 8)  # the latest wins
    store.close()
    reader = Store.open_readonly(tmp_path / "r.db")
    found = reader.progress(run_id)
    assert found is not None and (found.measured, found.remaining) == (5, 8)
    assert reader.progress(run_id + 1) is None


def test_remaining_counts_down_with_the_measurements_stored_since() -> None:
    progress = RunProgress(measured=5, remaining=8, at=0.0)
    assert progress.remaining_after(5) == 8
    assert progress.remaining_after(7) == 6
    assert progress.remaining_after(20) == 0
