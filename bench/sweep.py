"""bench/sweep: profile the quick-start for real, idle and beside a CPU-burning neighbour; where the wall time goes,
how precise each measurement is, and whether repeats agree on the best config.

Run: `.venv/bin/python bench/sweep.py [--launch-mode mlserver|local] [--repeats 3] [--conditions idle,neighbour]
[extra modelyzer profile flags]` (after `bash .ci/setup`). `mlserver` (default) is the quick start's sweep;
`local` runs the same sweep (same ONNX add_sub model, executed by onnxruntime inside a Python-backend model) on
the real Triton 2.51 of examples/triton-cpu. Every profile measures to modelyzer's own precision (the quick
start's perf_analyzer stability flags are dropped, so `measurement_precision` decides; pass
`--measurement-precision` / `--measurement-max-seconds` to change it). `neighbour`: a process this bench starts
burns one core for the whole profile (the 2-core machine's other tenant).

Per profile, from its run row and its results DB: wall time, the duty figure (measuring / retries / tool: the
windows stored measurements kept, the perf_analyzer runs thrown away, the rest — of the command's wall time),
server starts, model loads, the per-measurement precision (windows and the throughput / p99 95% CI half-widths:
median and worst) and the best config with its statistical tie, if any (best_config.json). Per condition: whether
the repeats agree on the best config — the same best, or a best inside the tie another repeat declared. Each
profile starts from an empty export directory, so nothing is resumed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelyzer.kernel import ranking  # noqa: E402
from modelyzer.kernel.config import load_profile_config  # noqa: E402
from modelyzer.kernel.engine import ProfileSummary  # noqa: E402
from modelyzer.kernel.store import Store  # noqa: E402

QUICK_START = ROOT / "examples" / "quick-start"
#: launch mode → (label, model repository, YAML keys changed): the same sweep of the same ONNX model on each server
SERVERS: dict[str, tuple[str, Path, dict[str, Any]]] = {
    "mlserver": ("MLServer", QUICK_START / "model_repository", {}),
    "local": ("Triton 2.51, Python backend running onnxruntime", ROOT / "examples" / "triton-cpu" / "model_repository",
              {"triton_launch_mode": "local", "profile_models": "add_sub_onnx"}),
}
STABILITY_FLAGS = ("stability-percentage", "max-trials", "measurement-request-count")


@attrs.frozen
class Outcome:
    """One profile: its run row's figures, its measurements' precision, its best config and tie."""

    wall: float
    duty: tuple[float, float, float]
    measured: int
    failed: int
    starts: int
    loads: int
    windows: list[float]
    throughput_ci: list[float]
    latency_ci: list[float]
    best: str
    tied: tuple[str, ...]
    leaders: list[tuple[str, float, float]]  # the three best configs: name, throughput, its ±CI %

    @property
    def candidates(self) -> set[str]:
        return set(self.tied) or {self.best}


def burn() -> None:  # pragma: no cover - runs in the neighbour process
    while True:
        pass


def profile_once(label: str, repository: Path, changes: dict[str, Any], extra: list[str]) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="modelyzer-bench-") as tmp:
        export = Path(tmp) / "out"
        config = Path(tmp) / "config.yaml"
        base = yaml.safe_load((QUICK_START / "config.yaml").read_text())
        flags = {k: v for k, v in (base.get("perf_analyzer_flags") or {}).items() if k not in STABILITY_FLAGS}
        config.write_text(yaml.safe_dump({**base, **changes, "perf_analyzer_flags": flags}))
        cmd = [str(ROOT / ".venv" / "bin" / "modelyzer"), "profile", "-f", str(config), "--export-path", str(export),
               "--output-model-repository-path", str(export / "repo"), "--model-repository", str(repository), "-q",
               *extra]
        proc = subprocess.run(cmd, cwd=QUICK_START, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, sep="\n", file=sys.stderr)
            raise SystemExit(proc.returncode)
        store = Store(export / "results.db")
        try:
            run = store.latest_run()
            assert run is not None, "the profile stored no run"
            results = store.results()
            values = [r.measurement.values() for r in results if r.measurement.ok]
            spec = load_profile_config(config, {}, check_paths=False).models[0]
            leaders = []
            for rc in ranking.rank(results, spec.objectives, spec.constraints)[:3]:
                v = ranking.measurement_values(rc.best.measurement)
                leaders.append((rc.variant_name, v.get("perf_throughput", 0.0), v.get("perf_throughput_ci", 0.0)))
        finally:
            store.close()
        model = changes.get("profile_models", base["profile_models"])
        doc = json.loads((export / "best_configs" / model / "best_config.json").read_text())
    summary = ProfileSummary(run.id, wall_seconds=run.wall_seconds, window_seconds=run.window_seconds,
                             retry_seconds=run.retry_seconds)
    tied = doc.get("statistically_tied") or {}
    return Outcome(run.wall_seconds, summary.duty(), run.measured, run.failed, run.server_starts, run.model_loads,
                   [v["measurement_windows"] for v in values if "measurement_windows" in v],
                   [v["perf_throughput_ci"] for v in values if "perf_throughput_ci" in v],
                   [v["perf_latency_p99_ci"] for v in values if "perf_latency_p99_ci" in v],
                   doc["variant"], tuple(tied.get("variants") or ()), leaders)


def spread(values: list[float], unit: str = "") -> str:
    if not values:
        return "–"
    return f"median {statistics.median(values):.1f}{unit}, worst {max(values):.1f}{unit}"


def report(condition: str, outcomes: list[Outcome]) -> None:
    print(f"  {condition}:")
    for i, o in enumerate(outcomes, 1):
        measuring, retries, tool = o.duty
        tie = f" (statistically tied: {', '.join(o.tied)})" if o.tied else ""
        print(f"    repeat {i}: {o.measured} measured ({o.failed} failed) in {o.wall:.0f} s — measuring {measuring:.0%}, "
              f"retries {retries:.0%}, tool {tool:.0%}; server starts {o.starts}, model loads {o.loads}")
        print(f"      per measurement: windows {spread(o.windows)}; throughput ±{spread(o.throughput_ci, '%')}; "
              f"p99 ±{spread(o.latency_ci, '%')}")
        print(f"      best {o.best}{tie}; leaders: "
              + ", ".join(f"{name} {tput:.0f}/s ±{ci:.1f}%" for name, tput, ci in o.leaders))
    modal, _ = Counter(o.best for o in outcomes).most_common(1)[0]
    modal_ties: set[str] = set().union(*(o.candidates for o in outcomes if o.best == modal))
    agree = sum(1 for o in outcomes if modal in o.candidates or o.best in modal_ties)
    duty = [o.duty[0] for o in outcomes]
    print(f"    => useful-window duty {min(duty):.2f}–{max(duty):.2f}; same best config (or a declared tie) in "
          f"{agree} of {len(outcomes)} ({modal})")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launch-mode", choices=sorted(SERVERS), default="mlserver")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conditions", default="idle,neighbour")
    args, extra = parser.parse_known_args(argv)
    label, repository, changes = SERVERS[args.launch_mode]
    print(f"bench/sweep — quick-start profile ({label} + perf_analyzer, real), {args.repeats} repeats per condition")
    for condition in args.conditions.split(","):
        neighbour = multiprocessing.Process(target=burn, daemon=True) if condition == "neighbour" else None
        if neighbour is not None:
            neighbour.start()
        t0 = time.monotonic()
        try:
            outcomes = [profile_once(label, repository, changes, extra) for _ in range(args.repeats)]
        finally:
            if neighbour is not None:
                neighbour.terminate()
                neighbour.join()
        report(f"{condition} ({time.monotonic() - t0:.0f} s)", outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
