"""The SQLite results store: the only code that reads or writes a results DB.

Runs, models, named variants, RunConfigs, measurements and metric values, GPUs, server-only metrics, search
state and side tables, each owned by one module here and handed out as attrs values (`Run`, `StoredGpu`,
`ConfigVariant`, `Result`, …) — no rows, no SQL outside this package. Written with sqlite-utils in WAL mode and
migrated on open (kernel/migrations). Each `record()` is one transaction committed before it returns, so a
killed profile loses at most the measurement in flight; a RunConfig key is stored at most once (the unique index
makes re-recording a no-op), which is what resume and agents rely on. Tables are narrow and self-describing: a
plugin's new metric tag needs no migration.
"""

from __future__ import annotations

from modelyzer.kernel.store.errors import StoreError
from modelyzer.kernel.store.store import Store
from modelyzer.kernel.store.values import NotAResultsDB, Run, StoredGpu, SurfaceLabel

__all__ = ["NotAResultsDB", "Run", "Store", "StoreError", "StoredGpu", "SurfaceLabel"]
