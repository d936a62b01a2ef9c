"""The `modelyzer.search` migration set: the `search_state` table, created the first time a strategy keeps state.

Applied by `Store` on first use of its search-state methods, not on open, so a results DB no strategy wrote to
has only the core tables.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Migrations

migrations = Migrations("modelyzer.search")


@migrations()
def m001_search_state(db: Any) -> None:
    db["search_state"].create({"scope": str, "name": str, "value": str}, pk=("scope", "name"))
