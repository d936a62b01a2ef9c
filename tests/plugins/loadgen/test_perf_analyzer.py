"""The perf_analyzer load generator: the real binary, its failure paths and retries (command lines and CSV parsing: test_perf_analyzer_args.py and test_perf_analyzer_csv.py).

Real-process tests run the REAL perf_analyzer 2.51 (against a closed port, and against ``data/triton_stub.py``,
a small Triton-compatible HTTP server), or small scripts standing in for perf_analyzer via
``perf_analyzer_path`` to provoke timeouts, CPU kills and unstable measurements deterministically.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import psutil
import pytest

from modelyzer.kernel.errors import LoadGeneratorError
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, Metric, RunConfig
from modelyzer.plugins.loadgen import perf_analyzer as pal
from tests.conftest import PERF_ANALYZER, QUICK_START, real_server_available
from tests.plugins.loadgen.perf_analyzer_support import (
    DATA,
    REAL_CSV,
    TRITON,
    generator,
    make_config,
    make_context,
    needs_pa,
    run_config,
)


def test_binary_falls_back_to_project_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    if PERF_ANALYZER.exists():
        assert pal.find_perf_analyzer("perf_analyzer") == str(PERF_ANALYZER)
    with pytest.raises(LoadGeneratorError, match="perf_analyzer_path"):
        pal.find_perf_analyzer(str(tmp_path / "nope" / "perf_analyzer"))
    with pytest.raises(LoadGeneratorError, match="perf_analyzer_path"):
        pal.find_perf_analyzer("perf_analyzer_not_here")


def test_hook_registers_perf_analyzer() -> None:
    seen: dict[str, Any] = {}
    pal.register_load_generators(lambda name, factory: seen.update({name: factory}))
    assert seen == {"perf_analyzer": pal.PerfAnalyzerLoadGenerator}


# --- real processes --------------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gone(pid: int, within: float = 5.0) -> bool:
    """The process is dead (or a zombie waiting for its reaper) within ``within`` s (signals are asynchronous)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:  # NoSuchProcess, ZombieProcess
            return True
        time.sleep(0.05)
    return False


def fake_pa(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake_perf_analyzer"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


@needs_pa
@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_real_perf_analyzer_against_a_closed_port(tmp_path: Path, protocol: str) -> None:
    port = closed_port()
    gen = generator(tmp_path, perf_analyzer_path=str(PERF_ANALYZER), client_protocol=protocol)
    endpoints = Endpoints(
        http=f"127.0.0.1:{port}", grpc=f"127.0.0.1:{port}", protocol=protocol, model_name="add_sub"
    )
    with pytest.raises(LoadGeneratorError) as err:
        gen.measure(run_config(), endpoints)
    message = str(err.value)
    assert "\n" not in message and "exit 99" in message and "failed to get model metadata" in message
    assert f"-u 127.0.0.1:{port}" in err.value.command and err.value.output
    log = (tmp_path / "export" / "perf_analyzer_error.log").read_text()
    assert err.value.command in log and "failed to get model metadata" in log
    assert not list((tmp_path / "export").glob(".perf_analyzer-*"))


@pytest.fixture
def stub_port() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, str(DATA / "triton_stub.py")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline().split()[1])
    finally:
        proc.kill()
        proc.wait()


@needs_pa
@pytest.mark.integration
def test_real_perf_analyzer_measures_a_stub_triton(tmp_path: Path, stub_port: int) -> None:
    out = tmp_path / "perf_output.txt"
    gen = generator(
        tmp_path,
        perf_analyzer_path="perf_analyzer",
        client_protocol="http",
        triton_launch_mode="remote",
        monitoring_interval=0.5,
        perf_output=True,
        perf_output_path=str(out),
    )
    endpoints = Endpoints(
        http=f"127.0.0.1:{stub_port}",
        metrics_url=f"http://127.0.0.1:{stub_port}/metrics",
        protocol="http",
        model_name="add_sub",
        loadgen_flags={"input-tensor-format": "json", "output-tensor-format": "json"},
        triton_metrics=True,  # the stub serves Triton's /metrics
    )
    # a busy 2-core CI box makes windows vary: accept up to 5x spread (the retry path has its own tests)
    rc = run_config(LoadSpec(batch_size=2, concurrency=2), flags={"stability-percentage": 500})
    metrics = gen.measure(rc, endpoints)
    values = {(m.tag, m.gpu_uuid): m.value for m in metrics}
    assert values[("perf_throughput", None)] > 0 and values[("perf_latency_p99", None)] > 0
    assert (
        values[("perf_server_queue", None)] == 0.02 and values[("perf_server_compute_output", None)] == 0.005
    )
    assert (
        values[("gpu_used_memory", "GPU-aaaa")] == 1000.0 and values[("gpu_utilization", "GPU-bbbb")] == 25.0
    )
    assert 0 < gen.last_window_seconds < 60 and gen.last_attempts == 1
    output = out.read_text()
    assert "Server Prometheus Metrics" in output and "--input-tensor-format=json" in output
    assert "--concurrency-range=2 --stability-percentage=500 --measurement-mode=count_windows" in output
    assert not list((tmp_path / "export").glob(".perf_analyzer-*"))


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = fake_pa(
        tmp_path,
        f"""
        import subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print("Request concurrency: 1", flush=True)
        time.sleep(60)
    """,
    )
    gen = generator(tmp_path, perf_analyzer_path=script)
    gen.config = attrs.evolve(gen.config, perf_analyzer_timeout=1.5)  # the key takes whole seconds; be quick here
    start = time.monotonic()
    with pytest.raises(LoadGeneratorError, match=r"perf_analyzer_timeout=1.5 s and was killed") as err:
        gen.measure(run_config(), TRITON)
    assert time.monotonic() - start < 10
    assert "Request concurrency: 1" in err.value.output
    assert gone(int(pidfile.read_text()))


def test_cpu_hungry_perf_analyzer_is_killed(tmp_path: Path) -> None:
    script = fake_pa(
        tmp_path,
        """
        import time
        end = time.time() + 30
        while time.time() < end:
            pass
    """,
    )
    gen = generator(
        tmp_path, perf_analyzer_path=script, perf_analyzer_cpu_util=20.0, perf_analyzer_timeout=30
    )
    with pytest.raises(LoadGeneratorError, match=r"CPU, above perf_analyzer_cpu_util=20%"):
        gen.measure(run_config(), TRITON)


STABILITY_SCRIPT = """
    import json, sys
    calls = {calls!r}
    with open(calls, "a") as fh:
        fh.write(json.dumps(sys.argv[1:]) + "\\n")
    n = sum(1 for _ in open(calls))
    if n <= {fails}:
        print("Request concurrency: 1")
        print("Failed to obtain stable measurement within 10 measurement windows for concurrency 1. "
              "Please try to increase the --measurement-request-count.", file=sys.stderr)
        print("Failed to obtain stable measurement.", file=sys.stderr)
        sys.exit(2)
    args = sys.argv[1:]
    open(args[args.index("-f") + 1], "w").write({csv!r})
    print("ok")
"""


def test_unstable_measurement_is_retried_with_larger_windows(tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    script = fake_pa(tmp_path, STABILITY_SCRIPT.format(calls=str(calls), fails=2, csv=REAL_CSV))
    gen = generator(tmp_path, perf_analyzer_path=script, perf_analyzer_max_auto_adjusts=5)
    metrics = gen.measure(run_config(LoadSpec(concurrency=4)), TRITON)
    assert Metric("perf_throughput", 2618.4) in metrics and gen.last_attempts == 3
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    counts = [[a for a in argv if a.startswith("--measurement-request-count")] for argv in argvs]
    assert counts == [[], ["--measurement-request-count=100"], ["--measurement-request-count=150"]]


SLOW_RETRY_SCRIPT = """
    import json, sys, time
    calls = {calls!r}
    with open(calls, "a") as fh:
        fh.write("x\\n")
    if sum(1 for _ in open(calls)) == 1:
        print("Failed to obtain stable measurement.", file=sys.stderr)
        sys.exit(2)
    print("Request concurrency: 1", flush=True)
    time.sleep(2.5)
    args = sys.argv[1:]
    open(args[args.index("-f") + 1], "w").write({csv!r})
"""


def test_the_status_line_shows_the_auto_adjust_attempt_while_it_runs(tmp_path: Path) -> None:
    """Minutes of auto-adjust retries are not silent: the attempt, its window, its time and perf_analyzer's last
    line reach `context.status` about once a second (a live view shows it)."""
    script = fake_pa(tmp_path, SLOW_RETRY_SCRIPT.format(calls=str(tmp_path / "calls"), csv=REAL_CSV))
    gen = generator(tmp_path, perf_analyzer_path=script, perf_analyzer_max_auto_adjusts=5)
    shown: list[str] = []
    gen.context.status = shown.append
    gen.measure(run_config(), TRITON)
    assert shown[0] == "perf_analyzer: started"
    retry = [line for line in shown if line.startswith("perf_analyzer auto-adjust 1/5 --measurement-request-count=100")]
    assert retry[0].endswith(": started")
    assert any("— Request concurrency: 1" in line and " s " in line for line in retry[1:]), shown


def test_unstable_measurement_gives_up_after_max_auto_adjusts(tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    script = fake_pa(tmp_path, STABILITY_SCRIPT.format(calls=str(calls), fails=99, csv=REAL_CSV))
    gen = generator(tmp_path, perf_analyzer_path=script, perf_analyzer_max_auto_adjusts=1)
    with pytest.raises(
        LoadGeneratorError,
        match="exit 2. after 1 auto-adjust.s.: Failed to obtain stable measurement within 10",
    ):
        gen.measure(run_config(), TRITON)
    assert len(calls.read_text().splitlines()) == 2
    assert (tmp_path / "export" / "perf_analyzer_error.log").read_text().count("Command:") == 1


def test_success_without_csv_rows_is_an_error(tmp_path: Path) -> None:
    script = fake_pa(
        tmp_path,
        'import sys\nargs = sys.argv\nopen(args[args.index("-f") + 1], "w").write("Concurrency\\n")\n',
    )
    with pytest.raises(LoadGeneratorError, match="wrote no measurement"):
        generator(tmp_path, perf_analyzer_path=script).measure(run_config(), TRITON)


def test_interrupt_kills_the_child_and_reraises(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = fake_pa(
        tmp_path,
        f"""
        import os, time
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
    """,
    )
    ticks = iter(range(1000))

    def clock() -> float:
        tick = next(ticks)
        if tick > 0 and pidfile.exists():
            raise KeyboardInterrupt
        return float(tick) * 0.0

    with pytest.raises(KeyboardInterrupt):
        pal.run_process([script], tmp_path / "out.txt", timeout=60, cpu_limit=0, clock=clock)
    assert gone(int(pidfile.read_text()))



@pytest.fixture
def mlserver(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A real MLServer 1.7.1 serving the quick-start add_sub model (contrib launcher), gRPC client protocol."""
    if reason := real_server_available():
        pytest.skip(reason)
    launcher_mod = pytest.importorskip("modelyzer_mlserver.launcher")
    from modelyzer.plugins.codecs.pbtxt import PbtxtCodec

    model_dir = QUICK_START / "model_repository" / "add_sub"
    variant = ConfigVariant(
        "add_sub", PbtxtCodec().read(model_dir / "config.pbtxt"), name="add_sub_config_default"
    )
    config = make_config(client_protocol="grpc", triton_launch_mode="mlserver", client_max_retries=60,
                         triton_server_path=None, triton_output_path=None, collect_cpu_metrics=True,
                         monitoring_interval=0.5, perf_analyzer_path="perf_analyzer")  # fmt: skip
    launcher = launcher_mod.MLServerLauncher(config, make_context(tmp_path))
    try:
        launcher.start()
        rc = RunConfig(
            "add_sub", variant, LoadSpec(concurrency=2), perf_analyzer_flags={"stability-percentage": 100}
        )
        yield config, (launcher.ensure(variant, model_dir, rc), rc)
    finally:
        launcher.stop()


@needs_pa
@pytest.mark.integration
def test_real_perf_analyzer_and_collectors_against_mlserver(
    tmp_path: Path, mlserver: tuple[Any, Any]
) -> None:
    from modelyzer.plugins.collectors.cpu import CpuCollector
    from modelyzer.plugins.collectors.triton_metrics import TritonMetricsCollector

    config, (endpoints, rc) = mlserver
    context = make_context(tmp_path)
    gen = pal.PerfAnalyzerLoadGenerator(config, context)
    collectors = [CpuCollector(config, context), TritonMetricsCollector(config, context)]
    assert not any(
        t.startswith("--collect-metrics") for t in gen.command(rc, endpoints)
    )  # not a Triton server
    for collector in collectors:
        collector.start(endpoints)
    values = {m.tag: m.value for m in gen.measure(rc, endpoints)}
    cpu, gpu = (collector.stop() for collector in collectors)
    assert values["perf_throughput"] > 0 and values["perf_server_compute_infer"] > 0
    assert {m.tag for m in cpu} == {"cpu_used_ram", "cpu_available_ram"} and gpu == []
    assert 0 < gen.last_window_seconds < 120


# --- precision: runs pooled until the confidence intervals are within measurement_precision ------------------
POOLING_SCRIPT = """
    import json, sys
    calls = {calls!r}
    with open(calls, "a") as fh:
        fh.write(json.dumps(sys.argv[1:]) + "\\n")
    n = sum(1 for _ in open(calls))
    passes = {passes!r}
    for i, (tput, p99) in enumerate(passes[min(n, len(passes)) - 1], 1):
        print(f"  Pass [{{i}}] throughput: {{tput}} infer/sec. p99 latency: {{p99}} usec")
    args = sys.argv[1:]
    open(args[args.index("-f") + 1], "w").write({csv!r}.replace("2618.4", str(1000.0 * n)))
"""
NOISY = [(1000, 1000), (1500, 1500), (700, 700)]
STEADY = [(1000, 1000), (1001, 1001), (999, 999)]


def test_runs_are_pooled_until_the_intervals_meet_the_target(tmp_path: Path) -> None:
    """Noisy first run → a second run; the pooled windows' intervals are within ±30% → stop. Stored: the mean of
    the two runs' CSV values, 6 windows, the half-widths, the CV, target met; nothing is counted as a retry."""
    calls = tmp_path / "calls.jsonl"
    script = fake_pa(tmp_path, POOLING_SCRIPT.format(calls=str(calls), passes=[NOISY, STEADY], csv=REAL_CSV))
    gen = generator(tmp_path, perf_analyzer_path=script, measurement_precision=30.0)
    shown: list[str] = []
    gen.context.status = shown.append
    values = {m.tag: m.value for m in gen.measure(run_config(LoadSpec(concurrency=4)), TRITON) if m.gpu_uuid is None}
    assert shown[0] == "perf_analyzer: started"  # the live line: each run, with the precision reached so far
    assert any(line.startswith("perf_analyzer run 2: started — 3 windows, throughput ±") and "(target ±30%)" in line
               for line in shown), shown
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(argvs) == 2 and gen.last_attempts == 2 and gen.last_retry_seconds == 0.0
    assert all("--stability-percentage=10000" in a and "--percentile=99" in a and "-v" in a for a in argvs)
    assert values["perf_throughput"] == 1500.0  # (1000 + 2000) / 2: each run's CSV, averaged
    assert values["measurement_windows"] == 6 and values["precision_target_met"] == 1.0
    assert 25 < values["perf_throughput_ci"] <= 30 and 0 < values["perf_latency_p99_ci"] <= 30
    assert values["perf_throughput_cv"] > 0
    assert gen.last_precision is not None and len(gen.last_precision.windows) == 6


def test_pooling_stops_at_the_time_cap_and_keeps_the_measurement(tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    script = fake_pa(tmp_path, POOLING_SCRIPT.format(calls=str(calls), passes=[NOISY], csv=REAL_CSV))
    gen = generator(tmp_path, perf_analyzer_path=script, measurement_precision=1.0, measurement_max_seconds=0.0)
    values = {m.tag: m.value for m in gen.measure(run_config(), TRITON)}
    assert len(calls.read_text().splitlines()) == 1
    assert values["measurement_windows"] == 3 and values["precision_target_met"] == 0.0
    assert values["perf_throughput_ci"] > 1.0


def test_perf_analyzers_own_stability_when_asked(tmp_path: Path) -> None:
    """`measurement_precision: 0`, or `stability-percentage` in the flags: one run, perf_analyzer's own rule (no
    forced threshold, no --percentile); its last three windows still give the interval."""
    for flags, values in (({}, {"measurement_precision": 0.0}), ({"stability-percentage": 20}, {})):
        calls = tmp_path / "calls.jsonl"
        calls.unlink(missing_ok=True)
        script = fake_pa(tmp_path, POOLING_SCRIPT.format(calls=str(calls), passes=[NOISY], csv=REAL_CSV))
        gen = generator(tmp_path, perf_analyzer_path=script, **values)
        stored = {m.tag: m.value for m in gen.measure(run_config(flags=flags), TRITON)}
        (argv,) = [json.loads(line) for line in calls.read_text().splitlines()]
        assert "--stability-percentage=10000" not in argv and not any(a.startswith("--percentile") for a in argv)
        assert stored["measurement_windows"] == 3 and "precision_target_met" not in stored


@needs_pa
@pytest.mark.integration
def test_real_perf_analyzer_pools_windows_to_the_target(tmp_path: Path, stub_port: int) -> None:
    """The real binary in precision mode: every run's three windows are parsed and pooled; the measurement stops
    when precise or at the cap, and says which."""
    gen = generator(tmp_path, perf_analyzer_path="perf_analyzer", client_protocol="http", triton_launch_mode="remote",
                    measurement_precision=10.0, measurement_max_seconds=8.0)
    endpoints = Endpoints(http=f"127.0.0.1:{stub_port}", protocol="http", model_name="add_sub",
                          loadgen_flags={"input-tensor-format": "json", "output-tensor-format": "json"})
    values = {m.tag: m.value for m in gen.measure(run_config(LoadSpec(concurrency=2)), endpoints)}
    windows = values["measurement_windows"]
    assert windows >= 3 and windows % 3 == 0 and windows == 3 * gen.last_attempts
    assert values["perf_throughput"] > 0 and values["perf_throughput_cv"] >= 0
    met = values["precision_target_met"] == 1.0
    assert met == (values["perf_throughput_ci"] <= 10.0 and values["perf_latency_p99_ci"] <= 10.0)
    assert met or gen.last_window_seconds >= 4.0  # not met: it went on until about the cap
