"""The binaries `.ci/setup` installs under `.tools/bin` (perf_analyzer, the tritonserver shim).

A plugin whose configured binary is the default name and not on PATH looks here: under the source tree, then
under the current directory — so a fresh checkout works with no flags, and an explicit path always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def setup_tool(name: str) -> str | None:
    """`.tools/bin/<name>` when setup installed it (source tree first, then the current directory), else None."""
    for root in (PROJECT_ROOT, Path.cwd()):
        candidate = root / ".tools" / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
