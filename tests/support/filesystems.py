"""Real small or read-only file systems for fault tests: a tmpfs mounted under the test's directory.

Mounting needs root (CI runs as root); where the kernel refuses (an unprivileged container), `read_only_dir`
falls back to a directory without write permission for a non-root user, and the other fixtures skip with the
reason — never a fake file system.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "600k") at `path`, unmounted afterwards; the test skips where mounting is refused."""
    if not _mount(path, f"size={size}"):
        pytest.skip("mounting a tmpfs is not permitted here (needs root)")
    try:
        yield path
    finally:
        _umount(path)


def resize(path: Path, size: str) -> None:
    """Grow (or shrink) the tmpfs at `path`: the user freeing space on the disk."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)


@contextmanager
def read_only_dir(path: Path) -> Iterator[Path]:
    """A directory nothing can be written into: a read-only tmpfs (as root), else one without write permission."""
    if _mount(path, "size=64k,ro"):
        try:
            yield path
        finally:
            _umount(path)
        return
    if os.geteuid() == 0:
        pytest.skip("no read-only directory for root here: mounting a tmpfs is not permitted")
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(0o755)
