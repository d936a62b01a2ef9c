"""The SQLite results store: runs, models, named variants, RunConfigs, measurements and metric values.

Written with sqlite-utils in WAL mode and migrated on open. Each `record()` is one transaction committed
before it returns, so a killed profile loses at most the measurement in flight; a RunConfig key is stored at
most once (the unique index makes re-recording a no-op), which is what resume and agents rely on. Tables
are narrow and self-describing: a plugin's new metric tag needs no migration.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from . import __version__
from .migrations.core import migrations
from .models import (
    ConfigVariant,
    LoadSpec,
    Measurement,
    Metric,
    Result,
    RunConfig,
    canonical_json,
    converter,
)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


class Store:
    """One results database. `Store(path)` opens (creating and migrating) it; `Store(":memory:")` for tests."""

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

    # --- runs -------------------------------------------------------------------------------------
    def start_run(self, config: dict[str, Any]) -> int:
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
        with self.db.conn:
            self.db.table("runs").update(run_id, fields)

    def run(self, run_id: int) -> dict[str, Any]:
        return dict(self.db.table("runs").get(run_id))

    def runs(self) -> list[dict[str, Any]]:
        return list(self.db.table("runs").rows_where(order_by="id"))

    # --- models and variants ----------------------------------------------------------------------------
    def upsert_model(self, name: str, base_config: dict[str, Any], spec: dict[str, Any]) -> None:
        with self.db.conn:
            self.db.table("models").upsert(
                {"name": name, "base_config": canonical_json(base_config), "spec": canonical_json(spec)}, pk="name"
            )

    def models(self) -> list[str]:
        return [r["name"] for r in self.db.table("models").rows_where(order_by="rowid")]

    def base_config(self, model: str) -> dict[str, Any]:
        return _loads(self.db.table("models").get(model)["base_config"])

    def name_variant(self, variant: ConfigVariant) -> ConfigVariant:
        """Give `variant` its stable name: the stored name of an identical config, else the next free one.

        The default config is `<model>_config_default`; others `<model>_config_<N>` in creation order, so the
        same search over the same DB reproduces the same names (Model Analyzer's naming).
        """
        row = next(self.db.table("variants").rows_where("config_hash = ?", [variant.config_hash], limit=1), None)
        if row is not None:
            return variant.named(row["name"])
        if variant.is_default:
            name = f"{variant.model}_config_default"
        else:
            count = self.db.execute(
                "select count(*) from variants where model = ? and is_default = 0", [variant.model]
            ).fetchone()[0]
            name = f"{variant.model}_config_{count}"
            while self.db.table("variants").count_where("name = ?", [name]):
                count += 1
                name = f"{variant.model}_config_{count}"
        seq = self.db.execute("select count(*) from variants").fetchone()[0]
        with self.db.conn:
            self.db.table("variants").insert(
                {
                    "name": name,
                    "model": variant.model,
                    "config_hash": variant.config_hash,
                    "config": canonical_json(variant.config),
                    "params": canonical_json(variant.params),
                    "is_default": int(variant.is_default),
                    "seq": seq,
                }
            )
        return variant.named(name)

    def variant(self, name: str) -> ConfigVariant:
        row = self.db.table("variants").get(name)
        return ConfigVariant(
            model=row["model"],
            config=_loads(row["config"]),
            params=_loads(row["params"]),
            is_default=bool(row["is_default"]),
            name=row["name"],
        )

    def variants(self, model: str | None = None) -> list[ConfigVariant]:
        where, args = ("model = ?", [model]) if model else (None, [])
        return [self.variant(r["name"]) for r in self.db.table("variants").rows_where(where, args, order_by="seq")]

    # --- measurements -------------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return bool(self.db.table("measurements").count_where("run_config_key = ?", [key]))

    def measurement(self, key: str) -> Measurement | None:
        row = next(self.db.table("measurements").rows_where("run_config_key = ?", [key], limit=1), None)
        return self._measurement(row) if row else None

    def _measurement(self, row: dict[str, Any]) -> Measurement:
        metrics = tuple(
            Metric(r["tag"], r["value"], r["gpu_uuid"])
            for r in self.db.table("metric_values").rows_where("measurement_id = ?", [row["id"]], order_by="rowid")
        )
        return Measurement(
            run_config_key=row["run_config_key"],
            status=row["status"],
            metrics=metrics,
            error=row["error"],
            started_at=row["started_at"] or 0.0,
            finished_at=row["finished_at"] or 0.0,
            window_seconds=row["window_seconds"] or 0.0,
            host=row["host"] or "",
            agent=row["agent"] or "",
            gpu=row["gpu"] or "",
        )

    def record(self, run_id: int, run_config: RunConfig, measurement: Measurement) -> bool:
        """Store one measurement (and its RunConfig) in one committed transaction.

        Returns False, changing nothing, when this RunConfig key already has a measurement (exactly once).
        """
        if not run_config.variant.name:
            raise ValueError("record() needs a named variant (Store.name_variant)")
        key = run_config.key
        with self.db.conn:
            if self.db.table("measurements").count_where("run_config_key = ?", [key]):
                return False
            self.db.table("run_configs").insert(
                {
                    "key": key,
                    "model": run_config.model,
                    "variant": run_config.variant.name,
                    "load": canonical_json(converter.unstructure(run_config.load)),
                    "perf_analyzer_flags": canonical_json(run_config.perf_analyzer_flags),
                    "server_flags": canonical_json(run_config.server_flags),
                    "server_env": canonical_json(run_config.server_env),
                },
                ignore=True,
            )
            table = self.db.table("measurements").insert(
                {
                    "run_config_key": key,
                    "run_id": run_id,
                    "status": measurement.status,
                    "error": measurement.error,
                    "started_at": measurement.started_at,
                    "finished_at": measurement.finished_at,
                    "window_seconds": measurement.window_seconds,
                    "host": measurement.host,
                    "agent": measurement.agent,
                    "gpu": measurement.gpu,
                }
            )
            mid = table.last_pk
            if measurement.metrics:
                self.db.table("metric_values").insert_all(
                    {"measurement_id": mid, "tag": m.tag, "value": m.value, "gpu_uuid": m.gpu_uuid}
                    for m in measurement.metrics
                )
        return True

    def _run_config(self, row: dict[str, Any], variants: dict[str, ConfigVariant]) -> RunConfig:
        vname = row["variant"]
        if vname not in variants:
            variants[vname] = self.variant(vname)
        return RunConfig(
            model=row["model"],
            variant=variants[vname],
            load=converter.structure(_loads(row["load"]), LoadSpec),
            perf_analyzer_flags=_loads(row["perf_analyzer_flags"]),
            server_flags=_loads(row["server_flags"]),
            server_env=_loads(row["server_env"]),
        )

    def results(self, model: str | None = None, run_id: int | None = None) -> list[Result]:
        """Every stored (RunConfig, Measurement), in measurement order; optionally one model / one run."""
        sql = (
            "select m.*, rc.model as rc_model, rc.variant as rc_variant, rc.load as rc_load, "
            "rc.perf_analyzer_flags as rc_pa, rc.server_flags as rc_flags, rc.server_env as rc_env "
            "from measurements m join run_configs rc on rc.key = m.run_config_key"
        )
        clauses: list[str] = []
        args: list[Any] = []
        if model is not None:
            clauses.append("rc.model = ?")
            args.append(model)
        if run_id is not None:
            clauses.append("m.run_id = ?")
            args.append(run_id)
        if clauses:
            sql += " where " + " and ".join(clauses)
        sql += " order by m.id"
        variants: dict[str, ConfigVariant] = {}
        out = []
        cursor = self.db.execute(sql, args)
        columns = [c[0] for c in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(columns, values, strict=True))
            rc = self._run_config(
                {
                    "model": row["rc_model"],
                    "variant": row["rc_variant"],
                    "load": row["rc_load"],
                    "perf_analyzer_flags": row["rc_pa"],
                    "server_flags": row["rc_flags"],
                    "server_env": row["rc_env"],
                },
                variants,
            )
            out.append(Result(rc, self._measurement(row)))
        return out

    def counts(self) -> dict[str, int]:
        return {t: self.db[t].count for t in ("runs", "variants", "run_configs", "measurements", "metric_values")}

    # --- hardware -----------------------------------------------------------------------------------
    def record_gpu(self, uuid: str, name: str, total_memory: int) -> None:
        """Remember one GPU of the run; `total_memory` in bytes (as Model Analyzer records it)."""
        with self.db.conn:
            self.db.table("gpus").upsert({"uuid": uuid, "name": name, "total_memory": total_memory}, pk="uuid")

    def gpus(self) -> list[dict[str, Any]]:
        return list(self.db.table("gpus").rows)
