"""The `runs` table: one row per profile (or import), its config and its counters, read back as `Run` values."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from modelyzer.kernel import __version__
from modelyzer.kernel.models import canonical_json
from modelyzer.kernel.store.base import StoreBase
from modelyzer.kernel.store.values import Run


def _config(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _run(row: dict[str, Any]) -> Run:
    finished = row.get("finished_at")
    return Run(
        id=int(row["id"]),
        status=str(row.get("status") or ""),
        started_at=float(row.get("started_at") or 0.0),
        finished_at=float(finished) if finished is not None else None,
        hostname=str(row.get("hostname") or ""),
        version=str(row.get("version") or ""),
        config=_config(row.get("config")),
        server_starts=int(row.get("server_starts") or 0),
        model_loads=int(row.get("model_loads") or 0),
        measured=int(row.get("measured") or 0),
        skipped=int(row.get("skipped") or 0),
        failed=int(row.get("failed") or 0),
        wall_seconds=float(row.get("wall_seconds") or 0.0),
        window_seconds=float(row.get("window_seconds") or 0.0),
        retry_seconds=float(row.get("retry_seconds") or 0.0),
    )


class RunsMixin(StoreBase):
    def start_run(self, config: dict[str, Any]) -> int:
        """A new run with status `running`; returns its id."""
        with self.db.conn:
            table = self.db.table("runs").insert(
                {
                    "started_at": time.time(),
                    "status": "running",
                    "hostname": socket.gethostname(),
                    "version": __version__,
                    "config": canonical_json(config),
                    "server_starts": 0,
                    "model_loads": 0,
                    "measured": 0,
                    "skipped": 0,
                    "failed": 0,
                }
            )
        return int(table.last_pk)  # type: ignore[arg-type]

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set columns of a run (status, finished_at, counters…) in one transaction."""
        with self.db.conn:
            self.db.table("runs").update(run_id, fields)

    def run(self, run_id: int) -> Run | None:
        row = next(self.db.table("runs").rows_where("id = ?", [run_id], limit=1), None)
        return _run(row) if row is not None else None

    def runs(self) -> list[Run]:
        """Every run, oldest first."""
        return [_run(row) for row in self.db.table("runs").rows_where(order_by="id")]

    def latest_run(self) -> Run | None:
        row = next(self.db.table("runs").rows_where(order_by="id desc", limit=1), None)
        return _run(row) if row is not None else None

    def find_runs(self, config_key: str, value: Any) -> list[Run]:
        """Runs whose config holds `value` at the dotted `config_key` (`ma_checkpoint.sha256`), oldest first."""
        rows = self.db.table("runs").rows_where("json_extract(config, ?) = ?", [f"$.{config_key}", value], order_by="id")
        return [_run(row) for row in rows]
