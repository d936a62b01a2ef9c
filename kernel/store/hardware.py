"""The `gpus` table (the GPUs runs used) and `server_only_metrics` (per-GPU values with no model loaded, per run)."""

from __future__ import annotations

from collections.abc import Sequence

from modelyzer.kernel.models import Metric
from modelyzer.kernel.store.base import StoreBase
from modelyzer.kernel.store.values import StoredGpu


class HardwareMixin(StoreBase):
    # --- GPUs -------------------------------------------------------------------------------------------------
    def record_gpu(self, uuid: str, name: str, total_memory: int) -> None:
        """Remember one GPU of the run; `total_memory` in bytes (as Model Analyzer records it)."""
        with self.db.conn:
            self.db.table("gpus").upsert({"uuid": uuid, "name": name, "total_memory": total_memory}, pk="uuid")

    def gpus(self) -> list[StoredGpu]:
        """Every recorded GPU, in the order first recorded."""
        return [
            StoredGpu(uuid=str(r["uuid"]), name=str(r["name"] or ""), total_memory=int(r["total_memory"] or 0))
            for r in self.db.table("gpus").rows_where(order_by="rowid")
        ]

    # --- server-only metrics ------------------------------------------------------------------------------------
    def record_server_only(self, run_id: int, metrics: Sequence[Metric], *, once: bool = False) -> None:
        """Store the server-only metrics of one run (per GPU; the host's have no GPU UUID: stored as "") in one
        transaction; `once`: not when the run already has some (an interrupted import finishing)."""
        rows = [{"run_id": run_id, "tag": m.tag, "value": m.value, "gpu_uuid": m.gpu_uuid or ""} for m in metrics]
        if not rows:
            return
        table = self.db.table("server_only_metrics")
        with self.db.conn:
            if once and table.count_where("run_id = ?", [run_id]):
                return
            table.insert_all(rows)

    def server_only(self, run_id: int) -> list[Metric]:
        """The run's server-only metrics, in the order they were stored."""
        return [
            Metric(r["tag"], r["value"], r["gpu_uuid"] or None)
            for r in self.db.table("server_only_metrics").rows_where("run_id = ?", [run_id], order_by="rowid")
        ]

    def previous_server_only(self, uuids: Sequence[str], exclude_run: int | None = None,
                             host: bool = False) -> int | None:
        """The latest run whose server-only metrics cover exactly these GPUs — and the server's host too, when
        `host` (None if none did)."""
        per_run: dict[int, set[str]] = {}
        for row in self.db.execute("select run_id, gpu_uuid from server_only_metrics").fetchall():
            per_run.setdefault(int(row[0]), set()).add(str(row[1]))
        wanted = set(uuids) | ({""} if host else set())
        matching = [run for run, seen in per_run.items()
                    if (seen if host else seen - {""}) == wanted and run != exclude_run]
        return max(matching) if matching else None

    def copy_server_only(self, from_run: int, to_run: int) -> None:
        """Reuse `from_run`'s server-only metrics for `to_run` (a resumed profile on the same GPUs)."""
        self.record_server_only(to_run, self.server_only(from_run))
