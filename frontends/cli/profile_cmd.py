"""`modelyzer profile`: search, measure, rank, write CSVs; resumable, Ctrl-C safe."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click

from modelyzer.kernel import session
from modelyzer.kernel.config import load_profile_config
from modelyzer.kernel.engine import Engine
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.progress import Progress, format_duration
from modelyzer.kernel.ranking import measurement_values

from .agent_cmd import agents_executor
from .options import collect_cli_overrides, profile_options


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def top_table(ranking: dict[str, list[RankedConfig]]) -> str:
    lines = []
    header = f"{'rank':<5}{'config':<28}{'instances':<11}{'max batch':<10}{'dyn.batch':<10}{'load':<18}{'infer/s':>10}{'p99 ms':>9}  ok"
    for model, ranked in ranking.items():
        lines.append(f"Top configurations for {model}:")
        lines.append(header)
        for i, rc in enumerate(ranked, 1):
            v = rc.best.run_config.variant
            vals = measurement_values(rc.best.measurement)
            lines.append(
                f"{i:<5}{v.name:<28}{v.instance_group_str():<11}{v.max_batch_size:<10}"
                f"{'yes' if v.dynamic_batching else 'no':<10}{rc.best.run_config.load.describe():<18}"
                f"{vals.get('perf_throughput', 0.0):>10.1f}{vals.get('perf_latency_p99', 0.0):>9.2f}  "
                f"{'yes' if rc.passing else 'NO'}"
            )
    return "\n".join(lines)


@click.command()
@profile_options
@click.option("-q", "--quiet", is_flag=True, help="Only print the final table.")
def profile(quiet: bool, **kwargs: Any) -> None:
    """Search model-config variants, measure each under load, rank them and write results."""
    config_file = kwargs.pop("config_file", None)
    config = load_profile_config(config_file, collect_cli_overrides(kwargs))
    session.check_plugin_names(config)
    context, store = session.prepare(config)
    agents = agents_executor(config, context, store)  # with --agents: started, agents' GPUs in context
    config = session.resolve_cpu_only(config, context)
    executor = agents or session.make_executor(config, context)
    progress = Progress(quiet=quiet)
    engine = Engine(config, store, executor, session.make_codec(), session.strategy_factory(config), progress)
    previous = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        summary = engine.run()
    except KeyboardInterrupt:
        kept = store.counts()["measurements"]
        click.echo(
            f"\ninterrupted: server stopped, {kept} measurements kept in {config.results_db}; "
            "run the same command again to resume",
            err=True,
        )
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if summary.skipped:
        click.echo(f"resumed: skipped {summary.skipped} RunConfigs already measured in {config.results_db}", err=True)
    ranking = session.rank_models(store, config)
    paths = session.write_reports(store, summary.run_id, config, ranking)
    click.echo(top_table(ranking))
    duty = summary.window_seconds / summary.wall_seconds if summary.wall_seconds else 0.0
    click.echo(
        f"\n{summary.measured} measured, {summary.skipped} skipped, {summary.failed} failed in "
        f"{format_duration(summary.wall_seconds)} (measurement windows {duty:.0%} of wall time; "
        f"server starts {summary.counters.get('server_starts', 0)}, model loads {summary.counters.get('model_loads', 0)})"
    )
    click.echo(f"results DB: {Path(config.results_db)}")
    for p in paths:
        click.echo(f"wrote {p}")
