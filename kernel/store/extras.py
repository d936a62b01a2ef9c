"""Side tables: `search_state` (JSON values a strategy keeps across resumes, created on first use by its own
migration set `modelyzer.search`) and `bench_surface` (the label bench/surfaces/make.py puts on a synthetic DB)."""

from __future__ import annotations

import json
from typing import Any

from modelyzer.kernel.migrations.search import migrations as search_migrations
from modelyzer.kernel.store.base import StoreBase
from modelyzer.kernel.store.values import SurfaceLabel

SURFACE_TABLE = "bench_surface"


class ExtrasMixin(StoreBase):
    # --- search state -----------------------------------------------------------------------------------------
    def _search_state(self) -> Any:
        if not getattr(self, "_search_state_ready", False):
            search_migrations.apply(self.db)
            self._search_state_ready = True
        return self.db.table("search_state")

    def search_state(self, scope: str, name: str) -> Any:
        """The JSON value stored under (scope, name), None when there is none."""
        row = next(self._search_state().rows_where("scope = ? and name = ?", [scope, name]), None)
        return json.loads(row["value"]) if row else None

    def set_search_state(self, scope: str, name: str, value: Any) -> None:
        table = self._search_state()
        with self.db.conn:
            table.upsert({"scope": scope, "name": name, "value": json.dumps(value)}, pk=("scope", "name"))

    # --- bench surfaces ------------------------------------------------------------------------------------------
    def label_surface(self, label: SurfaceLabel) -> None:
        with self.db.conn:
            self.db.table(SURFACE_TABLE).insert(
                {"name": label.name, "latency_budget": label.latency_budget, "label": label.label},
                pk="name",
                replace=True,
            )

    def surface_label(self, name: str) -> SurfaceLabel | None:
        """The label of the surface `name` (a model of the DB), None in a DB bench/surfaces/make.py did not make."""
        if SURFACE_TABLE not in self.db.table_names():
            return None
        row = next(self.db.table(SURFACE_TABLE).rows_where("name = ?", [name]), None)
        if row is None:
            return None
        return SurfaceLabel(str(row["name"]), float(row["latency_budget"]), str(row["label"]))

    def vacuum(self) -> None:
        """Rebuild the file at its smallest (for DBs checked into the repository)."""
        self.db.execute("vacuum")
