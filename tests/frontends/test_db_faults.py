"""Results-DB and disk faults through the real CLI, in real processes on real SQLite files and real (tmpfs) file
systems: each is one line and exit ≠ 0, never a traceback; what is stored is never touched; after a full disk
the same command resumes from what was kept.

The profiles replay a recorded surface (bench/surfaces), so they measure nothing for real and take a second.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tests.support.filesystems import read_only_dir, resize, tmpfs
from tests.support.replay_profile import MODEL, modelyzer, one_line_error, replay_config


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_results_db_in_a_read_only_directory_is_one_line(tmp_path: Path) -> None:
    with read_only_dir(tmp_path / "ro") as ro:
        for db in (ro / "results.db", ro / "sub" / "results.db"):
            proc = modelyzer("profile", "-f", str(replay_config(tmp_path)), "--results-db", str(db))
            one_line_error(proc, f"results DB {db}", "writable directory")


@pytest.mark.parametrize("damage", ["text", "truncated"])
def test_a_file_that_is_not_an_intact_results_db_is_one_line_and_left_untouched(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "results.db"
    if damage == "text":
        db.write_text("these are someone's notes, not a database\n")
    else:
        good = modelyzer("profile", "-f", str(replay_config(tmp_path)), "--results-db", str(db))
        assert good.returncode == 0, good.stderr[-3000:]
        with db.open("r+b") as fh:  # the first pages stay, the rest is gone: a copy cut short
            fh.truncate(3 * 4096)
    before = digest(db)
    for command in (["profile", "-f", str(replay_config(tmp_path))], ["report", "--report-model-configs",
                                                                      f"{MODEL}_config_default"]):
        proc = modelyzer(*command, "--results-db", str(db), "-e", str(tmp_path / "out"))
        one_line_error(proc, str(db), "not an intact SQLite results DB")
        assert digest(db) == before
    proc = modelyzer("export", "--results-db", str(db), "-e", str(tmp_path / "export"))
    one_line_error(proc, str(db))
    assert digest(db) == before


def test_a_full_disk_mid_profile_is_one_line_and_the_same_command_resumes(tmp_path: Path) -> None:
    config = replay_config(tmp_path)
    with tmpfs(tmp_path / "disk", "500k") as disk:
        db = disk / "results.db"
        full = modelyzer("profile", "-f", str(config), "--results-db", str(db))
        one_line_error(full, f"results DB {db}", "database or disk is full",
                       "run the same command again: the measurements already stored are kept")
        kept = sqlite3.connect(db).execute("select count(*) from measurements").fetchone()[0]
        assert kept >= 1
        resize(disk, "16m")  # the user frees space
        again = modelyzer("profile", "-f", str(config), "--results-db", str(db))
        assert again.returncode == 0, again.stderr[-3000:]
        conn = sqlite3.connect(db)
        try:
            runs = conn.execute("select status, skipped from runs order by id").fetchall()
            duplicates = conn.execute("select count(*) from (select run_config_key from measurements "
                                      "group by run_config_key having count(*) > 1)").fetchone()[0]
        finally:
            conn.close()
        assert runs[0][0] == "killed" and runs[1] == ("finished", kept)  # every kept measurement was resumed
        assert duplicates == 0


def test_an_export_path_on_a_read_only_file_system_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    good = modelyzer("profile", "-f", str(replay_config(tmp_path)), "--results-db", str(db))
    assert good.returncode == 0, good.stderr[-3000:]
    with read_only_dir(tmp_path / "ro") as ro:
        proc = modelyzer("profile", "-f", str(replay_config(tmp_path)), "--results-db", str(db), "-e",
                         str(ro / "out"))
        one_line_error(proc, "export_path", "writable directory")
        proc = modelyzer("export", "--results-db", str(db), "-e", str(ro / "out"))
        one_line_error(proc, "export_path", "writable directory")
    with tmpfs(tmp_path / "small", "48k") as small:  # room for the directory, not for the reports
        proc = modelyzer("export", "--results-db", str(db), "-e", str(small))
        one_line_error(proc, "No space left on device", f"the measurements are kept in {db}")
