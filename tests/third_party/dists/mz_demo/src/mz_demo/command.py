"""The `demo-best` command: `modelyzer demo-best RESULTS_DB [--tag TAG]` prints each model's best measurement
by one metric, read through the results store (no SQL outside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from modelyzer.kernel import metrics
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.store import Store


@click.command("demo-best")
@click.argument("results_db", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tag", default="perf_latency_p99", show_default=True, help="Metric to pick the best by.")
def demo_best(results_db: Path, tag: str) -> None:
    """Print each model's best measurement by one metric."""
    info = metrics.get(tag)
    sign = info.direction if info else metrics.HIGHER
    store = Store.open_existing(results_db)
    try:
        for model in store.models():
            measured = [r for r in store.results(model) if r.measurement.ok and tag in r.measurement.values()]
            if not measured:
                click.echo(f"{model}: no {tag} measured")
                continue
            best = max(measured, key=lambda r: sign * r.measurement.values()[tag])
            click.echo(f"{model}: {best.run_config.describe()} {tag}={best.measurement.values()[tag]:g}")
    finally:
        store.close()


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(demo_best)
