"""`modelyzer profile`: search, measure, rank, write CSVs and reports; resumable, Ctrl-C safe."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click

from modelyzer.frontends.cli.check_cmd import run_check
from modelyzer.frontends.cli.live import LiveProgress, print_results
from modelyzer.frontends.cli.options import collect_cli_overrides, profile_options
from modelyzer.kernel.config import load_profile_config
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.profile import Profile
from modelyzer.kernel.progress import format_duration


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.command()
@profile_options
@click.option("-q", "--quiet", is_flag=True, help="Only print the final table.")
@click.option("--dry-run", is_flag=True, help="Check everything without measuring and print the plan (as "
              "`modelyzer check`): no server started, no results DB written.")
def profile(quiet: bool, dry_run: bool, **kwargs: Any) -> None:
    """Search model-config variants, measure each under load, rank them and write results."""
    config_file = kwargs.pop("config_file", None)
    if dry_run:
        run_check(config_file, kwargs)
        return
    config = load_profile_config(config_file, collect_cli_overrides(kwargs))
    progress = LiveProgress(quiet=quiet)
    run = Profile(config, progress)
    previous = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        try:
            run.prepare()  # with agents: waits for them (Ctrl-C stops waiting)
        except KeyboardInterrupt:
            click.echo("\ninterrupted while waiting for agents", err=True)
            sys.exit(130)
        failed_before = len(run.store.failed_keys())
        if failed_before:  # said at resume, before anything is measured (and again at the end, for this run)
            n = failed_before
            click.echo(f"{n} RunConfig{'s' if n != 1 else ''} in {config.results_db} failed in earlier runs; "
                       + ("measuring them again (--retry-failed)" if config.retry_failed
                          else "rerun with --retry-failed to measure them again"), err=True)
        try:
            summary = run.run()
        except KeyboardInterrupt:
            progress.close()
            kept = run.store.counts()["measurements"]
            click.echo(
                f"\ninterrupted: server stopped, {kept} measurements kept in {config.results_db}; "
                "run the same command again to resume",
                err=True,
            )
            sys.exit(130)
    finally:
        progress.close()
        signal.signal(signal.SIGTERM, previous)
    if summary.skipped:
        click.echo(f"resumed: skipped {summary.skipped} RunConfigs already measured in {config.results_db}", err=True)
    if summary.skipped_failed:
        n = summary.skipped_failed
        click.echo(f"{n} RunConfig{'s' if n != 1 else ''} failed in earlier runs; rerun with --retry-failed to measure "
                   f"{'them' if n != 1 else 'it'} again", err=True)
    if summary.retried:
        click.echo(f"retried {summary.retried} RunConfigs that failed in earlier runs", err=True)
    ranking = run.rank()
    paths = run.write_reports(summary.run_id, ranking)
    ties = run.ties()
    run.close()
    print_results(ranking, cpu_only={spec.name for spec in run.config.models if spec.cpu_only}, ties=ties)
    click.echo(
        f"\n{summary.measured} measured, {summary.skipped} skipped, {summary.failed} failed in "
        f"{format_duration(summary.wall_seconds)} ({summary.duty_text()}; "
        f"server starts {summary.counters.get('server_starts', 0)}, model loads {summary.counters.get('model_loads', 0)})"
    )
    click.echo(f"results DB: {Path(config.results_db)}")
    for p in paths:
        click.echo(f"wrote {p}")


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(profile)
