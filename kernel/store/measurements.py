"""The `run_configs`, `measurements` and `metric_values` tables: exactly-once records and reading results back."""

from __future__ import annotations

from typing import Any

import attrs

from modelyzer.kernel.models import (
    ConfigVariant,
    LoadSpec,
    Measurement,
    Metric,
    Result,
    RunConfig,
    canonical_json,
    converter,
    retryable,
)
from modelyzer.kernel.store.base import loads
from modelyzer.kernel.store.variants import VariantsMixin

RESULTS_SQL = (
    "select m.*, rc.model as rc_model, rc.variant as rc_variant, rc.load as rc_load, "
    "rc.perf_analyzer_flags as rc_pa, rc.server_flags as rc_flags, rc.server_env as rc_env, rc.members as rc_members "
    "from measurements m join run_configs rc on rc.key = m.run_config_key"
)


def _member_row(member: RunConfig) -> dict[str, Any]:
    return {"model": member.model, "variant": member.variant.name, "load": converter.unstructure(member.load),
            "pa": member.perf_analyzer_flags, "flags": member.server_flags, "env": member.server_env}


class MeasurementsMixin(VariantsMixin):
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
            retry_seconds=row.get("retry_seconds") or 0.0,
            host=row["host"] or "",
            agent=row["agent"] or "",
            gpu=row["gpu"] or "",
        )

    def record(self, run_id: int, run_config: RunConfig, measurement: Measurement, replace_failed: bool = False,
               replace: bool = False) -> bool:
        """Store one measurement (and its RunConfig) in one committed transaction.

        Returns False, changing nothing, when this RunConfig key already has a measurement (exactly once) —
        unless `replace_failed` and the stored one failed (`models.retryable`), or `replace` (a confirmation that
        pools the stored measurement into the new one): then the new measurement replaces it (its metric values
        too) in the same transaction, so the key still has exactly one row.
        """
        if not run_config.variant.name:
            raise ValueError("record() needs a named variant (Store.name_variant)")
        key = run_config.key
        with self.db.conn:
            if not self.db.conn.in_transaction:  # the check and the write in one write transaction: no other
                self.db.execute("begin immediate")  # process can store this key in between
            stored = next(self.db.table("measurements").rows_where("run_config_key = ?", [key], select="id, status"),
                          None)
            if stored is not None:
                if not (replace or (replace_failed and retryable(stored["status"]))):
                    return False
                self.db.execute("delete from metric_values where measurement_id = ?", [stored["id"]])
                self.db.execute("delete from measurements where id = ?", [stored["id"]])
            self.db.table("run_configs").insert(
                {
                    "key": key,
                    "model": run_config.model,
                    "variant": run_config.variant.name,
                    "load": canonical_json(converter.unstructure(run_config.load)),
                    "perf_analyzer_flags": canonical_json(run_config.perf_analyzer_flags),
                    "server_flags": canonical_json(run_config.server_flags),
                    "server_env": canonical_json(run_config.server_env),
                    "members": canonical_json([_member_row(m) for m in run_config.members])
                    if run_config.members else None,
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
                    "retry_seconds": measurement.retry_seconds,
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

    def failed_keys(self) -> set[str]:
        """The RunConfig keys whose stored measurement failed and would be measured again (`models.retryable`)."""
        rows = self.db.execute("select run_config_key, status from measurements").fetchall()
        return {key for key, status in rows if retryable(status)}

    def name_run_config(self, run_config: RunConfig) -> RunConfig:
        """`run_config` with its variant named (Store.name_variant); a concurrent group's members named each in
        its own model's series and the group's variant stored as "a_config_N,b_config_M"; an ensemble's or BLS
        model's composing variants named in their own series before it."""
        if not run_config.members:
            variant = run_config.variant
            if variant.composing:  # named in their own series first (Model Analyzer's add_config_0 …)
                variant = variant.with_composing(tuple(self.name_variant(c) for c in variant.composing))
            return attrs.evolve(run_config, variant=self.name_variant(variant))
        members = tuple(attrs.evolve(m, variant=self.name_variant(m.variant)) for m in run_config.members)
        group = RunConfig.group(members)
        self.add_variant(group.variant)
        return attrs.evolve(run_config, variant=group.variant, members=members)

    def _run_config(self, row: dict[str, Any], variants: dict[str, ConfigVariant]) -> RunConfig:
        def variant(name: str) -> ConfigVariant:
            if name not in variants:
                variants[name] = self.variant(name)
            return variants[name]

        members = tuple(
            RunConfig(model=m["model"], variant=variant(m["variant"]), load=converter.structure(m["load"], LoadSpec),
                      perf_analyzer_flags=m["pa"], server_flags=m["flags"], server_env=m["env"])
            for m in (loads(row.get("rc_members")) or [])
        )
        return RunConfig(
            model=row["rc_model"],
            variant=variant(row["rc_variant"]),
            load=converter.structure(loads(row["rc_load"]), LoadSpec),
            perf_analyzer_flags=loads(row["rc_pa"]),
            server_flags=loads(row["rc_flags"]),
            server_env=loads(row["rc_env"]),
            members=members,
        )

    def results(self, model: str | None = None, run_id: int | None = None) -> list[Result]:
        """Every stored (RunConfig, Measurement), in measurement order; optionally one model / one run."""
        sql = RESULTS_SQL
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
            out.append(Result(self._run_config(row, variants), self._measurement(row)))
        return out

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (runs, variants, run_configs, measurements, metric_values)."""
        return {t: self.db[t].count for t in ("runs", "variants", "run_configs", "measurements", "metric_values")}
