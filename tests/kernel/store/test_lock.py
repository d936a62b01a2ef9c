"""One writing profile per results DB: a real second process is refused with one line naming the holder; a killed
profile's lock goes with it, and its run row is marked `killed` at the next start."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from modelyzer.kernel.store import Store
from modelyzer.kernel.store.lock import STATUS_KILLED, DatabaseInUse
from tests.support.db_holder import holder


def test_a_second_profile_is_refused_naming_the_holder_and_a_killed_one_frees_the_db(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    proc = holder(db)
    try:
        store = Store(db)
        with pytest.raises(DatabaseInUse) as info:
            store.claim()
        message = str(info.value)
        assert "\n" not in message and f"pid {proc.pid} on " in message and str(db) in message
        assert "another --results-db" in message
    finally:
        proc.send_signal(signal.SIGKILL)  # killed mid-profile: no cleanup runs
        proc.wait()
    assert [r.status for r in store.runs()] == ["running"]
    assert store.claim() == 1  # the OS released the lock with the process; its run is marked
    assert [r.status for r in store.runs()] == [STATUS_KILLED]
    assert f"pid {os.getpid()} on " in (tmp_path / "results.db.lock").read_text()
    store.close()


def test_the_lock_is_released_on_close_and_claim_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    first = Store(db)
    assert first.claim() == 0 and first.claim() == 0
    second = Store(db)
    with pytest.raises(DatabaseInUse):
        second.claim()
    first.close()
    started = time.monotonic()
    assert second.claim() == 0 and time.monotonic() - started < 5
    second.close()
    assert Store(":memory:").claim() == 0  # nothing to lock
