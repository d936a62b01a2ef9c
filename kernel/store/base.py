"""Opening a results DB: the sqlite-utils connection, WAL mode, the busy timeout and the core migrations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlite_utils

from modelyzer.kernel.migrations.core import migrations


def loads(text: str | None) -> Any:
    """A JSON column's value ({} when empty)."""
    return json.loads(text) if text else {}


class StoreBase:
    """The connection every part of the Store shares. `db` is for tests and inspection; code uses methods."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(self.path)
            self.db.execute("PRAGMA journal_mode=WAL")
        else:
            self.db = sqlite_utils.Database(memory=True)
        self.db.execute("PRAGMA busy_timeout=10000")
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()
