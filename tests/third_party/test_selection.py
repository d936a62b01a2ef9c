"""How the kernel finds pip-installed plugins: listed with their versions, allow- and block-listed by entry-point
name, chosen by capability where the user names none (an LLM load generator, the codec of the model files), and a
one-line error (exit 2) when what the YAML asks for is blocked or missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.store import Store
from tests.third_party.conftest import Cli, error_lines, toy_repository

DEMO_PLUGINS = {
    "demo_launcher": ["launcher:toy"],
    "demo_loadgen": ["load generator:synthetic", "settings:synthetic"],
    "demo_collector": ["metric collector:toy_clock"],
    "demo_ranker": ["ranker:lowest_p99"],
    "demo_reporter": ["reporter:markdown"],
    "demo_executor": ["executor:pool"],
    "demo_search": ["search strategy:ladder"],
    "demo_codec": ["model-config codec:json"],
    "demo_command": ["command:demo-best"],
    "demo_events": [],
}

LLM_YAML = """\
model_repository: repo
profile_models: chat
model_type: LLM
triton_launch_mode: toy
run_config_search_mode: ladder
run_config_search_max_concurrency: 64
export_path: out
output_model_repository_path: out/omr
override_output_model_repository: true
skip_summary_reports: true
skip_detailed_reports: true
"""
# a model directory with config.json, not config.pbtxt: only the json codec plugin can read it
CHAT_CONFIG = {"name": "chat", "backend": "python", "max_batch_size": 0,
               "instance_group": [{"count": 1, "kind": "KIND_CPU"}]}


def plugins_json(cli: Cli, cwd: Path, **env: str) -> dict[str, dict[str, object]]:
    proc = cli("plugins", "--json", cwd=cwd, **env)
    assert proc.returncode == 0, proc.stderr
    return {row["name"]: row for row in json.loads(proc.stdout)}


def test_plugins_json_lists_installed_plugins_with_versions(cli: Cli, tmp_path: Path) -> None:
    rows = plugins_json(cli, tmp_path)
    for name, provides in DEMO_PLUGINS.items():
        assert rows[name]["version"] == "0.3.1", rows[name]
        assert rows[name]["provides"] == provides
    assert rows["demo_command"]["hooks"] == ["register_commands"]
    assert rows["demo_events"]["hooks"] == ["measurement_recorded", "run_finished", "run_started"]
    assert rows["demo_llm"]["version"] == "0.0.2"
    assert rows["demo_llm"]["provides"] == ["load generator:token_echo"]
    # the capabilities the kernel chooses by are listed too
    capabilities: Any = rows["demo_llm"]["capabilities"]
    assert capabilities["load generator:token_echo"]["model_types"] == ["llm"]
    assert rows["demo_launcher"]["capabilities"]["launcher:toy"]["serves_metrics"] is False  # type: ignore[index]


def test_allow_and_block_lists_use_entry_point_names(cli: Cli, tmp_path: Path) -> None:
    allowed = plugins_json(cli, tmp_path, MODELYZER_LOAD_PLUGINS="demo_ranker,demo_llm")
    assert {n for n in allowed if not n.startswith("modelyzer.")} == {"demo_ranker", "demo_llm"}
    blocked = plugins_json(cli, tmp_path, MODELYZER_DISABLE_PLUGINS="demo_ranker")
    assert "demo_ranker" not in blocked and "demo_loadgen" in blocked


def test_yaml_naming_a_blocked_plugin_is_a_one_line_error(cli: Cli, tmp_path: Path) -> None:
    toy_repository(tmp_path)
    (tmp_path / "p.yaml").write_text("model_repository: repo\nprofile_models: toy_add\ntriton_launch_mode: toy\n"
                                     "load_generator: synthetic\nranker: lowest_p99\nexport_path: out\n")
    proc = cli("profile", "-f", "p.yaml", cwd=tmp_path, MODELYZER_DISABLE_PLUGINS="demo_ranker")
    assert proc.returncode == 2
    assert error_lines(proc.stderr) == ["error: ranker: unknown ranker 'lowest_p99'; choose one of weighted"]
    assert not (tmp_path / "out" / "results.db").exists()  # refused before anything ran


@pytest.fixture
def chat_repository(tmp_path: Path) -> Path:
    model = tmp_path / "repo" / "chat"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(CHAT_CONFIG))
    (tmp_path / "llm.yaml").write_text(LLM_YAML)
    return tmp_path


#: the built-in LLM load generators (genai-perf, AIPerf), blocked where a test needs the third party's alone
BUILT_IN_LLM = "modelyzer.plugins.loadgen.genai_perf,modelyzer.plugins.loadgen.aiperf"


def test_llm_model_type_picks_the_load_generator_serving_llm(cli: Cli, chat_repository: Path) -> None:
    """No `load_generator` key: the one declaring `model_types = {"llm"}` is used (the built-in LLM ones blocked). The model's config.json is read
    and written by the json codec (chosen by the file the model directory holds); the ladder strategy doubles the
    concurrency until throughput stops growing."""
    proc = cli("profile", "-f", "llm.yaml", cwd=chat_repository, MODELYZER_DISABLE_PLUGINS=BUILT_IN_LLM)
    assert proc.returncode == 0, proc.stderr
    store = Store.open_existing(chat_repository / "out" / "results.db")
    try:
        results = store.results("chat")
    finally:
        store.close()
    # token_echo's throughput is flat from concurrency 4 on: 1, 2, 4 grow, 8 does not, so the ladder stops there
    assert [r.run_config.load.concurrency for r in results] == [1, 2, 4, 8]
    assert all(r.measurement.values()["output_token_throughput"] > 0 for r in results)
    assert {r.run_config.variant.config["backend"] for r in results} == {"python"}
    written = chat_repository / "out" / "omr" / "chat_config_default" / "config.json"
    assert json.loads(written.read_text())["backend"] == "python"
    # the markdown reporter is disabled with the summary reports (its enabled())
    assert not (chat_repository / "out" / "reports" / "ranking.md").exists()


def test_llm_with_no_load_generator_serving_it_is_a_one_line_error(cli: Cli, chat_repository: Path) -> None:
    proc = cli("profile", "-f", "llm.yaml", cwd=chat_repository, MODELYZER_DISABLE_PLUGINS=f"demo_llm,{BUILT_IN_LLM}")
    assert proc.returncode == 2, proc.stderr
    [line] = error_lines(proc.stderr)
    assert line.startswith("error: model_type: no installed load generator serves 'LLM' models")
    assert "install a load-generator plugin" in line
