"""One real `modelyzer profile` built from pip-installed plugins only, each chosen in the YAML:

`triton_launch_mode: toy` (launcher), `load_generator: synthetic`, `ranker: lowest_p99`, `executor: pool`, plus a
collector, a reporter and event hooks that apply by themselves. Each test checks one plugin's mark on the real
outputs: the printed table, the results DB (read through `Store`), the files written.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from modelyzer.kernel import ranking
from modelyzer.kernel.models import Objective, Result
from modelyzer.kernel.store import Store
from tests.third_party.conftest import Cli, toy_repository

PROFILE_YAML = """\
model_repository: repo
profile_models: toy_add
triton_launch_mode: toy
load_generator: synthetic
ranker: lowest_p99
executor: pool
export_path: out
output_model_repository_path: out/omr
override_output_model_repository: true
run_config_search_max_instance_count: 2
run_config_search_max_model_batch_size: 2
run_config_search_max_concurrency: 2
num_configs_per_model: 3
skip_detailed_reports: true
"""
# brute search: the default config + {1, 2} instances x max batch {1, 2}, each at concurrency 1 and 2
MEASUREMENTS = 10


class Profiled:
    def __init__(self, cwd: Path, proc: subprocess.CompletedProcess[str]) -> None:
        self.cwd, self.proc = cwd, proc
        self.out = cwd / "out"
        store = Store.open_existing(self.out / "results.db")
        try:
            self.results: list[Result] = store.results("toy_add")
            run = store.latest_run()
            assert run is not None
            self.run = run
        finally:
            store.close()

    def table(self) -> list[list[str]]:
        """Rows of the printed results table (rank, config, …), in printed order."""
        return [line.split() for line in self.proc.stdout.splitlines() if line[:1].isdigit() and "toy_add" in line]


@pytest.fixture(scope="module")
def profiled(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Profiled:
    cwd = tmp_path_factory.mktemp("profile")
    toy_repository(cwd)
    (cwd / "profile.yaml").write_text(PROFILE_YAML)
    proc = cli("profile", "-f", "profile.yaml", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return Profiled(cwd, proc)


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"installed_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def p99(result: Result) -> float:
    return result.measurement.values()["perf_latency_p99"]


def lowest_p99_first(results: list[Result]) -> list[str]:
    best: dict[str, float] = {}
    for r in results:
        best[r.run_config.variant.name] = min(best.get(r.run_config.variant.name, float("inf")), p99(r))
    return sorted(best, key=lambda name: (best[name], name))


def test_every_run_config_measured_and_stored(profiled: Profiled) -> None:
    assert len(profiled.results) == MEASUREMENTS
    assert all(r.measurement.ok for r in profiled.results)
    assert f"{MEASUREMENTS} measured, 0 skipped, 0 failed" in profiled.proc.stdout


def test_launcher_chosen_by_launch_mode(profiled: Profiled) -> None:
    assert profiled.run.config["triton_launch_mode"] == "toy"
    assert (profiled.run.server_starts, profiled.run.model_loads) >= (2, 5)  # one "server" per pool slot
    # writes_full_variant_dirs() is False: the output repository holds only each variant's model config
    variant_dirs = [d for d in (profiled.out / "omr").iterdir() if d.is_dir()]
    assert len(variant_dirs) == 5
    assert all(sorted(p.name for p in d.iterdir()) == ["config.pbtxt"] for d in variant_dirs)


def test_load_generator_chosen_by_key(profiled: Profiled, demo_site: Path) -> None:
    synthetic = load_module(demo_site / "mz_demo" / "loadgen.py").synthetic_metrics
    for result in profiled.results:
        expected = synthetic(result.run_config)
        measured = result.measurement.values()
        assert {tag: measured[tag] for tag in expected} == pytest.approx(expected), result.run_config.describe()


def test_collector_metric_in_results_db(profiled: Profiled) -> None:
    windows = [r.measurement.values().get("toy_window_ms") for r in profiled.results]
    assert all(w is not None and w >= 0.0 for w in windows), windows


def test_ranker_orders_table_and_best_config(profiled: Profiled) -> None:
    expected = lowest_p99_first(profiled.results)
    rows = profiled.table()
    assert [row[1] for row in rows] == expected[:3] + (["toy_add_config_default"] if "toy_add_config_default"
                                                         not in expected[:3] else [])
    printed_p99 = [float(row[-2]) for row in rows[:3]]
    assert printed_p99 == sorted(printed_p99)
    best = json.loads((profiled.out / "best_configs" / "toy_add" / "best_config.json").read_text())
    assert best["variant"] == expected[0]
    # the choice mattered: the built-in weighted ranker (throughput objective) puts another config first
    weighted = ranking.rank(profiled.results, (Objective("perf_throughput", 10.0),), (), top_n=1)
    assert weighted[0].variant_name != expected[0]


def test_executor_chosen_by_key_ran_every_measurement(profiled: Profiled) -> None:
    assert profiled.run.config["executor"] == "pool"
    assert {r.measurement.agent for r in profiled.results} == {"pool/0", "pool/1"}


def test_reporter_writes_its_file_in_ranking_order(profiled: Profiled) -> None:
    text = (profiled.out / "reports" / "ranking.md").read_text()
    assert "(lowest_p99)" in text
    listed = [line.split("|")[2].strip() for line in text.splitlines() if line.startswith("| ") and "toy_add" in line]
    assert listed == [row[1] for row in profiled.table()]
    assert f"wrote {profiled.out / 'reports' / 'ranking.md'}" in profiled.proc.stdout


def test_event_hooks_journal(profiled: Profiled) -> None:
    lines = (profiled.out / "demo-events.log").read_text().splitlines()
    assert lines[0] == f"run_started {profiled.run.id}"
    assert lines[-1] == f"run_finished {profiled.run.id} finished"
    recorded = [line for line in lines if line.startswith("measurement_recorded ")]
    assert len(recorded) == MEASUREMENTS and all(line.endswith(" ok") for line in recorded)


def test_command_reads_the_results_db(profiled: Profiled, cli: Cli) -> None:
    proc = cli("demo-best", "out/results.db", cwd=profiled.cwd)
    assert proc.returncode == 0, proc.stderr
    best = min(profiled.results, key=p99)
    assert proc.stdout.strip() == f"toy_add: {best.run_config.describe()} perf_latency_p99={p99(best):g}"
    proc = cli("demo-best", "out/results.db", "--tag", "perf_throughput", cwd=profiled.cwd)
    top = max(profiled.results, key=lambda r: r.measurement.values()["perf_throughput"])
    assert proc.stdout.strip().startswith(f"toy_add: {top.run_config.describe()} perf_throughput=")


def test_report_command_reruns_reporter_with_another_ranker(profiled: Profiled, cli: Cli, tmp_path: Path) -> None:
    """`modelyzer report --ranker weighted`, run from another directory, re-ranks the same DB: the reporter (one of
    the `report` command's too) writes ranking.md again, in the built-in ranker's order; the deployable config keeps
    the models' file format (config.pbtxt) although the json codec plugin is installed too."""
    proc = cli("report", "-e", str(tmp_path / "again"), "--results-db", str(profiled.out / "results.db"),
               "-n", "toy_add_config_default", "--ranker", "weighted", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "again" / "reports" / "ranking.md").read_text()
    assert "(weighted)" in text
    weighted = ranking.rank(profiled.results, (Objective("perf_throughput", 10.0),), (), top_n=3)
    listed = [line.split("|")[2].strip() for line in text.splitlines() if line.startswith("| ") and "toy_add" in line]
    assert listed[: len(weighted)] == [r.variant_name for r in weighted]
    best = tmp_path / "again" / "best_configs" / "toy_add"
    assert sorted(p.name for p in best.iterdir()) == ["best_config.json", "config.pbtxt"]
