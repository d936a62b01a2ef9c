"""Config loading: the generated CLI options and the generated config reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from modelyzer.frontends.cli.options import (
    collect_cli_overrides,
    config_from_cli,
    profile_options,
    report_options,
)
from modelyzer.kernel.config_fields import FIELDS
from modelyzer.kernel.config_reference import render_config_reference
from modelyzer.kernel.config_settings import plugin_fields
from modelyzer.kernel.config_whitelists import PERF_ANALYZER_FLAGS
from tests.kernel.config_support import ROOT, write

# ---- CLI options ------------------------------------------------------------------------------------


@click.command()
@profile_options
def _profile(**kwargs: Any) -> None:
    click.echo(json.dumps(collect_cli_overrides(kwargs), sort_keys=True))


@click.command()
@report_options
def _report(**kwargs: Any) -> None:
    click.echo(json.dumps(collect_cli_overrides(kwargs), sort_keys=True))


def test_profile_options_cover_every_cli_field() -> None:
    params = {p.name: p for p in _profile.params}
    fields = {**FIELDS, **plugin_fields()}  # the kernel's keys and the installed plugins' settings
    expected = {f.name for f in fields.values() if f.cli and "profile" in f.commands}
    assert set(params) == expected
    assert not {f.name for f in fields.values() if f.yaml_only} & set(params)
    for name in params:
        assert params[name].help, name


def test_short_flags_and_overrides() -> None:
    result = CliRunner().invoke(_profile, ["-f", "c.yaml", "-m", "/r", "-e", "/e", "-s", "/s", "-i", "0.5",
                                           "-d", "4", "-b", "1,2", "-c", "8", "-r", "3", "--profile-models", "a",
                                           "--collect-cpu-metrics", "--no-early-exit-enable"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "config_file": "c.yaml", "model_repository": "/r", "export_path": "/e", "checkpoint_directory": "/s",
        "monitoring_interval": "0.5", "duration_seconds": "4", "batch_sizes": "1,2", "concurrency": "8",
        "client_max_retries": "3", "profile_models": "a", "collect_cpu_metrics": True, "early_exit_enable": False,
    }
    assert CliRunner().invoke(_profile, []).output.strip() == "{}"


def test_report_options() -> None:
    result = CliRunner().invoke(_report, ["-n", "a_config_0", "-o", "pdf", "-e", "/e"])
    assert json.loads(result.output) == {"report_model_configs": "a_config_0", "output_formats": "pdf",
                                         "export_path": "/e"}


def test_help_shows_defaults() -> None:
    text = CliRunner().invoke(_profile, ["--help"]).output
    assert "--run-config-search-max-concurrency" in text and "1024" in text
    assert "--collect-cpu-metrics / --no-collect-cpu-metrics" in text


def test_config_from_cli(tmp_path: Path) -> None:
    path = write(tmp_path, {"profile_models": "a", "concurrency": [1, 2]})
    config = config_from_cli({"config_file": str(path), "concurrency": "4", "quiet": True}, check_paths=False)
    assert config.concurrency == [4] and config.models[0].concurrency == (4,)


# ---- docs -------------------------------------------------------------------------------------------


def test_reference_lists_every_key_and_flag() -> None:
    text = render_config_reference()
    for field in FIELDS.values():
        assert f"`{field.name}`" in text
        if field.cli:
            assert f"`{field.flag}`" in text
    for flag in PERF_ANALYZER_FLAGS:
        assert f"`{flag}`" in text


def test_docs_config_md_is_up_to_date() -> None:
    path = ROOT / "docs" / "config.md"
    assert path.read_text() == render_config_reference(), (
        "docs/config.md is stale; regenerate with: python -c 'from modelyzer.kernel.config_reference import "
        "render_config_reference as r; open(\"docs/config.md\", \"w\").write(r())'")

