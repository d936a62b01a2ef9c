"""A pip-installed plugin's own config keys (`register_settings`): set in YAML, overridden by a `--kebab-case`
flag, parsed with one-line errors, and read by the plugin as a typed view (`config.settings(...)`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyzer.kernel.store import Store
from tests.third_party.conftest import Cli, error_lines, toy_repository
from tests.third_party.test_profile import load_module

YAML = """\
model_repository: repo
profile_models: toy_add
triton_launch_mode: toy
load_generator: synthetic
export_path: out
output_model_repository_path: out/omr
override_output_model_repository: true
run_config_search_disable: true
concurrency: [1]
skip_summary_reports: true
skip_detailed_reports: true
"""


def throughput_ratio(cwd: Path, demo_site: Path) -> float:
    synthetic = load_module(demo_site / "mz_demo" / "loadgen.py").synthetic_metrics
    store = Store.open_existing(cwd / "out" / "results.db")
    try:
        (result,) = store.results("toy_add")
    finally:
        store.close()
    return float(result.measurement.values()["perf_throughput"] / synthetic(result.run_config)["perf_throughput"])


@pytest.mark.parametrize(("yaml_value", "flag", "ratio"), [(None, None, 1.0), ("2", None, 2.0), ("2", "3.5", 3.5)])
def test_a_plugin_key_from_yaml_and_flag_reaches_the_plugin(cli: Cli, demo_site: Path, tmp_path: Path,
                                                            yaml_value: str | None, flag: str | None,
                                                            ratio: float) -> None:
    toy_repository(tmp_path)
    (tmp_path / "profile.yaml").write_text(YAML + (f"synthetic_speedup: {yaml_value}\n" if yaml_value else ""))
    proc = cli("profile", "-f", "profile.yaml", *(["--synthetic-speedup", flag] if flag else []), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert throughput_ratio(tmp_path, demo_site) == pytest.approx(ratio)


def test_a_bad_plugin_value_is_one_line_naming_the_key(cli: Cli, tmp_path: Path) -> None:
    toy_repository(tmp_path)
    (tmp_path / "profile.yaml").write_text(YAML + "synthetic_speedup: fast\n")
    proc = cli("profile", "-f", "profile.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert line.startswith("error: synthetic_speedup: must be a number") and "profile.yaml" in line
    assert not (tmp_path / "out" / "results.db").exists()


def test_the_flag_is_in_help_and_goes_with_its_plugin(cli: Cli, tmp_path: Path) -> None:
    proc = cli("profile", "--help", cwd=tmp_path)
    assert "--synthetic-speedup" in proc.stdout and "Multiplies the synthetic throughput." in proc.stdout
    blocked = cli("profile", "--help", cwd=tmp_path, MODELYZER_DISABLE_PLUGINS="demo_loadgen")
    assert "--synthetic-speedup" not in blocked.stdout
