"""A real second process holding a results DB the way a running profile does (its lock and a `running` run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLD = """
import sys, time
from modelyzer.kernel.store import Store
store = Store(sys.argv[1])
store.claim()
store.start_run({})
print("held", flush=True)
time.sleep(60)
"""


def holder(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc
