"""`Store`: one results database, assembled from the parts that own its tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from modelyzer.kernel.migrations.core import migrations
from modelyzer.kernel.store.errors import StoreError, translating
from modelyzer.kernel.store.hardware import HardwareMixin
from modelyzer.kernel.store.lock import LockMixin
from modelyzer.kernel.store.measurements import MeasurementsMixin
from modelyzer.kernel.store.progress import ProgressMixin
from modelyzer.kernel.store.runs import RunsMixin
from modelyzer.kernel.store.values import NotAResultsDB


@translating
class Store(RunsMixin, MeasurementsMixin, HardwareMixin, ProgressMixin, LockMixin):
    """One results database. `Store(path)` opens (creating and migrating) it; `Store(":memory:")` for tests.

    Every public method raises `StoreError` (one line naming the DB and the fix), never SQLite's or the OS's own
    errors (`errors.translating`)."""

    def close(self) -> None:
        self.release()
        super().close()

    @classmethod
    def open_existing(cls, path: str | Path) -> Store:
        """Open a results DB someone recorded; NotAResultsDB (with SQLite's message) when the file is no such DB."""
        try:
            store = cls(path)
            store.counts()
        except StoreError as err:
            raise NotAResultsDB(str(err.__cause__ or err)) from None
        return store

    @classmethod
    def open_readonly(cls, path: str | Path) -> Store:
        """A recorded results DB for reading, the file left untouched: opened read-only and copied into memory
        (migrated there when an older modelyzer wrote it). NotAResultsDB when the file is not SQLite or holds no
        modelyzer tables; writes go to the copy only."""
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        try:
            source = sqlite3.connect(uri, uri=True)
            try:
                if not migrations.applied(sqlite_utils.Database(source)):
                    raise NotAResultsDB("no modelyzer tables in it")
                copy = sqlite3.connect(":memory:", check_same_thread=False)
                source.backup(copy)
            finally:
                source.close()
        except sqlite3.DatabaseError as err:
            raise NotAResultsDB(str(err)) from None
        store = cls.__new__(cls)
        store.path = str(path)
        store.db = sqlite_utils.Database(copy)
        migrations.apply(store.db)
        return store
