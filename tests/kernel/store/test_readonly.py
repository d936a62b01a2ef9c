"""`Store.open_readonly`: a recorded DB read without touching the file; files that are no results DB refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from modelyzer.kernel.store import NotAResultsDB, Store


def test_reads_a_recorded_db_and_never_writes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = Store(path)
    store.start_run({"export_path": "/x"})
    store.upsert_model("m", {"name": "m"}, {})
    store.close()
    before = path.read_bytes()
    copy = Store.open_readonly(path)
    assert copy.path == str(path)
    assert copy.latest_run() is not None and copy.models() == ["m"]
    copy.start_run({})  # goes to the in-memory copy
    assert len(copy.runs()) == 2
    copy.close()
    assert path.read_bytes() == before
    assert len(Store.open_readonly(path).runs()) == 1


def test_sees_what_a_writer_still_holding_the_db_committed(tmp_path: Path) -> None:
    writer = Store(tmp_path / "r.db")
    writer.start_run({})
    try:
        assert len(Store.open_readonly(tmp_path / "r.db").runs()) == 1
    finally:
        writer.close()


def test_refuses_files_that_are_no_results_db_and_leaves_them_alone(tmp_path: Path) -> None:
    text = tmp_path / "text.db"
    text.write_text("hello, not sqlite" * 100)
    with pytest.raises(NotAResultsDB, match="not a database"):
        Store.open_readonly(text)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table t (x)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(NotAResultsDB, match="no modelyzer tables"):
        Store.open_readonly(other)
    assert other.read_bytes() == before
