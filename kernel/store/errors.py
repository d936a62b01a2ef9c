"""The store's one error: SQLite's and the file system's failures as one line naming the DB and the fix.

Every public `Store` method raises `StoreError` instead of `sqlite3.Error` or `OSError` (`translating` wraps
them), so a read-only directory, a file that is not SQLite, a damaged DB or a full disk reach the user as one
line with exit 1 — not a traceback — wherever they happen: opening, locking, recording mid-profile, reporting.
SQLite writes nothing to a file it cannot read as a database, so what is stored is never touched; each message
says so where the user may fear otherwise.
"""

from __future__ import annotations

import errno
import functools
import inspect
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from modelyzer.kernel.errors import ModelyzerError


class StoreError(ModelyzerError):
    """The results DB could not be opened, read or written; the message names the file and the fix."""


#: what a failing method was doing, for the message (other methods say nothing)
DOING = {"__init__": "opening it", "claim": "locking it", "record": "storing a measurement",
         "start_run": "starting a run", "update_run": "updating the run's row"}

_FULL = ("database or disk is full", "no space left")
_UNWRITABLE = ("readonly database", "unable to open database file", "read-only file system", "permission denied")
_DAMAGED = ("file is not a database", "malformed", "not a database")


def hint(err: BaseException) -> str:
    """How to fix `err`, from SQLite's message or the OS error number."""
    text = str(err).lower()
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC or any(s in text for s in _FULL):
        return ("free space on its disk (or give --results-db a path on another disk) and run the same command "
                "again: the measurements already stored are kept and resumed from")
    if code in (errno.EACCES, errno.EROFS, errno.EPERM) or any(s in text for s in _UNWRITABLE):
        return ("give --results-db a path in a writable directory (SQLite also writes <db>-wal and <db>-shm "
                "beside the DB)")
    if any(s in text for s in _DAMAGED):
        return ("it is not an intact SQLite results DB (it was left untouched); move it away or give --results-db "
                "another path")
    if "locked" in text:
        return "another process holds it; wait for it, or give --results-db another path"
    return "check the file and its directory, or give --results-db another path"


def explain(path: str, err: BaseException, doing: str = "") -> StoreError:
    """`err` (SQLite's or the OS's) as a StoreError naming the DB at `path`, what failed and the fix."""
    reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
    during = f" while {doing}" if doing else ""
    return StoreError(f"results DB {path}: {reason}{during}; {hint(err)}")


T = TypeVar("T")


def _guard(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as err:
            raise explain(getattr(self, "path", "?"), err, DOING.get(name, "")) from err

    return guarded


def translating(cls: type[T]) -> type[T]:
    """`cls` with every public method (its own and its bases', and `__init__`) raising StoreError for SQLite's and
    the OS's errors."""
    owned: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):  # the most derived definition wins, as in attribute lookup
        owned.update({name: member for name, member in vars(klass).items()
                      if (name == "__init__" or not name.startswith("_")) and inspect.isfunction(member)})
    for name, member in owned.items():
        setattr(cls, name, _guard(name, member))
    return cls
