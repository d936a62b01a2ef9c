"""The ``perf_analyzer`` load generator: runs NVIDIA's perf_analyzer binary for one RunConfig.

Arguments are built as Model Analyzer builds them (``perf_analyzer_args``), the ``--verbose-csv`` report is
parsed by ``perf_analyzer_csv``. Robustness follows MA:

- perf_analyzer runs in its own process group (new session) with stdout+stderr going to a file; the whole group
  is killed when it runs longer than ``perf_analyzer_timeout`` s, when its CPU use (psutil, sampled every second)
  exceeds ``perf_analyzer_cpu_util`` %, and when we are interrupted (Ctrl-C: kill, then re-raise).
- **Precision** (``measurement_precision`` > 0, the default ±5%): each perf_analyzer run keeps its first three
  windows (a stability threshold every window passes, ``--percentile=99``, ``-v`` so every window's throughput and
  p99 are printed); runs are repeated and their windows pooled until the 95% confidence intervals of throughput and
  p99 are both within the target or ``measurement_max_seconds`` is spent (``precision``: the stopping rule). The
  stored metrics are the mean of the runs' CSV values, plus the windows, the CI half-widths and the CV. Nothing
  measured is thrown away. With ``measurement_precision: 0``, or when ``perf_analyzer_flags`` sets
  ``stability-percentage`` / ``max-trials``, perf_analyzer decides stability itself, Model Analyzer's way:
- "Failed to obtain stable measurement" / "Please use a larger time window" → retry with a larger window
  (``--measurement-request-count`` 100, then +50; time_windows: ``--measurement-interval`` 6000 ms, then +1000)
  up to ``perf_analyzer_max_auto_adjusts`` times; the windows of the failed attempts are lost to perf_analyzer,
  and their time is counted as retries (``last_retry_seconds``).
- Any failure raises ``LoadGeneratorError`` whose message carries perf_analyzer's own error line; command and
  full output are appended to ``<export_path>/perf_analyzer_error.log``. With ``perf_output`` the output of every
  run is appended to ``perf_output_path`` (or logged when no path is set).

The binary is ``perf_analyzer_path``; when that is the default ``perf_analyzer`` and not on PATH, the project's
``.tools/bin/perf_analyzer`` (under the source tree, then under the current directory) is used.
``last_window_seconds`` holds the wall time of the perf_analyzer runs whose windows the last measurement kept
(their windows plus start-up, typically a few ms each); ``last_retry_seconds`` that of the runs thrown away
(unstable, failed or killed); ``last_attempts`` how many runs it took; ``last_precision`` its windows.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import attrs
import psutil

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LoadGeneratorError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import LoadGenerator, RunContext
from modelyzer.kernel.models import Endpoints, Metric, RunConfig
from modelyzer.plugins.loadgen.perf_analyzer_args import (
    DEFAULT_MEASUREMENT_INTERVAL_MS,
    adjust_for_stability,
    build_flags,
    measurement_key,
    model_name_for,
    render,
)
from modelyzer.plugins.loadgen.perf_analyzer_csv import GPU_COLUMNS, NON_GPU_COLUMNS, parse_csv
from modelyzer.plugins.loadgen.precision import Precision, Window, mean_metrics, parse_windows
from modelyzer.plugins.setup_tools import setup_tool

UNSTABLE_MARKERS = ("Failed to obtain stable measurement", "Please use a larger time window")
WINDOW_ARGS = ("measurement-request-count", "measurement-interval")
DEFAULT_BINARY = "perf_analyzer"
ERROR_LOG_NAME = "perf_analyzer_error.log"
POLL_SECONDS = 0.1
CPU_SAMPLE_SECONDS = 1.0
KILL_GRACE_SECONDS = 2.0
TOGETHER_STABILITY_PERCENT = 10000  # max/min of three windows within 100×: the first three always pass
POOLED_STABILITY_PERCENT = TOGETHER_STABILITY_PERCENT  # precision mode: each run's first three windows are kept
KEPT_WINDOWS = 3  # perf_analyzer's result is the mean of its last three windows
#: perf_analyzer flags with which the user keeps the stability decision with perf_analyzer
PA_STABILITY_ARGS = ("stability-percentage", "max-trials")


def find_perf_analyzer(path: str | None) -> str:
    """Resolve ``perf_analyzer_path`` to an executable, or raise LoadGeneratorError naming the key."""
    name = path or DEFAULT_BINARY
    if os.sep in name:
        if os.access(name, os.X_OK) and Path(name).is_file():
            return name
        raise LoadGeneratorError(
            f"perf_analyzer_path {name!r} is not an executable file; fix perf_analyzer_path"
        )
    found = shutil.which(name)
    if found:
        return found
    installed = setup_tool(DEFAULT_BINARY) if name == DEFAULT_BINARY else None
    if installed:
        return installed
    raise LoadGeneratorError(
        f"perf_analyzer binary {name!r} not found on PATH (nor in .tools/bin); install it or set perf_analyzer_path"
    )


def error_line(output: str) -> str:
    """perf_analyzer's own error line: the last ``error…`` line, else the first ``failed`` line, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.lower().startswith("error"):
            return line
    for line in lines:
        if "failed" in line.lower() or "unable" in line.lower():
            return line
    return lines[-1] if lines else "(no output)"


def is_unstable(output: str) -> bool:
    return any(marker in output for marker in UNSTABLE_MARKERS)


@attrs.define
class RunOutcome:
    """One perf_analyzer process: exit code (None when we killed it), its output, wall time, kill reason."""

    returncode: int | None
    output: str
    seconds: float
    killed: str = ""


def kill_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` s; reap the child."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the leader may be gone while group members linger
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def last_line(output_path: Path) -> str:
    """The last non-empty line perf_analyzer has written so far ('' when none yet)."""
    try:
        with open(output_path, "rb") as fh:
            fh.seek(max(0, output_path.stat().st_size - 4096))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_process(
    argv: list[str],
    output_path: Path,
    timeout: float,
    cpu_limit: float,
    env: dict[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_tick: Callable[[float, str], None] | None = None,
) -> RunOutcome:
    """Run ``argv`` in its own session, watching time and CPU; always leaves no process behind.

    ``on_tick`` receives, about once a second, the seconds since start and the last line of output so far.
    """
    start = clock()
    with open(output_path, "wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        killed = ""
        watcher: psutil.Process | None = None
        try:
            watcher = psutil.Process(proc.pid)
            watcher.cpu_percent(None)
        except psutil.Error:
            watcher = None
        last_sample = start
        try:
            while True:
                try:
                    proc.wait(timeout=POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = clock()
                if now - start > timeout:
                    killed = f"did not finish within perf_analyzer_timeout={timeout:g} s"
                    break
                if now - last_sample >= CPU_SAMPLE_SECONDS and on_tick is not None:
                    on_tick(now - start, last_line(output_path))
                if watcher is not None and now - last_sample >= CPU_SAMPLE_SECONDS:
                    last_sample = now
                    try:
                        util = watcher.cpu_percent(None)
                    except psutil.Error:
                        util = 0.0
                    if cpu_limit > 0 and util > cpu_limit:
                        killed = f"used {util:.0f}% CPU, above perf_analyzer_cpu_util={cpu_limit:g}%"
                        break
        except BaseException:  # KeyboardInterrupt, SystemExit: the child dies with us
            kill_group(proc)
            raise
        if killed:
            kill_group(proc)
    seconds = clock() - start
    output = output_path.read_text(errors="replace")
    return RunOutcome(None if killed else proc.returncode, output, seconds, killed)


class PerfAnalyzerLoadGenerator(LoadGenerator):
    """Measures one RunConfig with the real perf_analyzer; see the module docstring."""

    model_types = frozenset({"generic"})
    produces = tuple(dict.fromkeys(tag for tag, _, _ in (*NON_GPU_COLUMNS.values(), *GPU_COLUMNS.values())))

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.last_window_seconds = 0.0
        self.last_retry_seconds = 0.0
        self.last_attempts = 0
        self.last_precision: Precision | None = None

    # --- command lines -------------------------------------------------------------------------------
    def _binary(self) -> str:
        return find_perf_analyzer(self.config.perf_analyzer_path)

    def check(self) -> None:
        """perf_analyzer_path names an executable (found before any server starts)."""
        self._binary()

    def flags(
        self, run_config: RunConfig, endpoints: Endpoints, csv_path: str | Path | None = None
    ) -> dict[str, Any]:
        return build_flags(
            run_config,
            endpoints,
            self.config,
            csv_path=csv_path,
            model_repository=self.context.output_model_repository,
        )

    def command(self, run_config: RunConfig, endpoints: Endpoints) -> list[str]:
        """The command with MA's ``-f <model>-results.csv`` (``measure`` writes the CSV to a temp dir instead)."""
        try:
            binary = self._binary()
        except LoadGeneratorError:
            binary = self.config.perf_analyzer_path
        return [binary, *render(self.flags(run_config, endpoints))]

    def measurement_key(self, run_config: RunConfig) -> str:
        return measurement_key(run_config, self.config)

    def together(self, run_config: RunConfig) -> RunConfig:
        """Fixed windows for a concurrent group: time windows of one length (the user's ``measurement-interval``
        or perf_analyzer's 5 s) and a stability threshold every window passes, so each model's perf_analyzer
        measures exactly the minimum three windows and they line up; keys the user set win."""
        fixed = {"measurement-mode": "time_windows", "measurement-interval": DEFAULT_MEASUREMENT_INTERVAL_MS,
                 "stability-percentage": TOGETHER_STABILITY_PERCENT}
        return attrs.evolve(run_config, perf_analyzer_flags={**fixed, **run_config.perf_analyzer_flags})

    # --- measuring -----------------------------------------------------------------------------------
    def _env(self, binary: str, endpoints: Endpoints) -> dict[str, str]:
        env = {**os.environ, **endpoints.loadgen_env}  # what the server needs (an embedded server's libraries)
        lib = Path(binary).resolve().parent.parent / "lib"
        if lib.is_dir():
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                p for p in (str(lib), env.get("LD_LIBRARY_PATH", "")) if p
            )
        return env

    def precise(self, run_config: RunConfig) -> bool:
        """Whether this RunConfig is measured to ``measurement_precision`` (runs pooled until precise) rather than
        by perf_analyzer's own stability check: a target is set and the user's flags leave stability to us."""
        return bool(self.config.measurement_precision) and not any(
            key in run_config.perf_analyzer_flags for key in PA_STABILITY_ARGS)

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        """One measurement: perf_analyzer runs (see the module docstring) until precise, capped, or failed."""
        self.last_window_seconds, self.last_retry_seconds, self.last_attempts = 0.0, 0.0, 0
        adjusts = 0
        binary = self._binary()
        timeout = float(self.config.perf_analyzer_timeout)
        cpu_limit = float(self.config.perf_analyzer_cpu_util)
        max_adjusts = self.config.perf_analyzer_max_auto_adjusts
        target = float(self.config.measurement_precision) if self.precise(run_config) else 0.0
        cap = float(self.config.measurement_max_seconds)
        export = Path(self.context.export_path)
        export.mkdir(parents=True, exist_ok=True)
        model = model_name_for(run_config, endpoints)
        windows: list[Window] = []
        sizes: list[int] = []  # windows per kept run
        latency_tag = "perf_latency_p99"
        runs: list[list[Metric]] = []
        kept = spent = 0.0
        with tempfile.TemporaryDirectory(dir=export, prefix=".perf_analyzer-") as tmp:
            flags = self.flags(run_config, endpoints, csv_path=Path(tmp) / f"{model}-results.csv")
            flags = {**flags, "verbose": True}  # one line per window
            if target:  # every run keeps its first three windows (p99 per window): the pooling decides when to stop
                flags.update({"stability-percentage": POOLED_STABILITY_PERCENT, "percentile": flags.get("percentile", 99)})
            env = self._env(binary, endpoints)
            attempt = 0
            while True:
                attempt += 1
                argv = [binary, *render(flags)]
                self.context.log.debug("running %s", shlex.join(argv))
                window = " ".join(render({k: flags[k] for k in WINDOW_ARGS if k in flags}))
                label = ("perf_analyzer" + (f" run {len(runs) + 1}" if runs else "")
                         + (f" auto-adjust {adjusts}/{max_adjusts} {window}" if adjusts else ""))
                shown = Precision(tuple(windows), latency_tag, tuple(sizes)).describe(target) if windows else ""
                self.context.status(f"{label}: started" + (f" — {shown}" if shown else ""))
                outcome = run_process(argv, Path(tmp) / f"output-{attempt}.txt", timeout, cpu_limit, env,
                                      on_tick=functools.partial(self._show_progress, label))
                spent += outcome.seconds
                self._perf_output(argv, outcome.output)
                if outcome.killed:
                    self.last_retry_seconds += outcome.seconds
                    self._fail(run_config, argv, outcome.output, f"perf_analyzer {outcome.killed} and was killed")
                if outcome.returncode != 0:
                    self.last_retry_seconds += outcome.seconds
                    if is_unstable(outcome.output) and adjusts < max_adjusts:
                        adjusts += 1
                        flags = adjust_for_stability(flags)
                        self.context.log.info(
                            "%s: unstable measurement, retrying with %s (%d/%d)", run_config.describe(),
                            " ".join(render({k: flags[k] for k in WINDOW_ARGS if k in flags})), adjusts,
                            max_adjusts)
                        continue
                    retried = f" after {adjusts} auto-adjust(s)" if adjusts else ""
                    reason = f"perf_analyzer failed (exit {outcome.returncode}){retried}: {error_line(outcome.output)}"
                    self._fail(run_config, argv, outcome.output, reason)
                csv_path = Path(str(flags["latency-report-file"]))
                text = csv_path.read_text(errors="replace") if csv_path.is_file() else ""
                measured = parse_csv(text, run_config.load)
                if not measured:
                    self.last_retry_seconds += outcome.seconds
                    self._fail(run_config, argv, outcome.output, f"perf_analyzer wrote no measurement to {csv_path.name}")
                csv_path.unlink()
                passes, latency_tag = parse_windows(outcome.output)
                kept_passes = passes[-KEPT_WINDOWS:]  # perf_analyzer reports its last three windows
                windows += kept_passes
                sizes.append(len(kept_passes))
                runs.append(measured)
                kept += outcome.seconds
                precision = Precision(tuple(windows), latency_tag, tuple(sizes))
                if not target or precision.met(target) or spent + outcome.seconds > cap or not passes:
                    break
        self.last_window_seconds, self.last_attempts = kept, attempt
        self.last_precision = Precision(tuple(windows), latency_tag, tuple(sizes))
        if target and not self.last_precision.met(target):
            self.context.log.info("%s: precision target not met within measurement_max_seconds=%g: %s",
                                  run_config.describe(), cap, self.last_precision.describe(target))
        return mean_metrics(runs) + (self.last_precision.metrics(target or None) if windows else [])

    def _show_progress(self, label: str, seconds: float, line: str) -> None:
        """The status line while perf_analyzer runs: which attempt, for how long, and what it last said."""
        self.context.status(f"{label}: {seconds:.0f} s" + (f" — {line[:80]}" if line else ""))

    def _perf_output(self, argv: list[str], output: str) -> None:
        if not self.config.perf_output:
            return
        path = self.config.perf_output_path
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"$ {shlex.join(argv)}\n{output}\n")
        else:
            self.context.log.info("perf_analyzer output:\n%s", output)

    def _fail(self, run_config: RunConfig, argv: list[str], output: str, reason: str) -> NoReturn:
        command = shlex.join(argv)
        message = f"{run_config.describe()}: {reason}"
        try:
            log_path = self.context.export_path / ERROR_LOG_NAME
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(f"Command:\n{command}\n\nError: {message}\n\n{output.rstrip()}\n\n{'-' * 80}\n")
        except OSError as exc:  # pragma: no cover - unwritable export path
            self.context.log.warning("could not write perf_analyzer_error.log: %s", exc)
        raise LoadGeneratorError(message=message, command=command, output=output)


@hookimpl
def register_load_generators(register: Any) -> None:
    register("perf_analyzer", PerfAnalyzerLoadGenerator)
