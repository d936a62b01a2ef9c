"""The binaries `.ci/setup` installs under `.tools/bin` (perf_analyzer, the tritonserver shim), and the Triton
installation layout it makes in `.tools/triton` for perf_analyzer's C API mode.

A plugin whose configured binary is the default name and not on PATH looks here: under the source tree, then
under the current directory — so a fresh checkout works with no flags, and an explicit path always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def setup_dir(name: str) -> Path | None:
    """`.tools/<name>` when setup made it (source tree first, then the current directory), else None."""
    for root in (PROJECT_ROOT, Path.cwd()):
        candidate = root / ".tools" / name
        if candidate.is_dir():
            return candidate
    return None


def setup_tool(name: str) -> str | None:
    """`.tools/bin/<name>` when setup installed it (source tree first, then the current directory), else None."""
    for root in (PROJECT_ROOT, Path.cwd()):
        candidate = root / ".tools" / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
