"""End to end on real parts: `modelyzer profile` on MLServer 1.7.1 with the real perf_analyzer, 127.0.0.1.

Small search (3 variants × concurrency 1, 2) so the suite stays fast; one test SIGKILLs a profile half-way
and checks that re-running resumes without re-measuring and without duplicate rows.
"""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import QUICK_START, modelyzer_cmd, real_server_available

pytestmark = [pytest.mark.integration]

SMALL = [
    "--run-config-search-max-instance-count", "1",
    "--run-config-search-max-model-batch-size", "2",
    "--run-config-search-max-concurrency", "2",
]


@pytest.fixture(autouse=True)
def _need_real_server() -> None:
    reason = real_server_available()
    if reason:
        pytest.skip(reason)


def profile_cmd(export: Path, *extra: str) -> list[str]:
    return [
        *modelyzer_cmd(), "profile", "-f", str(QUICK_START / "config.yaml"),
        "--model-repository", str(QUICK_START / "model_repository"),
        "--export-path", str(export),
        "--output-model-repository-path", str(export / "output_model_repository"),
        *SMALL, *extra,
    ]


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=10)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def test_profile_measures_ranks_and_writes_csvs(tmp_path: Path) -> None:
    export = tmp_path / "out"
    proc = subprocess.run(profile_cmd(export), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Top configurations for add_sub" in proc.stdout
    assert f"results DB: {export / 'results.db'}" in proc.stdout
    # progress line per measurement with count and ETA
    assert "[1/" in proc.stderr and "ETA" in proc.stderr
    db = export / "results.db"
    assert count(db, "select count(*) from variants") == 3
    assert count(db, "select count(*) from measurements where status = 'ok'") == 6
    with (export / "results" / "metrics-model-inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    assert {r["Model Config Path"] for r in rows} == {"add_sub_config_default", "add_sub_config_0", "add_sub_config_1"}
    for r in rows:
        assert float(r["Throughput (infer/sec)"]) > 0 and float(r["p99 Latency (ms)"]) > 0
        assert r["Instance Group"] == "1:CPU"
    assert not (export / "results" / "metrics-model-gpu.csv").exists()  # CPU-only: no GPU rows
    # the variants were written to the output model repository
    assert (export / "output_model_repository" / "add_sub_config_1" / "config.pbtxt").exists()
    # no server left behind
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if "mlserver" in " ".join(p.info["cmdline"] or []) and str(export) in " ".join(p.info["cmdline"] or [])]
    assert not leftovers


def test_sigkill_half_way_then_resume(tmp_path: Path) -> None:
    export = tmp_path / "out"
    db = export / "results.db"
    proc = subprocess.Popen(profile_cmd(export), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while count(db, "select count(*) from measurements") < 3:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = count(db, "select count(*) from measurements")
    assert 3 <= kept < 6
    again = subprocess.run(profile_cmd(export), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"skipped {kept} RunConfigs already measured" in again.stderr
    assert count(db, "select count(*) from measurements") == 6
    assert count(db, "select count(*) from (select run_config_key from measurements group by run_config_key having count(*) > 1)") == 0
    assert count(db, "select count(*) from runs") == 2


def test_ctrl_c_stops_server_and_keeps_results(tmp_path: Path) -> None:
    export = tmp_path / "out"
    db = export / "results.db"
    proc = subprocess.Popen(profile_cmd(export), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while count(db, "select count(*) from measurements") < 1:
        assert proc.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.2)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, [p.cmdline() for p in alive]
    assert count(db, "select count(*) from measurements") >= 1
    assert count(db, "select count(*) from runs where status = 'interrupted'") == 1


def test_two_models_profiled_concurrently_on_one_mlserver(tmp_path: Path) -> None:
    """Concurrent multi-model on MLServer: both ONNX models served by one server at once (neither unloaded for the
    other), their perf_analyzers measuring together; the group is ranked and reported as one."""
    import shutil

    import yaml

    repo = tmp_path / "repo"
    shutil.copytree(QUICK_START / "model_repository" / "add_sub", repo / "add_sub")
    shutil.copytree(QUICK_START / "model_repository" / "add_sub", repo / "add_sub_b")
    pbtxt = repo / "add_sub_b" / "config.pbtxt"
    pbtxt.write_text(pbtxt.read_text().replace('name: "add_sub"', 'name: "add_sub_b"'))
    export = tmp_path / "out"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model_repository": str(repo), "triton_launch_mode": "mlserver", "profile_models": "add_sub,add_sub_b",
        "run_config_profile_models_concurrently_enable": True, "run_config_search_mode": "quick",
        "run_config_search_max_instance_count": 1, "run_config_search_max_model_batch_size": 1,
        "run_config_search_max_concurrency": 1, "export_path": str(export),
        "output_model_repository_path": str(export / "omr"), "skip_detailed_reports": True,
        "perf_analyzer_flags": {"measurement-interval": 1000},
    }, sort_keys=False))
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(config)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = export / "results.db"
    assert count(db, "select count(*) from measurements where status = 'ok'") >= 2
    assert count(db, "select server_starts from runs") == 1
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("select v.tag, v.value from metric_values v join measurements m on m.id = v.measurement_id "
                            "where v.tag in ('perf_throughput@add_sub', 'perf_throughput@add_sub_b', "
                            "'window_overlap')").fetchall()
    finally:
        conn.close()
    by_tag: dict[str, list[float]] = {}
    for tag, value in rows:
        by_tag.setdefault(tag, []).append(value)
    assert min(by_tag["perf_throughput@add_sub"]) > 0 and min(by_tag["perf_throughput@add_sub_b"]) > 0
    assert min(by_tag["window_overlap"]) >= 90.0
    assert "Top configurations for add_sub,add_sub_b" in proc.stdout


ONE_MEASUREMENT = ["--run-config-search-disable", "--concurrency", "1", "--skip-detailed-reports",
                   "--skip-summary-reports"]


def test_a_failed_measurement_is_skipped_on_resume_and_measured_again_with_retry_failed(tmp_path: Path) -> None:
    """A broken perf_analyzer fails the measurement; rerun with the right one: skipped, with the line that says
    how to retry; rerun with --retry-failed: measured ok, and the key still has exactly one measurement row."""
    export = tmp_path / "out"
    db = export / "results.db"
    broken = tmp_path / "perf_analyzer"  # an executable that fails every run
    broken.write_text("#!/bin/sh\necho 'error: this perf_analyzer is broken' >&2\nexit 1\n")
    broken.chmod(0o755)
    failed = subprocess.run(profile_cmd(export, *ONE_MEASUREMENT, "--perf-analyzer-path", str(broken)),
                            capture_output=True, text=True, timeout=600)
    assert failed.returncode == 0, failed.stderr[-3000:]
    assert count(db, "select count(*) from measurements where status = 'failed'") == 1
    assert "1 measured, 0 skipped, 1 failed" in failed.stdout

    resumed = subprocess.run(profile_cmd(export, *ONE_MEASUREMENT), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "1 RunConfig failed in earlier runs; rerun with --retry-failed to measure it again" in resumed.stderr
    said_first = f"1 RunConfig in {db} failed in earlier runs; rerun with --retry-failed to measure them again"
    assert resumed.stderr.index(said_first) < resumed.stderr.index("resumed: skipped")  # said before measuring
    assert "0 measured, 1 skipped, 0 failed" in resumed.stdout
    assert "server starts 0, model loads 0" in resumed.stdout  # nothing to measure: no server started
    assert count(db, "select server_starts from runs where id = 2") == 0
    assert count(db, "select count(*) from measurements where status = 'failed'") == 1

    retried = subprocess.run(profile_cmd(export, *ONE_MEASUREMENT, "--retry-failed"), capture_output=True, text=True,
                             timeout=600)
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert "retried 1 RunConfigs that failed in earlier runs" in retried.stderr
    assert f"1 RunConfig in {db} failed in earlier runs; measuring them again (--retry-failed)" in retried.stderr
    assert "failed in earlier runs; rerun" not in retried.stderr
    assert "1 measured, 0 skipped, 0 failed" in retried.stdout
    assert count(db, "select count(*) from measurements") == 1
    assert count(db, "select count(*) from measurements where status = 'ok'") == 1
    assert count(db, "select count(*) from (select run_config_key from measurements group by run_config_key "
                     "having count(*) > 1)") == 0
    assert count(db, "select run_id from measurements") == 3  # the new row belongs to the retrying run
    with (export / "results" / "metrics-model-inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and float(rows[0]["Throughput (infer/sec)"]) > 0


def test_a_second_profile_on_a_db_in_use_stops_at_once_with_one_line(tmp_path: Path) -> None:
    """Another process holds the results DB (as a running profile does): `profile` on it exits 1 with one line
    naming that process, before any server starts and without writing a run."""
    from tests.support.db_holder import holder

    export = tmp_path / "out"
    db = export / "results.db"
    proc = holder(db)
    try:
        second = subprocess.run(profile_cmd(export, *ONE_MEASUREMENT), capture_output=True, text=True, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert second.returncode == 1, second.stderr[-2000:]
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"is in use by another profile (pid {proc.pid} on " in lines[0], second.stderr
    assert count(db, "select count(*) from runs") == 1  # the holder's run only
    assert not (export / "mlserver").exists()


def test_a_missing_perf_analyzer_is_one_line_before_any_server_starts(tmp_path: Path) -> None:
    export = tmp_path / "out"
    missing = tmp_path / "no" / "perf_analyzer"
    run = subprocess.run(profile_cmd(export, *ONE_MEASUREMENT, "--perf-analyzer-path", str(missing)),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"perf_analyzer_path '{missing}' is not an executable file" in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert count(export / "results.db", "select count(*) from measurements") == 0
    assert not (export / "mlserver").exists()
