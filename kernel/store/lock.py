"""One writing profile per results DB: an OS file lock beside the DB, and the runs a killed profile left `running`.

`Store.claim()` takes an exclusive, non-blocking `flock` on `<db>.lock` and keeps it until `close()`; the OS
releases it when the process dies, however it dies, so there is no stale lock to clean up. A second profile on
the same DB stops at once with one line naming the holder (its pid, host and start time, written into the lock
file) instead of measuring RunConfigs the first one measures too. Holding the lock proves that no other profile
writes this DB, so every run row still `running` belongs to a profile that was killed: it is marked `killed`.
Readers (`report`, `export`, the web UI) never take the lock. A DB on a file system without `flock` (some network
file systems) is not protected; the lock is then skipped with a warning.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from typing import IO

from modelyzer.kernel.errors import ModelyzerError
from modelyzer.kernel.store.base import StoreBase

log = logging.getLogger("modelyzer")

STATUS_KILLED = "killed"


class DatabaseInUse(ModelyzerError):
    """Another profile holds the results DB."""


class LockMixin(StoreBase):
    _lock: IO[str] | None = None

    @property
    def lock_path(self) -> str:
        return self.path + ".lock"

    def claim(self) -> int:
        """Hold this DB for one writing profile (idempotent); DatabaseInUse when another profile holds it. Marks the
        runs killed profiles left `running` as `killed` and returns how many."""
        if self.path == ":memory:" or self._lock is not None:
            return 0
        handle = open(self.lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that did not say which"
            handle.close()
            raise DatabaseInUse(f"results DB {self.path} is in use by another profile ({holder}); wait for it to "
                                "finish, or give this one another --results-db") from None
        except OSError as err:  # no flock here (e.g. some network file systems)
            handle.close()
            log.warning("results DB %s cannot be locked (%s): nothing stops a second profile on it", self.path, err)
            return self._mark_killed()
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._lock = handle
        return self._mark_killed()

    def _mark_killed(self) -> int:
        with self.db.conn:
            cursor = self.db.execute("update runs set status = ? where status = 'running'", [STATUS_KILLED])
        if cursor.rowcount:
            log.info("results DB %s: %d run(s) left 'running' by a killed profile marked '%s'", self.path,
                     cursor.rowcount, STATUS_KILLED)
        return int(cursor.rowcount)

    def release(self) -> None:
        """Let go of the DB (idempotent; `close()` calls it)."""
        if self._lock is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            finally:
                self._lock.close()
                self._lock = None
