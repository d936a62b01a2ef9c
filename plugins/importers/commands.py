"""`modelyzer import-ma-checkpoint`: a Model Analyzer checkpoint into a results DB (see `ma_checkpoint.py`).

A plugin: the command is added through the `register_commands` hook like any third party's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from modelyzer.kernel import assembly
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.models import MEMBERS_KEY
from modelyzer.kernel.store import Store
from modelyzer.plugins.importers.ma_checkpoint import ImportSummary, parse_checkpoint, store_checkpoint


def _model_configs(store: Store, models: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """(model, default config) of each model; a concurrent group's models each (its `_members`)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for model in models:
        config = store.base_config(model)
        members = config.get(MEMBERS_KEY)
        out += [(str(m["model"]), dict(m["config"])) for m in members] if members else [(model, config)]
    return out


def write_model_repository(store: Store, models: tuple[str, ...], directory: Path) -> list[Path]:
    """Write `<directory>/<model>/config.pbtxt` (the default config) of each model (of each model of a concurrent
    group), for a replay profile.

    An existing file is left alone when it holds the same config, and refused when it differs.
    """
    codec = assembly.codec()
    written = []
    for model, config in _model_configs(store, models):
        path = directory / model / codec.filename
        if path.exists():
            if codec.read(path) != config:
                raise ConfigError(f"--model-repository: {path} exists with a different config; choose another directory")
            continue
        codec.write(config, path)
        written.append(path)
    return written


def describe(summary: ImportSummary, checkpoint: Path, results_db: Path) -> str:
    if summary.already_imported:
        return f"{checkpoint} is already imported into {results_db} (run {summary.run_id}); nothing changed"
    models = ", ".join(summary.models)
    text = (
        f"imported {summary.measurements} measurements of {summary.variants} variants (model {models}, "
        f"{summary.gpus} GPU{'s' if summary.gpus != 1 else ''}) from {checkpoint} into {results_db} as run "
        f"{summary.run_id}"
    )
    if summary.existing:
        text += f"; {summary.existing} were already in the DB"
    return text


@click.command("import-ma-checkpoint")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--results-db",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Results DB to import into (created if missing; importing the same checkpoint again changes nothing).",
)
@click.option(
    "--model-repository",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    show_default=True,
    help="Also write <dir>/<model>/config.pbtxt with each model's default config, so the DB can be replayed "
    "(profile --triton-launch-mode replay --replay-results-db DB -m <dir>).",
)
def import_ma_checkpoint(checkpoint: Path, results_db: Path, model_repository: Path | None) -> None:
    """Import a Model Analyzer checkpoint (a <N>.ckpt file, or a checkpoint directory: its latest file).

    Variants keep Model Analyzer's names and configs; every measurement is stored with its metrics (GPU
    metrics per GPU), plus server-only metrics and GPUs, as one run with status `imported`.
    """
    data = parse_checkpoint(checkpoint)  # a bad file fails here, before the DB is created
    store = Store(results_db)
    try:
        summary = store_checkpoint(data, store)
        click.echo(describe(summary, checkpoint, results_db))
        if model_repository is not None:
            for path in write_model_repository(store, summary.models, model_repository):
                click.echo(f"wrote {path}")
    finally:
        store.close()


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(import_ma_checkpoint)
