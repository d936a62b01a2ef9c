"""bench/llm: profile the LLM example for real and compare modelyzer's overhead with running the tool by hand.

Run: `.venv/bin/python bench/llm.py [--load-generator genai_perf|aiperf] [--seconds S] [extra modelyzer profile
flags]` (after `bash .ci/setup`).

1. modelyzer: `modelyzer profile` of examples/llm (tiny Llama served by `transformers serve`, 2 variants
   attn_implementation eager/sdpa plus the default config, × concurrency 1, 2, 4 = 9 measurements; a temp copy of
   the config naming the load generator and window, the example is not edited) from an empty export directory.
   Prints, from the run's row in the results DB: wall time, measurement-window time, their ratio (goal ≥ 0.85),
   measurements, server starts, and the tool overhead per measurement = (wall − windows) / measurements.
2. by hand: the same `transformers serve` started once (by the launcher class, with the first variant's knobs;
   the knob does not change the tool's command line), then, for the same RunConfigs read back from the DB, the
   exact command lines the plugin runs (its own `command(run_config, endpoints)`, artifact directory filled in;
   variants at the same load have the same command line, run once), each run with subprocess and timed; the
   window of each is read by the plugin's own `read_export` (genai-perf: first request → last response; AIPerf:
   its benchmark_duration). Prints the same totals, so modelyzer's own
   overhead per measurement = modelyzer overhead − by-hand overhead. The server is stopped at the end and on
   Ctrl-C / SIGTERM.

The window: `--seconds` is `llm_measurement_seconds` (default 30; genai-perf measures three intervals of S / 3,
perf_analyzer often a fourth, so a 30 s setting is a ~36 s window). Each genai-perf run spends ~5 s outside its
window on an idle 2-core host (Python start-up, tokenizer, synthetic prompts, perf_analyzer start, export; ~9 s
when the host is shared), so the 0.85 goal needs windows of ≥ ~30 s: with shorter ones the tool alone, by hand,
stays below it. Shorter windows make the run faster and the ratio lower; the per-measurement overhead is the figure
that does not depend on the window. The default run takes ~9 minutes on a shared 2-core host (~7 modelyzer,
~2 by hand); `--seconds 5` takes ~4.

Measured (2 shared cores, load ~2): genai_perf, defaults: modelyzer 402.5 s wall, 321.6 s windows, ratio 0.80,
9 measurements, 3 server starts, 8.99 s overhead per measurement; by hand 3 runs, 133.2 s wall, 106.9 s windows,
ratio 0.80, 8.76 s per measurement → modelyzer's own overhead 0.22 s per measurement (server starts included).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import yaml

from modelyzer.kernel.config import load_profile_config
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import RunConfig
from modelyzer.kernel.store import Store
from modelyzer.plugins.loadgen.aiperf import AiperfLoadGenerator
from modelyzer.plugins.loadgen.genai_perf import GenaiPerfLoadGenerator
from modelyzer.plugins.loadgen.llm_common import LlmLoadGenerator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "llm"
GOAL = 0.85
LOAD_GENERATORS: dict[str, type[LlmLoadGenerator]] = {"genai_perf": GenaiPerfLoadGenerator,
                                                      "aiperf": AiperfLoadGenerator}


def _terminate(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def spawn(argv: list[str], **kwargs: Any) -> tuple[int, float]:
    """Run `argv` in its own process group; on Ctrl-C / SIGTERM interrupt the group (SIGINT, so modelyzer stops
    its server), SIGKILL it after 20 s. Returns (exit code, seconds)."""
    proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
    t0 = time.monotonic()
    try:
        code = proc.wait()
    except BaseException:
        for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(grace)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        raise
    return code, time.monotonic() - t0


def profile(config: Path, export: Path, extra: list[str]) -> tuple[float, list[RunConfig], Any]:
    """Run `modelyzer profile`; return the whole command's seconds, the measured RunConfigs and the run row."""
    cmd = [
        str(ROOT / ".venv" / "bin" / "modelyzer"), "profile", "-f", str(config),
        "--export-path", str(export), "--output-model-repository-path", str(export / "repo"), "-q", *extra,
    ]
    with open(export.parent / "modelyzer.txt", "wb") as out:
        code, outer = spawn(cmd, cwd=EXAMPLE, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        print((export.parent / "modelyzer.txt").read_text(errors="replace"), file=sys.stderr)
        raise SystemExit(code)
    store = Store(export / "results.db")
    try:
        run = store.latest_run()
        assert run is not None, "the profile stored no run"
        run_configs = [r.run_config for r in store.results(run_id=run.id) if r.measurement.metrics]
    finally:
        store.close()
    return outer, run_configs, run


def by_hand(config: Path, work: Path, name: str,
            run_configs: list[RunConfig]) -> tuple[float, int, float, float]:
    """Start the server once, run the plugin's distinct command lines for `run_configs`; (server start s, runs,
    wall s, windows s)."""
    from modelyzer_transformers_serve.launcher import TransformersServeLauncher

    profile_config = load_profile_config(config, {})
    context = RunContext(export_path=work, output_model_repository=work / "repo")
    generator = LOAD_GENERATORS[name](profile_config, context)
    launcher = TransformersServeLauncher(profile_config, context)
    wall = windows = 0.0
    try:
        first = run_configs[0]
        t0 = time.monotonic()
        launcher.start()
        endpoints = launcher.ensure(first.variant, work / "repo" / first.variant.name, first)
        started = time.monotonic() - t0
        placeholder = f"<{generator.tool}-artifacts>"
        seen: set[tuple[str, ...]] = set()
        for i, rc in enumerate(run_configs):
            command = tuple(generator.command(rc, endpoints))
            if command in seen:
                continue  # another variant at the same load: the very same command line
            seen.add(command)
            run_dir = work / f"run{i}"
            artifacts = run_dir / "artifacts"
            run_dir.mkdir(parents=True)
            argv = [artifacts.as_posix() if arg == placeholder else arg for arg in command]
            generator.prepare(endpoints, artifacts)
            with open(run_dir / "output.txt", "wb") as out:
                code, seconds = spawn(argv, stdout=out, stderr=subprocess.STDOUT, env=generator.env(endpoints),
                                    cwd=run_dir)
            if code != 0:
                tail = (run_dir / "output.txt").read_text(errors="replace").splitlines()[-5:]
                raise SystemExit(f"by hand: {shlex.join(argv)} failed (exit {code}):\n" + "\n".join(tail))
            window = generator.read_export(artifacts)[1]
            wall += seconds
            windows += window if window is not None else seconds
            print(f"    {rc.load.describe():16s} wall {seconds:5.1f} s, window "
                  f"{'?' if window is None else f'{window:.1f}'} s", flush=True)
    finally:
        launcher.stop()
    return started, len(seen), wall, windows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-generator", choices=sorted(LOAD_GENERATORS), default="genai_perf")
    parser.add_argument("--seconds", type=float, default=30.0, help="llm_measurement_seconds (default: 30)")
    args, extra = parser.parse_known_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    base = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    changes = {"load_generator": args.load_generator, "llm_measurement_seconds": args.seconds,
               "model_repository": str(EXAMPLE / "model_repository")}
    with tempfile.TemporaryDirectory(prefix="modelyzer-bench-llm-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({**base, **changes}))
        print(f"bench/llm — examples/llm profile ({args.load_generator}, transformers serve, tiny Llama; "
              f"llm_measurement_seconds {args.seconds:g}), real", flush=True)
        outer, run_configs, run = profile(config, Path(tmp) / "out", extra)
        n = max(run.measured, 1)
        wall, window = run.wall_seconds, run.window_seconds
        print(f"  modelyzer ({outer:.1f} s whole command incl. start-up and reports)")
        print(f"    measurements             {run.measured} ({run.failed} failed, {run.skipped} skipped)")
        if run.failed:
            errors = Path(tmp) / "out" / "llm_loadgen_error.log"
            for line in errors.read_text().splitlines() if errors.is_file() else []:
                if line.startswith("Error: "):
                    print(f"      {line}")
        print(f"    wall time (profile loop) {wall:.1f} s")
        print(f"    measurement windows      {window:.1f} s")
        print(f"    window / wall            {window / wall:.2f}   (goal ≥ {GOAL})")
        print(f"    server starts            {run.server_starts}")
        print(f"    overhead per measurement {(wall - window) / n:.2f} s   ((wall − windows) / measurements)")
        if not run_configs:
            print("  by hand: nothing measured to repeat", file=sys.stderr)
            return 1
        print("  by hand: the plugin's own command lines for the same loads (variants at one load share one), "
              "one server", flush=True)
        started, runs, hand_wall, hand_window = by_hand(config, Path(tmp) / "hand", args.load_generator,
                                                        run_configs)
        hand = (hand_wall - hand_window) / runs
        print(f"    server start (once)      {started:.1f} s   (not in the totals below)")
        print(f"    tool runs                {runs}")
        print(f"    wall time (tool runs)    {hand_wall:.1f} s")
        print(f"    measurement windows      {hand_window:.1f} s")
        print(f"    window / wall            {hand_window / hand_wall:.2f}")
        print(f"    overhead per measurement {hand:.2f} s")
        print(f"  modelyzer's own overhead   {(wall - window) / n - hand:.2f} s per measurement (modelyzer − by "
              f"hand; includes its {run.server_starts} server starts, ≈ {started:.0f} s each by hand)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        sys.exit(130)
