"""The `local` launcher against the REAL Triton Inference Server 2.51 (CPU, Python backend) that `.ci/setup`
installs from the nvidia-pytriton wheel (`.tools/bin/tritonserver`, found with no `triton_server_path`).

Everything the launcher does with a server, for real: explicit model control, load-with-config changing a live
model's instances and batching, restarts only for new flags/environment (checked on the process's own command line
and environment), its refusal of a KIND_GPU instance on a host without GPUs, a Python model that fails to import
(Triton's error in one line), a startup model that makes the server exit or never get ready (the log tail), a
server already on the port, the server a SIGKILLed profile leaves behind, its Prometheus `/metrics`, and a whole
profile with server-side queue/compute times. Only GPU visibility (``CUDA_VISIBLE_DEVICES`` by UUID) stays a rule
test without a server (test_local.py): no GPU exists here.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from modelyzer.kernel.errors import LaunchError, ModelLoadError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, LoadSpec, RunConfig
from modelyzer.kernel.store import Store
from modelyzer.plugins.codecs.pbtxt import PbtxtCodec
from modelyzer.plugins.launchers import local as ll
from modelyzer.plugins.setup_tools import setup_tool
from tests.conftest import PERF_ANALYZER, QUICK_START, ROOT, modelyzer_cmd
from tests.support.configs import profile_config
from tests.support.triton_profile import profile_on_triton

EXAMPLE = ROOT / "examples" / "triton-cpu" / "model_repository"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(setup_tool("tritonserver") is None, reason="tritonserver missing; run .ci/setup"),
]

BROKEN_MODEL = '''
import not_installed_module  # noqa: F401 - the import fails when Triton loads the model


class TritonPythonModel:
    def execute(self, requests):
        return []
'''

SLOW_MODEL = '''
import time


class TritonPythonModel:
    def initialize(self, args):
        time.sleep(120)  # a startup model that keeps the server from getting ready

    def execute(self, requests):
        return []
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The example's add_sub Python model; `broken`, whose model.py fails to import; and `onnx_add_sub`, the
    quick start's ONNX model, for which this Triton build has no backend."""
    root = tmp_path / "models"
    shutil.copytree(EXAMPLE / "add_sub", root / "add_sub")
    shutil.copytree(QUICK_START / "model_repository" / "add_sub", root / "onnx_add_sub")
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "config.pbtxt").write_text(
        (root / "add_sub" / "config.pbtxt").read_text().replace('name: "add_sub"', 'name: "broken"'))
    (root / "broken" / "1" / "model.py").write_text(BROKEN_MODEL)
    shutil.copytree(root / "broken", root / "slow")
    (root / "slow" / "config.pbtxt").write_text(
        (root / "add_sub" / "config.pbtxt").read_text().replace('name: "add_sub"', 'name: "slow"'))
    (root / "slow" / "1" / "model.py").write_text(SLOW_MODEL)
    return root


def launcher(tmp_path: Path, repo: Path, **overrides: Any) -> ll.LocalLauncher:
    config = profile_config(**{"model_repository": repo, "client_max_retries": 60, "monitoring_interval": 0.5,
                               **overrides})
    assert config.triton_server_path == "tritonserver"  # the default: the launcher finds the setup's shim
    return ll.LocalLauncher(config, RunContext(export_path=tmp_path / "export", output_model_repository=tmp_path))


FLAGS = {"log_info": True}


def run_config(model: str, config: dict[str, Any], name: str, env: dict[str, str] | None = None) -> RunConfig:
    """A RunConfig as the search makes them: the model's server flags and environment."""
    variant = ConfigVariant(model, config, name=name)
    return RunConfig(model, variant, LoadSpec(concurrency=1), server_flags=FLAGS, server_env=env or {})


def test_variants_load_live_and_the_server_restarts_only_for_a_new_environment(tmp_path: Path, repo: Path) -> None:
    lau = launcher(tmp_path, repo, triton_server_flags=FLAGS)
    base = PbtxtCodec().read(repo / "add_sub" / "config.pbtxt")
    try:
        lau.start()
        first = run_config("add_sub", base, "add_sub_config_default")
        endpoints = lau.ensure(first.variant, tmp_path, first)
        assert endpoints.model_name == "add_sub" and endpoints.triton_metrics
        assert lau.proc is not None and endpoints.server_pid == lau.proc.pid
        pid = lau.proc.pid
        server = psutil.Process(pid)  # the real process (the setup's shim exec'd the binary)
        argv = server.cmdline()
        assert argv[0].endswith("/tritonserver") and "--model-control-mode=explicit" in argv
        assert "--log-info=true" in argv and f"--grpc-port={lau.ports['grpc']}" in argv  # the RunConfig's flags
        assert server.environ()["CUDA_VISIBLE_DEVICES"] == "" and "MODELYZER_TEST" not in server.environ()
        assert json.loads(lau.pidfile.read_text())["pid"] == pid
        served = lau.repository.client.get_model_config("add_sub")
        assert served["instance_group"][0]["count"] == 1 and "dynamic_batching" not in served

        batched = {**base, "max_batch_size": 4, "dynamic_batching": {"max_queue_delay_microseconds": 100},
                   "instance_group": [{"count": 2, "kind": "KIND_CPU"}]}
        second = run_config("add_sub", batched, "add_sub_config_3")
        lau.ensure(second.variant, tmp_path, second)
        served = lau.repository.client.get_model_config("add_sub")  # Triton's own view of the live model
        assert served["max_batch_size"] == 4 and served["instance_group"][0]["count"] == 2
        assert int(served["dynamic_batching"]["max_queue_delay_microseconds"]) == 100
        assert (lau.server_starts, lau.model_loads) == (1, 2)

        with urllib.request.urlopen(endpoints.metrics_url, timeout=10) as response:  # Triton's Prometheus metrics
            metrics = response.read().decode()
        assert 'nv_inference_count{model="add_sub"' in metrics and "nv_cpu_utilization" in metrics

        gpu = {**base, "instance_group": [{"count": 1, "kind": "KIND_GPU"}]}
        refused = run_config("add_sub", gpu, "add_sub_config_7")
        with pytest.raises(ModelLoadError) as err:
            lau.ensure(refused.variant, tmp_path, refused)
        assert "refused to load add_sub_config_7" in str(err.value) and "\n" not in str(err.value)

        restarted = run_config("add_sub", base, "add_sub_config_default", env={"MODELYZER_TEST": "1"})
        lau.ensure(restarted.variant, tmp_path, restarted)
        assert lau.server_starts == 2 and lau.proc is not None and lau.proc.pid != pid
        assert psutil.Process(lau.proc.pid).environ()["MODELYZER_TEST"] == "1"
        assert lau.repository.client.get_model_config("add_sub")["max_batch_size"] == base["max_batch_size"]
    finally:
        lau.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not lau.pidfile.exists()


def refusal(tmp_path: Path, repo: Path, model: str) -> str:
    """The one-line error of loading `model`'s default config into the real server (which must refuse it)."""
    lau = launcher(tmp_path, repo)
    config = {**PbtxtCodec().read(repo / model / "config.pbtxt"), "name": model}
    refused = run_config(model, config, f"{model}_config_default")
    try:
        lau.start()
        with pytest.raises(ModelLoadError) as err:
            lau.ensure(refused.variant, tmp_path, refused)
    finally:
        lau.stop()
    message = str(err.value)
    assert "\n" not in message and f"refused to load {model}_config_default" in message
    return message


def test_a_python_model_that_fails_to_import_is_one_line_with_tritons_error(tmp_path: Path, repo: Path) -> None:
    message = refusal(tmp_path, repo, "broken")
    assert "No module named 'not_installed_module'" in message  # Triton's (the Python backend's) own error


def test_a_model_whose_backend_this_build_lacks_is_one_line_naming_it(tmp_path: Path, repo: Path) -> None:
    message = refusal(tmp_path, repo, "onnx_add_sub")
    assert "unable to find backend library for backend 'onnxruntime'" in message  # Triton's own words


def test_a_startup_model_that_fails_makes_the_server_exit_with_tritons_error(tmp_path: Path, repo: Path) -> None:
    lau = launcher(tmp_path, repo, triton_server_flags={"load-model": "broken"})
    with pytest.raises(LaunchError) as err:
        lau.start()
    message = str(err.value)
    assert "tritonserver exited with code 1 while starting" in message and str(lau.log_path) in message
    assert "load failed for model 'broken'" in message and "No module named 'not_installed_module'" in message
    assert lau.server_starts == 0 and lau.proc is None and not lau.pidfile.exists()


def test_a_server_that_never_gets_ready_is_stopped_and_its_log_tail_shown(tmp_path: Path, repo: Path) -> None:
    lau = launcher(tmp_path, repo, triton_server_flags={"load-model": "slow"}, client_max_retries=3)
    start = time.monotonic()
    with pytest.raises(LaunchError) as err:
        lau.start()
    message = str(err.value)
    assert "did not become ready within 3 s (client_max_retries=3" in message and str(lau.log_path) in message
    assert "slow" in message.split("last lines of", 1)[1]  # Triton's own log: it is loading the startup model
    assert time.monotonic() - start < 30 and lau.proc is None and not lau.pidfile.exists()
    left = [p for p in psutil.process_iter(["cmdline"]) if any(str(repo) in a for a in p.info["cmdline"] or [])]
    assert not left, [p.info["cmdline"] for p in left]  # the server and its stub are gone


@pytest.mark.skipif(not PERF_ANALYZER.exists(), reason="perf_analyzer missing; run .ci/setup")
def test_a_profile_on_the_real_triton_measures_server_side_times(tmp_path: Path, repo: Path) -> None:
    export = tmp_path / "out"
    config = {
        "model_repository": str(repo), "profile_models": "add_sub", "triton_launch_mode": "local",
        "export_path": str(export), "output_model_repository_path": str(export / "omr"),
        "run_config_search_max_instance_count": 1, "run_config_search_max_model_batch_size": 1,
        "run_config_search_max_concurrency": 1, "collect_cpu_metrics": True,
        "triton_server_flags": {"log_verbose": 1, "http_port": 1},  # the launcher owns the ports
        "duration_seconds": 1,  # the server-only window: the idle server's RAM and Triton's CPU gauges
        "inference_output_fields": ["model_config_path", "concurrency", "perf_throughput", "perf_latency_avg",
                                    "perf_server_queue", "perf_server_compute_input", "perf_server_compute_infer",
                                    "perf_server_compute_output", "cpu_used_ram", "host_cpu_utilization",
                                    "host_used_ram"],
        # the machine's 2 cores are shared: short windows and a loose stability bound keep the test quick
        "perf_analyzer_flags": {"measurement-request-count": 50, "stability-percentage": 100},
        "skip_summary_reports": True, "skip_detailed_reports": True,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Top configurations for add_sub" in proc.stdout
    assert "triton_server_flags.http-port=1 is ignored" in proc.stderr
    conn = sqlite3.connect(export / "results.db")
    try:
        starts, loads = conn.execute("select server_starts, model_loads from runs").fetchone()
    finally:
        conn.close()
    assert starts == 1 and loads >= 2  # every variant loaded into the one running server
    store = Store.open_existing(export / "results.db")
    try:
        results = store.results("add_sub")
    finally:
        store.close()
    assert len(results) >= 2 and all(r.measurement.ok for r in results)  # the default and a variant
    for result in results:
        values = result.measurement.values()
        assert values["perf_throughput"] > 0 and values["perf_latency_p99"] > 0
        # Triton's statistics: perf_analyzer's server-side columns are real, not zero-filled
        assert values["perf_server_compute_infer"] > 0 and "perf_server_queue" in values
        assert values["cpu_used_ram"] > 0  # the server's process tree, read by the cpu collector
        # Triton's own view of its host, from its /metrics (the triton_cpu collector)
        assert 0 < values["host_cpu_utilization"] <= 100 and values["host_used_ram"] > values["cpu_used_ram"]
    log_text = (export / "tritonserver.log").read_text()
    assert "Started GRPCInferenceService" in log_text
    [started] = [ln for ln in log_text.splitlines() if ln.startswith("===== modelyzer: starting")]
    argv = started.split()[3:-1]
    assert argv[1:3] == [f"--model-repository={repo.resolve()}", "--model-control-mode=explicit"]
    assert [a.split("=")[0] for a in argv[3:6]] == ["--http-port", "--grpc-port", "--metrics-port"]
    assert argv[6:] == ["--metrics-interval-ms=1000", "--log-verbose=1"]
    with (export / "results" / "metrics-model-inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(results)
    for row in rows:  # Triton's server-side columns and its own host gauges, in the CSV the user asked for
        server = [float(row[f"Server {part} (ms)"]) for part in ("Queue", "Compute Input", "Compute Infer",
                                                                 "Compute Output")]
        assert min(server) >= 0 and server[2] > 0 and sum(server) < float(row["Avg Latency (ms)"])
        assert float(row["Host CPU Utilization (%)"]) > 0 and float(row["Host RAM Usage (MB)"]) > 0
    with (export / "results" / "metrics-server-only.csv").open() as fh:
        [idle] = list(csv.DictReader(fh))  # the server before any model: no Python stub yet
    assert idle["Model"] == "triton-server" and 0 < float(idle["RAM Usage (MB)"]) < min(
        float(r["RAM Usage (MB)"]) for r in rows)
    assert 0 <= float(idle["Host CPU Utilization (%)"]) <= 100 and float(idle["Host RAM Usage (MB)"]) > 0
    assert not (export / "tritonserver.pid").exists()


def test_a_real_server_on_the_port_is_named_and_never_reused(tmp_path: Path, repo: Path) -> None:
    first = launcher(tmp_path / "a", repo)
    try:
        first.start()
        http = first.endpoints("").http
        port = int(http.rsplit(":", 1)[1])
        config = profile_config(model_repository=repo, triton_http_endpoint=http, client_max_retries=60)
        second = ll.LocalLauncher(config, RunContext(export_path=tmp_path / "b", output_model_repository=tmp_path))
        with pytest.raises(LaunchError) as err:
            second.start()
        message = str(err.value)
        assert f"another server is already answering on port {port} (triton_http_endpoint; HTTP 200" in message
        assert "\n" not in message and second.proc is None
    finally:
        first.stop()


def test_a_server_left_by_a_killed_profile_is_stopped_at_the_next_start(tmp_path: Path, repo: Path) -> None:
    """`modelyzer profile` killed with SIGKILL leaves its tritonserver (and the Python backend's stub) running; the
    next start with the same export path finds it by its pidfile, checks its command line, and stops it."""
    export = tmp_path / "export"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_repository": str(repo), "profile_models": "add_sub", "triton_launch_mode": "local",
        "export_path": str(export), "output_model_repository_path": str(tmp_path / "omr"),
        "run_config_search_max_concurrency": 1,
        "perf_analyzer_flags": {"measurement-request-count": 50, "stability-percentage": 100},
    }))
    proc = subprocess.Popen([*modelyzer_cmd(), "profile", "-f", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    log = export / "tritonserver.log"
    try:
        deadline = time.monotonic() + 120
        while not log.exists() or "successfully loaded 'add_sub'" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        clients = [p for p in psutil.Process(proc.pid).children(recursive=True) if "perf_analyzer" in p.name()]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    for client in clients:  # perf_analyzer is not what this test is about
        client.kill()
    orphan = psutil.Process(json.loads((export / "tritonserver.pid").read_text())["pid"])
    stubs = orphan.children(recursive=True)
    assert orphan.is_running() and stubs  # a real leftover: the server and its Python backend stub
    nxt = ll.LocalLauncher(profile_config(model_repository=repo, client_max_retries=60),
                           RunContext(export_path=export, output_model_repository=tmp_path))  # fmt: skip
    try:
        nxt.start()
        gone, alive = psutil.wait_procs([orphan, *stubs], timeout=30)
        assert not alive, [p.pid for p in alive]
        assert nxt.proc is not None and nxt.proc.pid != orphan.pid and nxt.server_starts == 1
    finally:
        nxt.stop()


@pytest.mark.skipif(not PERF_ANALYZER.exists(), reason="perf_analyzer missing; run .ci/setup")
def test_an_ensemble_of_python_models_is_profiled_on_the_real_triton(tmp_path: Path) -> None:
    """examples/triton-cpu/pipelines: the ensemble's composing models (its steps: scale, add_sub) get their own
    variants, loaded live before the ensemble and kept while it is served; the ensemble has no instances of its own.
    Every combination of the small product (2 × 2 instance counts) plus the defaults, named as Model Analyzer names
    them; each composing model's share of the pipeline's time is measured."""
    _, export = profile_on_triton(
        tmp_path, model_repository=str(ROOT / "examples" / "triton-cpu" / "pipelines"),
        profile_models="ensemble_scale_add_sub", run_config_search_max_model_batch_size=1,
        run_config_search_max_instance_count=2, run_config_search_max_concurrency=1)
    store = Store.open_existing(export / "results.db")
    try:
        results = store.results("ensemble_scale_add_sub")
    finally:
        store.close()
    assert len(results) == 5 and all(r.measurement.ok for r in results), [r.measurement.error for r in results]
    combos = {tuple((c.name, c.instance_count) for c in r.run_config.variant.composing) for r in results}
    assert combos == {
        (("scale_config_default", 1), ("add_sub_config_default", 1)),
        (("scale_config_0", 1), ("add_sub_config_0", 1)), (("scale_config_0", 1), ("add_sub_config_1", 2)),
        (("scale_config_1", 2), ("add_sub_config_0", 1)), (("scale_config_1", 2), ("add_sub_config_1", 2)),
    }
    assert sorted(r.run_config.variant.name for r in results) == [
        *(f"ensemble_scale_add_sub_config_{i}" for i in range(4)), "ensemble_scale_add_sub_config_default"]
    for r in results:
        assert "instance_group" not in r.run_config.variant.config
        assert r.measurement.values()["perf_throughput"] > 0
    log_text = (export / "tritonserver.log").read_text()
    assert "successfully loaded 'scale'" in log_text and "successfully loaded 'add_sub'" in log_text
    rows = list(csv.reader((export / "results" / "metrics-model-inference.csv").open()))
    paths = {row[3] for row in rows[1:]}
    assert "ensemble_scale_add_sub_config_3: scale_config_1, add_sub_config_1" in paths, paths
    check_steps(results)
    summary = (export / "reports" / "summaries" / "ensemble_scale_add_sub" / "result_summary.html").read_text()
    assert "composing model scale_config_" in summary or "composing model scale_config_default" in summary
    best = json.loads((export / "best_configs" / "ensemble_scale_add_sub" / "best_config.json").read_text())
    assert [c["model"] for c in best["composing"]] == ["scale", "add_sub"]
    for model in ("scale", "add_sub"):  # deployable with the ensemble: each composing model's chosen config
        assert (export / "best_configs" / "ensemble_scale_add_sub" / model / "config.pbtxt").is_file()


def check_steps(results: list[Any]) -> None:
    """Each composing model's share of the pipeline's server time (Triton's statistics): both steps, 100% in all."""
    for r in results:
        values = r.measurement.values()
        shares = [values["step_share/scale"], values["step_share/add_sub"]]
        assert min(shares) > 0 and abs(sum(shares) - 100.0) < 1e-6
        assert values["step_latency/scale"] > 0 and values["step_latency/add_sub"] > 0


@pytest.mark.skipif(not PERF_ANALYZER.exists(), reason="perf_analyzer missing; run .ci/setup")
def test_two_models_one_after_the_other_share_the_server_and_keep_their_own_settings(tmp_path: Path) -> None:
    """Sequential multi-model (several profile_models): each model searched and ranked with its own objectives
    and constraints, one summary per model, and one server start for both."""
    export = tmp_path / "out"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_repository": str(ROOT / "examples" / "triton-cpu" / "pipelines"), "triton_launch_mode": "local",
        "profile_models": {
            "scale": {"objectives": {"perf_latency_p99": 10}, "parameters": {"concurrency": [1]}},
            "add_sub": {"constraints": {"perf_latency_p99": {"max": 10000}}, "parameters": {"concurrency": [1, 2]}},
        },
        "run_config_search_disable": True, "export_path": str(export),
        "output_model_repository_path": str(export / "omr"),
        "perf_analyzer_flags": {"measurement-request-count": 50, "stability-percentage": 100},
        "skip_detailed_reports": True,
    }))
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Top configurations for scale" in proc.stdout and "Top configurations for add_sub" in proc.stdout
    conn = sqlite3.connect(export / "results.db")
    try:
        assert conn.execute("select server_starts, model_loads from runs").fetchone() == (1, 2)
    finally:
        conn.close()
    scale = json.loads((export / "best_configs" / "scale" / "best_config.json").read_text())
    add_sub = json.loads((export / "best_configs" / "add_sub" / "best_config.json").read_text())
    assert scale["objectives"] == [{"tag": "perf_latency_p99", "weight": 10.0}] and scale["constraints"] == []
    assert add_sub["objectives"] == [{"tag": "perf_throughput", "weight": 10.0}]
    assert add_sub["constraints"][0]["tag"] == "perf_latency_p99" and add_sub["measurements"] == 2
    for model in ("scale", "add_sub"):
        assert (export / "reports" / "summaries" / model / "result_summary.html").exists()


@pytest.mark.skipif(not PERF_ANALYZER.exists(), reason="perf_analyzer missing; run .ci/setup")
def test_a_bls_model_is_profiled_with_its_composing_models_loaded(tmp_path: Path) -> None:
    """bls_composing_models: their own variants are searched with the BLS model's (its instance count), loaded live
    before it and kept while it is served; perf_analyzer is told about them (--bls-composing-models)."""
    _, export = profile_on_triton(
        tmp_path, model_repository=str(ROOT / "examples" / "triton-cpu" / "pipelines"),
        profile_models="bls_scale_add_sub", bls_composing_models="scale,add_sub",
        run_config_search_max_instance_count=2, run_config_search_max_model_batch_size=1,
        run_config_search_max_concurrency=1, skip_summary_reports=True)
    store = Store.open_existing(export / "results.db")
    try:
        results = store.results("bls_scale_add_sub")
    finally:
        store.close()
    assert len(results) == 9 and all(r.measurement.ok for r in results), [r.measurement.error for r in results]
    combos = {(r.run_config.variant.instance_count,
               *(c.instance_count for c in r.run_config.variant.composing)) for r in results if not r.run_config.variant.is_default}
    assert combos == {(a, b, c) for a in (1, 2) for b in (1, 2) for c in (1, 2)}  # the BLS model's and theirs
    assert all([c.model for c in r.run_config.variant.composing] == ["scale", "add_sub"] for r in results)
    check_steps(results)


