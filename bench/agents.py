"""bench/agents: how distributed profiling scales with the number of ZeroMQ agents.

Run: `.venv/bin/python bench/agents.py [--agents 1,2,4,8] [--slots 2] [--duration 0.5] [--insecure]
[--executor agents|ray]`.

A brute search of 256 RunConfigs (64 independent variants × 4 concurrencies) is replayed from a synthetic
recording (`triton_launch_mode: replay`, `replay_duration` seconds per measurement), so the only costs are
the protocol, the scheduler, SQLite and the fixed simulated measurement. For each agent count the
controller (an `AgentsExecutor` driven by the real engine, in this process) waits for the agents (separate
processes on 127.0.0.1, CURVE on), then profiles into an empty results DB. Printed per row: wall time of the
profile loop, the start-up within it (agents joined or slot actors ready), speedup over the first row, efficiency
(speedup / agent ratio), efficiency against the ideal (`measurements × duration / (slots × wall)`) and against
it after start-up, controller CPU seconds per measurement (all threads of this
process during the loop) and committed SQLite writes per second. Every row also checks that each RunConfig
was stored exactly once.

With `--executor ray` the same profile runs on the `ray` executor instead: a private Ray instance on this host
offering `agents × slots` slot actors (`ray_slots`), each a Ray worker process — the scheduling, serialisation
and result path of a Ray cluster, without the network between nodes.

`make_fixture()` (model repository, recording, config) is shared with tests/integration/test_agents.py.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = ROOT / ".venv" / "bin" / "python"
MODEL = "bench_model"
INSTANCES = [1, 2, 3, 4, 5, 6, 7]
MAX_BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
CONCURRENCY = [1, 2, 4, 8]
CONFIG_PBTXT = f"""name: "{MODEL}"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] }} ]
instance_group [ {{ count: 1 kind: KIND_CPU }} ]
"""


def profile_values(root: Path, instances: Sequence[int] = INSTANCES, batch_sizes: Sequence[int] = MAX_BATCH_SIZES,
                   concurrency: Sequence[int] = CONCURRENCY) -> dict[str, Any]:
    """The profile config (YAML values) of the bench search, rooted at `root`."""
    return {
        "model_repository": str(root / "models"),
        "export_path": str(root / "out"),
        "output_model_repository_path": str(root / "out" / "output_model_repository"),
        "override_output_model_repository": True,
        "gpus": [],
        "profile_models": {MODEL: {
            "model_config_parameters": {
                "instance_group": [[{"kind": "KIND_CPU", "count": list(instances)}]],
                "max_batch_size": list(batch_sizes),
            },
            "parameters": {"concurrency": list(concurrency)},
        }},
    }


def synthetic_metrics(rc: Any) -> list[Any]:
    """Throughput rising with concurrency, instances and batch size (so no sweep stops early)."""
    from modelyzer.kernel.models import Metric

    c = float(rc.load.concurrency or 1)
    thr = 50.0 * rc.variant.instance_count * math.log2(rc.variant.max_batch_size + 1) * c / (c + 4)
    return [Metric("perf_throughput", round(thr, 3)), Metric("perf_latency_p99", round(1.0 + c * 0.7, 3))]


def make_fixture(root: Path, **search: Any) -> tuple[dict[str, Any], Path]:
    """Model repository + synthetic recording under `root`; returns (profile values, recording path)."""
    from modelyzer.kernel.config import config_from_dict
    from modelyzer.kernel.executor import Executor
    from modelyzer.kernel.hookspecs import hookimpl
    from modelyzer.kernel.models import Measurement
    from modelyzer.kernel.plugins import register_plugin, unregister_plugin
    from modelyzer.kernel.profile import Profile
    from modelyzer.kernel.progress import Progress

    (root / "models" / MODEL).mkdir(parents=True, exist_ok=True)
    (root / "models" / MODEL / "config.pbtxt").write_text(CONFIG_PBTXT)
    values = profile_values(root, **search)
    recording = root / "recording.db"

    class Synthetic(Executor):
        """Answers every RunConfig at once from `synthetic_metrics` (an executor plugin, like any other)."""

        slots = 64

        def __init__(self, config: Any, context: Any) -> None:
            pass

        def execute(self, run_configs: Sequence[Any]) -> Iterator[tuple[Any, Measurement]]:
            for rc in run_configs:
                now = time.time()
                yield rc, Measurement(rc.key, metrics=tuple(synthetic_metrics(rc)), started_at=now, finished_at=now)

    class SyntheticPlugin:
        @hookimpl
        def register_executors(self, register: Any) -> None:
            register("bench-synthetic", Synthetic)

    register_plugin(SyntheticPlugin(), "bench-synthetic")
    try:
        config = config_from_dict({**values, "results_db": str(recording), "executor": "bench-synthetic"})
        recorder = Profile(config, Progress(quiet=True))
        recorder.run()
        recorder.close()
    finally:
        unregister_plugin("bench-synthetic")
    return values, recording


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_agents(count: int, slots: int, url: str, keys: Path | None, workdir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(1, count + 1):
        security = ["--insecure"] if keys is None else ["--keys", str(keys), "--key", f"agent-{i}"]
        cmd = [str(PY), "-m", "modelyzer.frontends.cli", "--log-level", "warning", "agent", "--controller", url,
               "--slots", str(slots), "--gpus", "none", "--name", f"bench-{i}", "--workdir", str(workdir / f"a{i}"),
               "--max-silence", "30", *security]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def run_once(root: Path, values: dict[str, Any], recording: Path, agents: int, slots: int, duration: float,
             keys: Path | None, executor: str = "agents") -> dict[str, float]:
    from modelyzer.kernel.config import config_from_dict
    from modelyzer.kernel.profile import Profile
    from modelyzer.kernel.progress import Progress

    url = f"tcp://127.0.0.1:{free_port()}"
    db = root / f"results-{executor}-{agents}x{slots}.db"
    where: dict[str, Any] = {"agents": url, "min_agents": agents,
                             **({"insecure": True} if keys is None else {"agent_keys": str(keys)})}
    if executor == "ray":
        where = {"executor": "ray", "ray_slots": agents * slots}
    config = config_from_dict({
        **values, "results_db": str(db), "triton_launch_mode": "replay", "replay_results_db": str(recording),
        "replay_duration": duration, **where,
    })
    procs = start_agents(agents, slots, url, keys, root / "agents") if executor == "agents" else []
    profile = Profile(config, Progress(quiet=True))
    try:
        profile.prepare()  # the `agents` executor (chosen by the `agents` key) waits for them
        start = time.monotonic() - profile.started  # agents joined / slot actors ready, servers warm
        cpu0 = time.process_time()
        summary = profile.run()
        cpu = time.process_time() - cpu0
        store = profile.store
        keys_stored = (store.counts()["measurements"], len({r.run_config.key for r in store.results()}))
    finally:
        if profile.executor is not None:
            profile.executor.stop()
        profile.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if keys_stored[0] != keys_stored[1] or summary.measured != keys_stored[0] or summary.failed:
        raise SystemExit(f"{agents} agents: stored {keys_stored} for {summary.measured} measured "
                         f"({summary.failed} failed)")
    return {"measured": summary.measured, "wall": summary.wall_seconds, "cpu": cpu, "start": start}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="1,2,4,8", help="agent counts (comma-separated)")
    parser.add_argument("--slots", type=int, default=2, help="slots per agent")
    parser.add_argument("--duration", type=float, default=0.5, help="simulated seconds per measurement")
    parser.add_argument("--insecure", action="store_true", help="plaintext instead of CURVE")
    parser.add_argument("--executor", choices=("agents", "ray"), default="agents",
                        help="ZeroMQ agents, or slot actors of a private Ray instance (agents × slots of them)")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.agents.split(",") if c.strip()]
    os.environ.setdefault("MODELYZER_AGENT_HEARTBEAT", "1")
    with tempfile.TemporaryDirectory(prefix="modelyzer-bench-agents-") as tmp:
        root = Path(tmp)
        values, recording = make_fixture(root)
        keys = None
        if not args.insecure and args.executor == "agents":
            from modelyzer.plugins.agents.keys import generate_keys

            keys = root / "keys"
            generate_keys(keys, max(max(counts), 2))
        where = ("Ray slot actors on a private instance" if args.executor == "ray"
                 else "ZeroMQ agents, " + ("plaintext" if keys is None else "CURVE"))
        print(f"bench/agents — replay, {args.duration:g} s per measurement, {args.slots} slots per agent, {where}")
        print(f"{'agents':>6} {'slots':>5} {'RCs':>5} {'wall s':>8} {'start s':>8} {'speedup':>8} {'eff.':>6} "
              f"{'eff. vs ideal':>13} {'after start':>11} {'ctl CPU ms/meas':>15} {'writes/s':>9}")
        base: dict[str, float] | None = None
        for n in counts:
            row = run_once(root, values, recording, n, args.slots, args.duration, keys, args.executor)
            base = base or {**row, "agents": n}
            speedup = base["wall"] / row["wall"]
            efficiency = speedup / (n / base["agents"])
            ideal = row["measured"] * args.duration / (n * args.slots * row["wall"])
            after = row["measured"] * args.duration / (n * args.slots * (row["wall"] - row["start"]))
            print(f"{n:>6} {n * args.slots:>5} {row['measured']:>5.0f} {row['wall']:>8.2f} {row['start']:>8.2f} "
                  f"{speedup:>8.2f} {efficiency:>6.2f} {ideal:>13.2f} {after:>11.2f} "
                  f"{1000 * row['cpu'] / row['measured']:>15.2f} {row['measured'] / row['wall']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
