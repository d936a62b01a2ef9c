"""bench/sweep: profile the quick-start for real and print where the wall time goes.

Run: `.venv/bin/python bench/sweep.py [--launch-mode mlserver|local] [extra modelyzer profile flags]` (after
`bash .ci/setup`). `mlserver` (default) is the quick start as it is; `local` runs the same sweep (same search,
same ONNX add_sub model, executed by onnxruntime inside a Python-backend model) on the real Triton 2.51 of
examples/triton-cpu. Prints wall time, total measurement-window time, server starts, model loads, the duty cycle
(window time / wall time) and the overhead per measurement outside the windows, from the run's row in the
results DB. Each invocation starts from an empty export directory, so nothing is resumed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from modelyzer.kernel.store import Store

ROOT = Path(__file__).resolve().parents[1]
QUICK_START = ROOT / "examples" / "quick-start"
#: launch mode → (label, model repository, YAML keys changed): the same sweep of the same ONNX model on each server
SERVERS: dict[str, tuple[str, Path, dict[str, Any]]] = {
    "mlserver": ("MLServer", QUICK_START / "model_repository", {}),
    "local": ("Triton 2.51, Python backend running onnxruntime", ROOT / "examples" / "triton-cpu" / "model_repository",
              {"triton_launch_mode": "local", "profile_models": "add_sub_onnx"}),
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launch-mode", choices=sorted(SERVERS), default="mlserver")
    args, extra = parser.parse_known_args(argv)
    label, repository, changes = SERVERS[args.launch_mode]
    with tempfile.TemporaryDirectory(prefix="modelyzer-bench-") as tmp:
        export = Path(tmp) / "out"
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({**yaml.safe_load((QUICK_START / "config.yaml").read_text()), **changes}))
        cmd = [
            str(ROOT / ".venv" / "bin" / "modelyzer"), "profile", "-f", str(config),
            "--export-path", str(export), "--output-model-repository-path", str(export / "repo"),
            "--model-repository", str(repository), "-q", *extra,
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
    print(f"bench/sweep — quick-start profile ({label} + perf_analyzer, real)")
    print(f"  variants                 {variants}")
    print(f"  measurements             {measured} ({failed} failed, {skipped} skipped)")
    print(f"  wall time (profile loop) {wall:.1f} s   (whole command incl. start-up and CSVs: {outer:.1f} s)")
    print(f"  measurement windows      {window:.1f} s")
    print(f"  duty cycle               {window / wall:.2f}")
    print(f"  server starts            {starts}")
    print(f"  model loads              {loads}")
    print(f"  per measurement          {wall / max(measured, 1):.2f} s wall, {window / max(measured, 1):.2f} s window, "
          f"{(wall - window) / max(measured, 1):.2f} s outside the window")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
