"""`modelyzer export`: the CSV tables, summary reports and best configs of any results DB, no config file needed.

Reads `--results-db` read-only (a profile's, one from another machine, or one `import-ma-checkpoint` wrote) and
rebuilds the config of its latest run: every model in the DB with the spec stored for it (objectives,
constraints, weighting, CPU-only), plus the stored keys the ranking and the reports read (`RESTORED`: model type,
ranker, output files and fields, plots, the load generator and plugins' keys such as the LLM workloads). An
imported Model Analyzer checkpoint stores no settings: its models are ranked with the defaults, as Model
Analyzer's were. Flags on the command line win over the stored values. Then it ranks with the configured ranker
and runs the reporters that serve `export` (the `csv`, `summary` and `best_config` reporters, and any plugin's
that declares it), the same code a profile runs at its end. Bad input is one line with exit code 2.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import click

from modelyzer.frontends.cli.options import option_for
from modelyzer.kernel import registry
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.config_fields import FIELDS
from modelyzer.kernel.config_settings import plugin_fields
from modelyzer.kernel.config_values import Where
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.profile import Profile
from modelyzer.kernel.store import NotAResultsDB, Run, Store

log = logging.getLogger("modelyzer")

#: the stored keys export takes over from the profile (when its user set them): what ranking and reports read.
#: Objectives, constraints and weighting come resolved in each model's stored spec; where to write, and which
#: reports, export decides itself; search, server and measurement keys play no part in a report.
RESTORED = ("model_type", "always_report_gpu_metrics", "ranker", "num_configs_per_model", "filename_model_inference",
            "filename_model_gpu", "filename_server_only", "inference_output_fields", "gpu_output_fields",
            "server_output_fields", "plots", "load_generator")
#: `-o` formats → the reporters they stand for; every other reporter serving `export` (best_config) always runs
FORMATS = {"csv": ("csv",), "pdf": ("summary",)}


def open_results_db(path: Path) -> Store:
    """The results DB at `path`, read-only; a one-line ConfigError when it is missing, not one, or has no run."""
    if not path.is_file():
        raise ConfigError(f"results_db: {path} does not exist; profile into it (`modelyzer profile --results-db "
                          f"{path}`) or import a Model Analyzer checkpoint (`modelyzer import-ma-checkpoint CKPT "
                          f"--results-db {path}`) first")
    try:
        store = Store.open_readonly(path)
    except NotAResultsDB as err:
        raise ConfigError(f"results_db: {path} is not a modelyzer results DB ({err})") from None
    if store.latest_run() is None:
        store.close()
        raise ConfigError(f"results_db: {path} holds no run; profile into it or import a Model Analyzer checkpoint "
                          "into it first")
    return store


def stored_values(run: Run) -> dict[str, Any]:
    """The `RESTORED` keys and plugins' keys the run's user set, as stored; one that no longer parses (a plugin
    missing here, a value this version refuses) is left out with a warning."""
    fields = {**FIELDS, **plugin_fields()}
    wanted = [*RESTORED, *plugin_fields()]
    values: dict[str, Any] = {}
    for key in run.config.get("user_set", []):
        if key not in wanted or key not in fields or run.config.get(key) is None:
            continue
        try:
            fields[key].parse(run.config[key], Where(key, f" (stored with run {run.id})"))
        except ConfigError as err:
            log.warning("%s; using the default", err)
            continue
        values[key] = run.config[key]
    plugin = values.get("load_generator")
    if plugin is not None and plugin not in registry.registry("load_generators"):
        log.warning("load_generator: %r (stored with run %d) is not installed here; using the default", plugin, run.id)
        del values["load_generator"]
    return values


def default_export_path(run: Run) -> Path:
    """The run's export path when it is a directory here, else the current directory."""
    stored = run.config.get("export_path")
    if isinstance(stored, str) and stored and Path(stored).is_dir():
        return Path(stored)
    if stored:
        log.info("export path %s of run %d is not a directory here; writing under %s", stored, run.id, Path.cwd())
    return Path.cwd()


def chosen_models(store: Store, wanted: tuple[str, ...]) -> list[str]:
    """`wanted` (each `--model`, comma lists too; models profiled concurrently are named as the DB holds them,
    "a,b") in the DB, or every model the DB holds."""
    known = store.models()
    names = [n for value in wanted
             for n in ([value.strip()] if value.strip() in known else [x.strip() for x in value.split(",")]) if n]
    for name in names:
        if name not in known:
            raise ConfigError(f"--model: unknown model {name!r}; the results DB has {', '.join(known) or 'none'}")
    return list(dict.fromkeys(names)) or known


def export_config(store: Store, run: Run, models: list[str], cli: dict[str, Any]) -> ProfileConfig:
    """The latest run's config: its restored keys under the command line's, the models with their stored specs."""
    if "export_path" not in cli:
        cli = {**cli, "export_path": str(default_export_path(run))}
    config = config_from_dict(stored_values(run), {**cli, "results_db": store.path}, check_paths=False,
                              command="export")
    return attrs.evolve(config, models=tuple(store.model_spec(name) for name in models))


def reporter_names(formats: str) -> list[str]:
    """The reporters to run for the `-o` formats: those of the formats given and every format-less one."""
    chosen = [f.strip().lower() for f in formats.split(",") if f.strip()]
    for fmt in chosen:
        if fmt not in FORMATS:
            raise ConfigError(f"output_formats: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    left_out = {name for fmt, names in FORMATS.items() if fmt not in chosen for name in names}
    return [name for name in registry.registry("reporters") if name not in left_out]


@click.command("export")
@click.option("--results-db", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Results DB to export (a profile's, or one `import-ma-checkpoint` wrote); opened read-only.")
@click.option("-e", "--export-path", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory for results/, reports/, plots/ and best_configs/ (created if missing). "
              "[default: the latest run's export path when it exists here, else $CWD]")
@click.option("-o", "--output-formats", default="csv,pdf", show_default=True, metavar="LIST",
              help="What to write: csv (metrics-model-inference.csv, metrics-model-gpu.csv, "
              "metrics-server-only.csv), pdf (each model's summary report, HTML and PDF); best_config.json is "
              "written with either.")
@click.option("--model", "models", multiple=True, metavar="NAME",
              help="Export only this model (repeat it, or a comma list; models profiled concurrently as one "
              "name, e.g. a,b). [default: every model in the DB]")
@option_for(FIELDS["ranker"])
@option_for(FIELDS["num_configs_per_model"])
@option_for(FIELDS["always_report_gpu_metrics"])
def export(results_db: Path, export_path: Path | None, output_formats: str, models: tuple[str, ...],
           **overrides: Any) -> None:
    """Write the CSV tables, each model's summary report and best_config.json of a results DB.

    Settings are the latest run's (its models' objectives and constraints, ranker, output fields, ...); the
    options here win over them.
    """
    names = reporter_names(output_formats)
    cli = {key: value for key, value in overrides.items() if value is not None}
    if export_path is not None:
        cli["export_path"] = str(export_path)
    store = open_results_db(results_db)
    try:
        run = store.latest_run()
        assert run is not None  # open_results_db refuses a DB without one
        config = export_config(store, run, chosen_models(store, models), cli)
        profile = Profile(config, store=store)
        paths = profile.write_reports(run.id, profile.rank(), command="export", names=names)
    finally:
        store.close()
    for path in paths:
        click.echo(f"wrote {path}")


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(export)
