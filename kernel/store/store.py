"""`Store`: one results database, assembled from the parts that own its tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelyzer.kernel.store.extras import ExtrasMixin
from modelyzer.kernel.store.hardware import HardwareMixin
from modelyzer.kernel.store.measurements import MeasurementsMixin
from modelyzer.kernel.store.runs import RunsMixin
from modelyzer.kernel.store.values import NotAResultsDB


class Store(RunsMixin, MeasurementsMixin, HardwareMixin, ExtrasMixin):
    """One results database. `Store(path)` opens (creating and migrating) it; `Store(":memory:")` for tests."""

    @classmethod
    def open_existing(cls, path: str | Path) -> Store:
        """Open a results DB someone recorded; NotAResultsDB (with SQLite's message) when the file is no such DB."""
        try:
            store = cls(path)
            store.counts()
        except sqlite3.DatabaseError as err:
            raise NotAResultsDB(str(err)) from None
        return store
