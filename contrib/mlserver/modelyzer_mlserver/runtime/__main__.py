"""Entry point of the extended MLServer: `python -m modelyzer_rt start <repository>` (MLServer's own CLI).

With `MODELYZER_PARENT_PID` set (the launcher sets it), a watchdog thread ends the server — its whole process
group, workers included — when that parent is gone, so a killed controller (SIGKILL, crash) leaves no server.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PARENT_ENV = "MODELYZER_PARENT_PID"


def _watch_parent(parent: int, interval: float = 1.0, grace: float = 10.0) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    print(f"modelyzer: launcher process {parent} is gone; stopping MLServer", file=sys.stderr, flush=True)
    leader = os.getpgrp() == os.getpid()  # started in its own session by the launcher
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        if leader:
            os.killpg(os.getpgrp(), sig)
        else:
            os.kill(os.getpid(), sig)
        time.sleep(wait)


def main() -> None:
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit() and int(parent) == os.getppid():
        threading.Thread(
            target=_watch_parent, args=(int(parent),), name="parent-watchdog", daemon=True
        ).start()

    from .ext import install

    install()
    from mlserver.cli.main import main as mlserver_main

    sys.argv[0] = "mlserver"
    mlserver_main()


if __name__ == "__main__":  # not when multiprocessing (spawn) re-imports this module in a worker
    main()
