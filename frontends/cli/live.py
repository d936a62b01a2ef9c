"""What the CLI shows while it works and when it is done, with `rich`: a live progress bar and the results table.

`LiveProgress` keeps the kernel's one line per measurement (count, result, ETA — also what a log file or a
non-terminal stderr gets) and, on a terminal, adds a live bar with the count, elapsed time and ETA, and a status
line with the step in progress (e.g. perf_analyzer's current pass while it auto-adjusts its window), which
otherwise would show nothing for minutes. `results_table` renders each model's ranked configs.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import TextIO

import attrs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from modelyzer.kernel import metrics
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.models import ConfigVariant, Measurement, RunConfig
from modelyzer.kernel.progress import Progress
from modelyzer.kernel.ranking import TIE_BREAK_RULE, Tie, measurement_values


class LiveProgress(Progress):
    """The kernel's progress lines, plus a live bar and status line on a terminal (see the module docstring)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, live: bool | None = None) -> None:
        """`live`: draw the bar (default: when the stream is a terminal)."""
        super().__init__(stream, quiet)
        self.console = Console(file=self.stream, highlight=False, markup=False, soft_wrap=True,
                               force_terminal=live)
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        if not quiet and self.console.is_terminal:
            self._bar = RichProgress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), TextColumn("{task.fields[status]}"),
                console=self.console, transient=True,
            )
            self._task = self._bar.add_task("measuring", total=None, eta="?", status="")
            self._bar.start()

    def _write(self, line: str) -> None:
        if not self.quiet:
            self.console.print(line)

    def _update(self, status: str | None = None) -> None:
        if self._bar is not None and self._task is not None:
            total = self.done + self.remaining
            if status is None:
                self._bar.update(self._task, completed=self.done, total=total or None, eta=self.eta())
            else:
                self._bar.update(self._task, completed=self.done, total=total or None, eta=self.eta(), status=status)

    def expect(self, remaining: int) -> None:
        super().expect(remaining)
        self._update()

    def measured(self, rc: RunConfig, measurement: Measurement) -> None:
        super().measured(rc, measurement)
        self._update(status="")

    def status(self, line: str) -> None:
        self._update(status=line)

    def close(self) -> None:
        """Stop the live display (idempotent)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


#: token columns (header, tag, digits), shown when a load generator measured them (LLMs)
TOKEN_COLUMNS = (("tokens/s", "output_token_throughput", 1), ("TTFT p99 ms", "time_to_first_token_p99", 1),
                 ("ITL p99 ms", "inter_token_latency_p99", 2))


LOAD_NAMES = {"concurrency": "concurrency", "request_rate": "rate", "request_intervals": "intervals"}


def knob_cells(run_config: RunConfig, cpu_only: bool, cpu_models: Collection[str] = ()) -> tuple[str, ...]:
    """instances, max batch, dynamic batching and load of a RunConfig; a concurrent group's per model, in
    parentheses as Model Analyzer's summary shows them ("(2:CPU, 1:CPU)"), its load as "concurrency 4,8"."""
    members = run_config.members
    composing = run_config.variant.composing
    if composing and not members:  # an ensemble's / BLS model's knobs are its composing models' (Model Analyzer's)
        cells = [knob_cells(attrs.evolve(run_config, model=c.model, variant=c), cpu_only) for c in composing]
        return (*("(" + ", ".join(c[i] for c in cells) + ")" for i in range(3)), run_config.load.describe())
    if not members:
        v = run_config.variant
        return (v.instance_group_str(cpu_only), str(v.max_batch_size), "yes" if v.dynamic_batching else "no",
                run_config.load.describe())
    cells = [knob_cells(m, cpu_only or m.model in cpu_models) for m in members]
    joined = tuple("(" + ", ".join(c[i] for c in cells) + ")" for i in range(3))
    mode = LOAD_NAMES[members[0].load.mode]
    batches = ",".join(str(m.load.batch_size) for m in members)
    load = f"{mode} " + ",".join(str(m.load.value) for m in members)
    return (*joined, f"batch {batches}, {load}" if any(m.load.batch_size != 1 for m in members) else load)


def accelerator_cell(variant: ConfigVariant) -> str:
    """The execution accelerators a variant's config names (`optimization.execution_accelerators`, Triton's
    field), each as its name and parameter values ("openvino THROUGHPUT"); "none" without any."""
    found = (variant.config.get("optimization") or {}).get("execution_accelerators") or {}
    entries = [*(found.get("cpu_execution_accelerator") or []), *(found.get("gpu_execution_accelerator") or [])]
    return ", ".join(" ".join([str(e.get("name", "")), *map(str, (e.get("parameters") or {}).values())])
                     for e in entries if isinstance(e, dict)) or "none"


def tie_line(model: str, tie: Tie) -> str:
    """The sentence under a model's table when its leaders are statistically tied."""
    names = ", ".join(tie.names)
    return (f"{model}: {names} are statistically tied within ±{tie.within:.1f}% (95% confidence); {tie.names[0]} is "
            f"ranked first by the tie-break rule: {TIE_BREAK_RULE}")


def results_table(ranking: dict[str, list[RankedConfig]], cpu_only: Collection[str] = (),
                  ties: dict[str, Tie] | None = None) -> list[Table]:
    """One table per model: rank, config, its knobs (and its accelerator when a variant names one), the load of
    its best measurement, throughput (with its ±CI when measured), p99 (and tokens/s, TTFT p99, ITL p99 when
    measured), passing. The statistically tied leaders (`ties`) are ranked "1≈", "2≈", …, and the table's caption
    says so."""
    tables = []
    for model, ranked in ranking.items():
        tie = (ties or {}).get(model)
        table = Table(title=f"Top configurations for {model}:", title_justify="left", box=None, pad_edge=False,
                      caption=tie_line(model, tie) if tie else None, caption_justify="left")
        measured = {m.tag for rc in ranked for m in rc.best.measurement.metrics}
        ci_tag = metrics.ci_tag("perf_throughput")
        with_ci = ci_tag in measured
        tokens = [c for c in TOKEN_COLUMNS if c[1] in measured]
        latency = "request p99 ms" if tokens else "p99 ms"
        accelerators = [accelerator_cell(rc.best.run_config.variant) for rc in ranked]
        shown = any(a != "none" for a in accelerators)
        for header, justify in (("rank", "left"), ("config", "left"), ("instances", "left"), ("max batch", "left"),
                                ("dyn.batch", "left"), *((("accelerator", "left"),) if shown else ()),
                                ("load", "left"), ("infer/s", "right"), *((("±%", "right"),) if with_ci else ()),
                                (latency, "right"),
                                *((c[0], "right") for c in tokens), ("ok", "left")):
            table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for i, (rc, accelerator) in enumerate(zip(ranked, accelerators, strict=True), 1):
            v = rc.best.run_config.variant
            vals = measurement_values(rc.best.measurement)
            knobs = knob_cells(rc.best.run_config, model in cpu_only, cpu_only)
            if shown:
                knobs = (*knobs[:3], accelerator, *knobs[3:])
            rank = f"{i}≈" if tie and v.name in tie.names else str(i)
            ci = (f"{vals[ci_tag]:.1f}" if ci_tag in vals else "–",) if with_ci else ()
            table.add_row(rank, v.name, *knobs, f"{vals.get('perf_throughput', 0.0):.1f}", *ci,
                          f"{vals.get('perf_latency_p99', 0.0):.2f}",
                          *(f"{vals[tag]:.{digits}f}" if tag in vals else "–" for _, tag, digits in tokens),
                          "yes" if rc.passing else "NO")
        tables.append(table)
    return tables


def print_results(ranking: dict[str, list[RankedConfig]], stream: TextIO | None = None,
                  cpu_only: Collection[str] = (), ties: dict[str, Tie] | None = None) -> None:
    """The ranked tables; `cpu_only`: the models profiled on the CPU (a config without instance groups runs there);
    `ties`: the models whose leaders are statistically tied."""
    console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True, width=200)
    for i, table in enumerate(results_table(ranking, cpu_only, ties)):
        if i:
            console.print()
        console.print(table)
