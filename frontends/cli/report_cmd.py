"""`modelyzer report`: detailed reports of named configs from a results DB, with their models' summaries.

Reads `results_db` (default `<export_path>/results.db`; a profile's, or one imported from a Model Analyzer
checkpoint) and writes, for the configs named by `-n/--report-model-configs` (or the YAML mapping with
per-config `plots`), the detailed reports — plus the summary report and best_config.json of their models, so
a profile that was interrupted before writing its reports gets them too (`--skip-summary-reports`: only the
detailed reports, as Model Analyzer's `report`). Objectives and constraints are the
config file's when it names the model, else those stored with the profile. An unknown config name is a
one-line error listing the known ones (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import click

from modelyzer.frontends.cli.options import config_from_cli, report_options
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.models import ModelSpec
from modelyzer.kernel.profile import Profile
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters.data import stored_spec
from modelyzer.plugins.reporters.detailed import report_targets
from modelyzer.plugins.reporters.plots import parse_plots


def known_configs(store: Store) -> dict[str, str]:
    """Every stored config name → its model, in store order."""
    return {v.name: v.model for model in store.models() for v in store.variants(model)}


def report_specs(store: Store, config: ProfileConfig, models: list[str]) -> tuple[ModelSpec, ...]:
    """Stored specs of `models`, with the config file's objectives and constraints when it names the model."""
    specs = []
    for name in models:
        spec = stored_spec(store, name)
        own = next((m for m in config.models if m.name == name), None)
        if own is not None:
            spec = attrs.evolve(spec, objectives=own.objectives, constraints=own.constraints)
        specs.append(spec)
    return tuple(specs)


def stored_num_configs(store: Store, default: int) -> int:
    """`num_configs_per_model` of the latest profile (the summary then shows what the profile's showed)."""
    latest = store.latest_run()
    value = latest.num_configs_per_model if latest is not None else None
    return value if value is not None else default


@click.command()
@report_options
def report(**kwargs: Any) -> None:
    """Write detailed reports of the named model configs (and their models' summaries) from the results DB."""
    config = config_from_cli(kwargs, check_paths=False, command="report")
    db = Path(config.results_db)
    if not db.is_file():
        ckpt = Path(config.checkpoint_directory)
        hint = (f"or import the Model Analyzer checkpoint in {ckpt} with `modelyzer import-ma-checkpoint {ckpt} "
                f"--results-db {db}`" if ckpt.is_dir() and any(ckpt.glob("*.ckpt")) else
                "or import a Model Analyzer checkpoint with `modelyzer import-ma-checkpoint`")
        raise ConfigError(f"results_db: {db} does not exist; run `modelyzer profile` with this export path first, "
                          f"{hint}")
    targets = report_targets(config)
    parse_plots(config.plots)
    store = Store(db)
    try:
        known = known_configs(store)
        unknown = [name for name in targets if name not in known]
        if unknown:
            raise ConfigError(f"report_model_configs: unknown model config {unknown[0]!r}; known: "
                              f"{', '.join(known) or 'none (the results DB is empty)'}")
        models = list(dict.fromkeys(known[name] for name in targets))
        changes: dict[str, Any] = {"models": report_specs(store, config, models)}
        if "num_configs_per_model" not in config.user_set:
            changes["num_configs_per_model"] = stored_num_configs(store, config.num_configs_per_model)
        config = attrs.evolve(config, **changes)
        run = Profile(config, store=store)
        ranking = run.rank()
        latest = store.latest_run()
        run_id = latest.id if latest is not None else 0
        paths = run.write_reports(run_id, ranking, command="report")
    finally:
        store.close()
    for path in paths:
        click.echo(f"wrote {path}")


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(report)
