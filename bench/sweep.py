"""bench/sweep: profile the quick-start for real and print where the wall time goes.

Run: `.venv/bin/python bench/sweep.py [extra modelyzer profile flags]` (after `bash .ci/setup`).
Prints wall time, total measurement-window time, server starts, model loads and the duty cycle
(window time / wall time) from the run's row in the results DB. Each invocation starts from an empty
export directory, so nothing is resumed.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelyzer.kernel.store import Store

ROOT = Path(__file__).resolve().parents[1]
QUICK_START = ROOT / "examples" / "quick-start"


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="modelyzer-bench-") as tmp:
        export = Path(tmp) / "out"
        cmd = [
            str(ROOT / ".venv" / "bin" / "modelyzer"), "profile", "-f", str(QUICK_START / "config.yaml"),
            "--export-path", str(export), "--output-model-repository-path", str(export / "repo"),
            "--model-repository", str(QUICK_START / "model_repository"), "-q", *argv,
        ]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=QUICK_START, capture_output=True, text=True)
        outer = time.monotonic() - t0
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, sep="\n", file=sys.stderr)
            return proc.returncode
        store = Store(export / "results.db")
        run, variants = store.latest_run(), store.counts()["variants"]
        store.close()
        assert run is not None, "the profile stored no run"
        measured, skipped, failed = run.measured, run.skipped, run.failed
        wall, window, starts, loads = run.wall_seconds, run.window_seconds, run.server_starts, run.model_loads
    print("bench/sweep — quick-start profile (MLServer + perf_analyzer, real)")
    print(f"  variants                 {variants}")
    print(f"  measurements             {measured} ({failed} failed, {skipped} skipped)")
    print(f"  wall time (profile loop) {wall:.1f} s   (whole command incl. start-up and CSVs: {outer:.1f} s)")
    print(f"  measurement windows      {window:.1f} s")
    print(f"  duty cycle               {window / wall:.2f}")
    print(f"  server starts            {starts}")
    print(f"  model loads              {loads}")
    print(f"  per measurement          {wall / max(measured, 1):.2f} s wall, {window / max(measured, 1):.2f} s window")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
