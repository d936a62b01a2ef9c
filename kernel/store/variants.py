"""The `models` and `variants` tables: each model's default config and spec, and its named config variants."""

from __future__ import annotations

import json
from typing import Any

from modelyzer.kernel.models import ConfigVariant, ModelSpec, canonical_json, converter
from modelyzer.kernel.store.base import StoreBase, loads


class VariantsMixin(StoreBase):
    # --- models ------------------------------------------------------------------------------------------
    def upsert_model(self, name: str, base_config: dict[str, Any], spec: dict[str, Any]) -> None:
        with self.db.conn:
            self.db.table("models").upsert(
                {"name": name, "base_config": canonical_json(base_config), "spec": canonical_json(spec)}, pk="name"
            )

    def models(self) -> list[str]:
        return [r["name"] for r in self.db.table("models").rows_where(order_by="rowid")]

    def base_config(self, model: str) -> dict[str, Any]:
        return loads(self.db.table("models").get(model)["base_config"])

    def model_spec(self, model: str) -> ModelSpec:
        """The ModelSpec a profile stored for `model`; defaults (throughput objective, no constraints) otherwise."""
        row = next(self.db.table("models").rows_where("name = ?", [model], limit=1), None)
        try:
            data = json.loads(row["spec"]) if row and row.get("spec") else {}
            if data:
                return converter.structure({**data, "name": model}, ModelSpec)
        except Exception:  # noqa: BLE001 - a foreign or older spec: fall back to defaults
            pass
        return ModelSpec(name=model)

    # --- variants ------------------------------------------------------------------------------------------
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
        named = variant.named(name)
        self._insert_variant(named)
        return named

    def add_variant(self, variant: ConfigVariant) -> None:
        """Store a variant under the name it already has (an import keeps Model Analyzer's); a stored name: no-op."""
        if not variant.name:
            raise ValueError("add_variant() needs a named variant (Store.name_variant names one)")
        if self.db.table("variants").count_where("name = ?", [variant.name]):
            return
        self._insert_variant(variant)

    def _insert_variant(self, variant: ConfigVariant) -> None:
        seq = self.db.execute("select count(*) from variants").fetchone()[0]
        with self.db.conn:
            self.db.table("variants").insert(
                {
                    "name": variant.name,
                    "model": variant.model,
                    "config_hash": variant.config_hash,
                    "config": canonical_json(variant.config),
                    "params": canonical_json(variant.params),
                    "is_default": int(variant.is_default),
                    "seq": seq,
                }
            )

    def _variant(self, row: dict[str, Any]) -> ConfigVariant:
        return ConfigVariant(
            model=row["model"],
            config=loads(row["config"]),
            params=loads(row["params"]),
            is_default=bool(row["is_default"]),
            name=row["name"],
        )

    def variant(self, name: str) -> ConfigVariant:
        return self._variant(self.db.table("variants").get(name))

    def find_variant(self, *, name: str | None = None, config_hash: str | None = None) -> ConfigVariant | None:
        """The stored variant with this name, or with this config hash (None when there is none)."""
        column, value = ("name", name) if name is not None else ("config_hash", config_hash)
        row = next(self.db.table("variants").rows_where(f"{column} = ?", [value], limit=1), None)
        return self._variant(row) if row is not None else None

    def variants(self, model: str | None = None) -> list[ConfigVariant]:
        """Stored variants (of one model), in creation order."""
        where, args = ("model = ?", [model]) if model else (None, [])
        return [self._variant(r) for r in self.db.table("variants").rows_where(where, args, order_by="seq")]
