"""Search state, bench surface labels, opening a recorded DB."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyzer.kernel.store import NotAResultsDB, Store, SurfaceLabel


def test_search_state_table_is_made_on_first_use(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    assert "search_state" not in store.db.table_names()
    assert store.search_state("optuna/m", "seed") is None
    assert "search_state" in store.db.table_names()
    store.set_search_state("optuna/m", "seed", 1)
    store.set_search_state("optuna/m", "seed", {"a": [1, 2]})
    store.close()
    again = Store(tmp_path / "r.db")
    assert again.search_state("optuna/m", "seed") == {"a": [1, 2]}
    assert again.db["_sqlite_migrations"].count == 5  # modelyzer.core (4) and modelyzer.search, once each


def test_surface_labels(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.surface_label("m") is None
    label = SurfaceLabel("m", 25.0, "SYNTHETIC")
    store.label_surface(label)
    store.label_surface(label)
    store.vacuum()
    assert store.surface_label("m") == label and store.surface_label("other") is None


def test_open_existing_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    bad = tmp_path / "notadb.db"
    bad.write_text("hello, not sqlite" * 100)
    with pytest.raises(NotAResultsDB, match="not a database"):
        Store.open_existing(bad)
    good = tmp_path / "good.db"
    Store(good).close()
    assert Store.open_existing(good).counts()["runs"] == 0
