"""Only the Store speaks SQL: no module outside kernel/store (and its migrations) touches the results DB directly.

Scanned: every .py file under kernel/ (except kernel/store/ and kernel/migrations/), plugins/, frontends/,
contrib/ and bench/. Flagged: importing sqlite3 or sqlite_utils; a `.db` attribute (the Store's connection);
`db[...]` / `db.table(...)`; sqlite-utils table calls (`rows_where`, `count_where`, `insert_all`, …); `.execute()`
on a connection or with a string; SQL in any string that is not a docstring.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("kernel", "plugins", "frontends", "contrib", "bench")
STORE_OWNED = ("kernel/store/", "kernel/migrations/")
SKIPPED_PARTS = {".venv", "build", "__pycache__"}

DB_MODULES = {"sqlite3", "sqlite_utils", "apsw", "sqlalchemy"}
DB_NAMES = {"db", "conn", "connection", "cursor", "cur"}
TABLE_CALLS = {"rows_where", "count_where", "insert_all", "upsert_all", "table_names", "create_table", "executescript"}
EXECUTE_CALLS = {"execute", "executemany", "executescript"}
SQL = re.compile(
    "|".join(
        (
            r"\bselect\s+(?:\*|count\s*\(|distinct\b|[\w.]+\s*(?:,\s*[\w.]+\s*)*\bfrom\s+\w)",
            r"\binsert\s+(?:or\s+\w+\s+)?into\b",
            r"\bupdate\s+\w+\s+set\b",
            r"\bdelete\s+from\b",
            r"\b(?:create|drop)\s+(?:unique\s+)?(?:table|index|view|trigger)\b",
            r"\bpragma\s+\w+",
            r"\bjson_extract\s*\(",
            r"[\w.]+\s*(?:=|!=|<>|<=|>=|<|>|\blike|\bin)\s*\(?\?",
            r"^\s*vacuum\s*$",
        )
    ),
    re.IGNORECASE,
)


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if SKIPPED_PARTS & set(path.relative_to(ROOT).parts) or rel.startswith(STORE_OWNED):
                continue
            files.append(path)
    return files


def _name(node: ast.AST) -> str:
    """The last identifier of an expression (`self.store.db` → `db`), '' when it has none."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def violations(source: str) -> list[str]:
    """`line: what` for each direct DB access or SQL string in `source`."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            out += [f"{line}: imports {a.name}" for a in node.names if a.name.split(".")[0] in DB_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in DB_MODULES:
            out.append(f"{line}: imports from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr == "db":
            out.append(f"{line}: reads the store's connection (.db)")
        elif isinstance(node, ast.Subscript) and _name(node.value) in DB_NAMES:
            out.append(f"{line}: indexes a table ({_name(node.value)}[...])")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr, receiver = node.func.attr, _name(node.func.value)
            first = node.args[0] if node.args else None
            if attr in TABLE_CALLS or (attr == "table" and receiver in DB_NAMES):
                out.append(f"{line}: sqlite-utils table access (.{attr}())")
            elif attr in EXECUTE_CALLS and (receiver in DB_NAMES or isinstance(first, ast.Constant | ast.JoinedStr)):
                out.append(f"{line}: executes SQL (.{attr}())")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if SQL.search(node.value):
                out.append(f"{line}: SQL in a string: {node.value[:60]!r}")
    return sorted(set(out), key=lambda text: int(text.split(":")[0]))


@pytest.mark.parametrize("path", scanned_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_sql_outside_the_store(path: Path) -> None:
    found = violations(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)} talks to the results DB itself; add a Store method:\n" + "\n".join(found)


def test_the_scan_covers_every_tree() -> None:
    covered = {p.relative_to(ROOT).parts[0] for p in scanned_files()}
    assert covered == set(SCANNED)
    assert not any(p.relative_to(ROOT).as_posix().startswith(STORE_OWNED) for p in scanned_files())


@pytest.mark.parametrize(
    "source",
    [
        "import sqlite3",
        "from sqlite_utils import Database",
        "store.db.close()",
        "rows = db['runs'].rows",
        "db.table('runs').get(1)",
        "store.thing.rows_where('id = ?', [1])",
        "conn.execute(query)",
        "store.execute('vacuum')",
        "x = 'SELECT id, status FROM runs'",
        "x = f'select count(*) from {table}'",
        "x = 'insert or ignore into runs values (1)'",
        "x = 'update runs set status = 1'",
        "x = 'delete from runs'",
        "x = 'create unique index i on t(c)'",
        "x = 'PRAGMA journal_mode=WAL'",
        "x = \"json_extract(config, '$.a')\"",
        "where = 'run_id = ?'",
        "where = 'scope = ? and name = ?'",
    ],
)
def test_the_scan_flags_sql_and_db_access(source: str) -> None:
    assert violations(source)


@pytest.mark.parametrize(
    "source",
    [
        '"""Every record goes to select count(*) from measurements, documented only."""',
        "for rc, m in self.executor.execute(plan): pass",
        "store.record(run_id, rc, measurement)",
        "path = export / 'results.db'",
        "text = 'select the GPUs to profile, from the list'",
        "text = 'update the model config and set the batch size'",
        "log.info('is the server ready? %s', ok)",
    ],
)
def test_the_scan_leaves_ordinary_code_alone(source: str) -> None:
    assert not violations(source)
