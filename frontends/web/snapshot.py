"""The dashboard's read model: one results DB, read-only, as of its last commit.

`ResultsDB` watches the file: its version is the size and modification time of the DB and its WAL, so telling
whether a profile committed costs two `stat` calls and no SQL, and no read lock is ever held between requests.
When the version changes, `current()` takes a new `Snapshot`: `Store.open_readonly` copies the DB into memory
through SQLite's backup API, a reader in WAL mode that never blocks the writing profile and never takes its lock.
A snapshot computes what the pages need (the ranking with the run's configured ranker, ties, report data) once,
on first use, through the same `Profile`/`Store` API the CLI's `export` uses.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from modelyzer.frontends.cli.export_cmd import export_config
from modelyzer.kernel import assembly, ranking
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.models import ModelSpec, Result
from modelyzer.kernel.profile import Profile
from modelyzer.kernel.store import Run, Store
from modelyzer.plugins.reporters.data import ModelData, model_data

T = TypeVar("T")
Version = tuple[int, ...]


def db_version(path: Path) -> Version:
    """Size and mtime (ns) of the DB file and of its WAL: they change with every commit."""
    out: list[int] = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = p.stat()
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [-1, -1]
    return tuple(out)


class Snapshot:
    """The DB as of `version`, in memory; everything derived is computed once, under a lock (requests run in
    worker threads)."""

    def __init__(self, path: Path, version: Version, configs: dict[int, ProfileConfig | str]) -> None:
        self.path = path
        self.version = version
        self.taken = time.time()
        self.store = Store.open_readonly(path)
        self.runs: list[Run] = self.store.runs()
        self.models: list[str] = self.store.models()
        self._configs = configs  # shared by the ResultsDB: one config per run id
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], Any] = {}

    @property
    def latest(self) -> Run | None:
        return self.runs[-1] if self.runs else None

    def _once(self, kind: str, key: str, make: Callable[[], T]) -> T:
        with self._lock:
            if (kind, key) not in self._cache:
                self._cache[(kind, key)] = make()
            value: T = self._cache[(kind, key)]
            return value

    def config(self) -> ProfileConfig | None:
        """The latest run's config, as `modelyzer export` rebuilds it (its models with their stored specs); None
        when the DB holds no run. A config that does not build raises ValueError with its one-line reason."""
        run = self.latest
        if run is None:
            return None
        with self._lock:
            cached = self._configs.get(run.id)
            models = tuple(sorted(self.models))
            if isinstance(cached, ProfileConfig) and tuple(sorted(m.name for m in cached.models)) == models:
                return cached
            try:
                cached = export_config(self.store, run, list(self.models), {})
            except Exception as err:  # noqa: BLE001 - shown on the page, the server keeps serving
                cached = f"the stored settings of run {run.id} do not load here: {err}"
            self._configs[run.id] = cached
        if isinstance(cached, str):
            raise ValueError(cached)
        return cached

    def spec(self, model: str) -> ModelSpec:
        config = self.config()
        found = [m for m in config.models if m.name == model] if config else []
        return found[0] if found else self.store.model_spec(model)

    def ranked(self, model: str) -> list[RankedConfig]:
        """Every config of `model`: the run's ranker's list first (best first, tied leaders first; the configs
        meeting the constraints when any does, and the default), then every other config in the kernel's order."""

        def make() -> list[RankedConfig]:
            config = self.config()
            if config is None:
                return []
            top = Profile(config, store=self.store).rank(top_n=sys.maxsize).get(model, [])
            spec = self.spec(model)
            results = ranking.at_workload(self.store.results(model), assembly.workloads(config)[0])
            shown = {rc.variant_name for rc in top}
            return top + [rc for rc in ranking.rank(results, spec.objectives, spec.constraints)
                          if rc.variant_name not in shown]

        return self._once("ranked", model, make)

    def tie(self, model: str) -> ranking.Tie | None:
        return self._once("tie", model, lambda: ranking.tie(self.ranked(model), self.spec(model).objectives))

    def results(self, model: str | None = None, run_id: int | None = None) -> list[Result]:
        return self._once("results", f"{model}|{run_id}", lambda: self.store.results(model, run_id))

    def model_data(self, model: str) -> ModelData:
        """What the reporters read for `model` (best_config.json's content comes from it)."""

        def make() -> ModelData:
            config = self.config()
            assert config is not None, "a model without a run"
            return model_data(self.store, config, self.spec(model), self.ranked(model))

        return self._once("data", model, make)

    def export_path(self) -> Path | None:
        """The latest run's export path when it is a directory here."""
        stored = self.latest.config.get("export_path") if self.latest else None
        return Path(stored) if isinstance(stored, str) and stored and Path(stored).is_dir() else None


class ResultsDB:
    """The results DB the dashboard shows; `current()` is the latest snapshot (re-taken when the file changed,
    at most every `min_interval` seconds). Opening raises NotAResultsDB for a file that is no modelyzer DB."""

    def __init__(self, path: Path, min_interval: float = 0.2) -> None:
        self.path = path.resolve()
        self.min_interval = min_interval
        self._configs: dict[int, ProfileConfig | str] = {}
        self._lock = threading.Lock()
        self._snapshot = Snapshot(self.path, db_version(self.path), self._configs)
        self._checked = time.monotonic()

    def changed(self) -> bool:
        return db_version(self.path) != self._snapshot.version

    def current(self) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.min_interval:
                self._checked = now
                version = db_version(self.path)
                if version != self._snapshot.version:
                    self._snapshot = Snapshot(self.path, version, self._configs)
            return self._snapshot
