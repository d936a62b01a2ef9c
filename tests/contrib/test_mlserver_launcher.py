"""Integration tests of the `mlserver` launcher: a real MLServer (.venv-mlserver) serving the quick-start
ONNX model, driven by tritonclient and the real perf_analyzer. Skipped when either is missing.

One server is shared by the tests in file order (start → variants → load failure → restart → stop) to keep
the module well under a minute.
"""

from __future__ import annotations

import concurrent.futures
import copy
import csv
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from modelyzer.kernel.errors import LaunchError, ModelLoadError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from tests.support.configs import profile_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MODEL = "add_sub"


def _mlserver_available() -> str | None:
    from modelyzer_mlserver.server import resolve_mlserver

    try:
        resolve_mlserver("tritonserver")
    except LaunchError as err:
        return str(err)
    return None


_missing = _mlserver_available()
if _missing:
    pytest.skip(f"no MLServer: {_missing}", allow_module_level=True)

PERF_ANALYZER = os.environ.get("MODELYZER_PERF_ANALYZER") or (
    str(ROOT / ".tools/bin/perf_analyzer")
    if (ROOT / ".tools/bin/perf_analyzer").exists()
    else shutil.which("perf_analyzer")
)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from modelyzer_mlserver.launcher import MLServerLauncher

    export = tmp_path_factory.mktemp("export")
    config = profile_config(
        client_protocol="grpc",
        triton_server_path="tritonserver",
        triton_output_path=None,
        client_max_retries=60,
    )
    ml = MLServerLauncher(config, RunContext(export_path=export, output_model_repository=export / "out"))
    yield ml
    ml.stop()


BASE: dict[str, Any] = {
    "name": MODEL,
    "platform": "onnxruntime_onnx",
    "max_batch_size": 8,
    "input": [{"name": f"INPUT{i}", "data_type": "TYPE_FP32", "dims": [16]} for i in (0, 1)],
    "output": [{"name": f"OUTPUT{i}", "data_type": "TYPE_FP32", "dims": [16]} for i in (0, 1)],
    "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
}


def variant(name: str, instances: int = 1, dynamic: dict[str, Any] | None = None) -> ConfigVariant:
    config = copy.deepcopy(BASE)
    config["name"] = name
    config["instance_group"] = [{"count": instances, "kind": "KIND_CPU"}]
    if dynamic is not None:
        config["dynamic_batching"] = dynamic
    return ConfigVariant(model=MODEL, config=config, name=name)


def ensure(launcher: Any, v: ConfigVariant, where: Path, concurrency: int = 1) -> Endpoints:
    endpoints: Endpoints = launcher.ensure(
        v, where, RunConfig(model=MODEL, variant=v, load=LoadSpec(concurrency=concurrency))
    )
    return endpoints


def get_json(endpoints: Endpoints, path: str) -> Any:
    with urllib.request.urlopen(f"http://{endpoints.http}{path}", timeout=10) as resp:
        return json.load(resp)


def http_infer_burst(endpoints: Endpoints, requests: int = 48, threads: int = 8) -> None:
    body = json.dumps(
        {
            "inputs": [
                {"name": f"INPUT{i}", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16}
                for i in (0, 1)
            ]
        }
    ).encode()

    def one(_: int) -> None:
        req = urllib.request.Request(
            f"http://{endpoints.http}/v2/models/{MODEL}/infer",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(requests)))


def test_start_and_serve_with_triton_client(launcher: Any, model_dir: Path) -> None:
    import numpy as np
    import tritonclient.grpc as grpcclient

    launcher.start()
    endpoints = ensure(launcher, variant("add_sub_config_default"), model_dir)
    assert (launcher.server_starts, launcher.model_loads) == (1, 1)
    assert endpoints.triton_metrics is False  # MLServer's own Prometheus metrics, not Triton's
    assert launcher.serves_metrics and launcher.server_only_window and launcher.on_this_host  # the defaults
    assert endpoints.model_name == MODEL and endpoints.protocol == "grpc" and endpoints.loadgen_flags == {}
    assert endpoints.server_pid is not None and psutil.pid_exists(endpoints.server_pid)

    client = grpcclient.InferenceServerClient(endpoints.grpc)
    assert {"statistics", "model_configuration"} <= set(client.get_server_metadata().extensions)
    config = client.get_model_config(MODEL).config  # Triton's own client parses the served ModelConfig
    assert (config.name, config.max_batch_size, config.input[0].dims) == (MODEL, 8, [16])
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    inputs = [grpcclient.InferInput(f"INPUT{i}", [2, 16], "FP32") for i in (0, 1)]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(np.ones_like(a))
    result = client.infer(MODEL, inputs)
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), a + 1)
    np.testing.assert_allclose(result.as_numpy("OUTPUT1"), a - 1)
    stats = client.get_inference_statistics(MODEL).model_stats[0]
    assert (stats.name, stats.version, stats.inference_count, stats.execution_count) == (MODEL, "1", 2, 1)
    assert stats.inference_stats.compute_infer.ns > 0
    with urllib.request.urlopen(endpoints.metrics_url, timeout=10) as resp:
        assert b"model_infer_request_success" in resp.read()


@pytest.mark.skipif(PERF_ANALYZER is None, reason="perf_analyzer not found (run .ci/setup)")
def test_real_perf_analyzer_gets_client_and_server_columns(
    launcher: Any, model_dir: Path, tmp_path: Path
) -> None:
    endpoints = ensure(launcher, variant("add_sub_config_default"), model_dir, concurrency=2)
    out = tmp_path / "pa.csv"
    cmd = [str(PERF_ANALYZER), "-m", endpoints.model_name, "-u", endpoints.grpc, "-i", "grpc",
           "--concurrency-range", "2", "--measurement-mode", "count_windows", "-s", "90",
           "-f", str(out), "--verbose-csv"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (row,) = list(csv.DictReader(out.open()))
    assert float(row["Inferences/Second"]) > 0 and float(row["p99 latency"]) > 0
    assert float(row["Server Compute Infer"]) > 0
    for column in ("Server Queue", "Server Compute Input", "Server Compute Output"):
        assert column in row

    # HTTP works too, with the json tensor flags the launcher hands to the load generator for http
    from modelyzer_mlserver.launcher import HTTP_LOADGEN_FLAGS

    flags = [f"--{k}={v}" for k, v in HTTP_LOADGEN_FLAGS.items()]
    cmd = [str(PERF_ANALYZER), "-m", endpoints.model_name, "-u", endpoints.http, "-i", "http", *flags,
           "--concurrency-range", "1", "--measurement-mode", "count_windows", "-s", "90",
           "-f", str(out), "--verbose-csv"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (row,) = list(csv.DictReader(out.open()))
    assert float(row["Inferences/Second"]) > 0 and float(row["Server Compute Infer"]) > 0


def test_dynamic_batching_loads_without_restart_and_batches(launcher: Any, model_dir: Path) -> None:
    starts, loads = launcher.server_starts, launcher.model_loads
    endpoints = ensure(
        launcher, variant("add_sub_config_1", dynamic={"max_queue_delay_microseconds": 20000}), model_dir
    )
    assert (launcher.server_starts, launcher.model_loads) == (starts, loads + 1)
    served = get_json(endpoints, f"/v2/models/{MODEL}/config")
    assert served["dynamic_batching"]["max_queue_delay_microseconds"] == 20000 and served["name"] == MODEL
    before = get_json(endpoints, f"/v2/models/{MODEL}/stats")["model_stats"][0]
    http_infer_burst(endpoints)
    after = get_json(endpoints, "/v2/models/stats")["model_stats"][0]
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == 48 and 0 < executions < inferences  # requests really were merged
    ensure(launcher, variant("add_sub_config_1", dynamic={"max_queue_delay_microseconds": 20000}), model_dir)
    assert launcher.model_loads == loads + 1  # same settings again: nothing to do


def test_load_failure_carries_the_server_reason(launcher: Any, model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / MODEL
    (broken / "1").mkdir(parents=True)
    (broken / "1" / "model.onnx").write_bytes(b"this is not an onnx file")
    with pytest.raises(ModelLoadError, match="(?i)protobuf parsing failed|INVALID_PROTOBUF"):
        ensure(launcher, variant("add_sub_config_broken"), broken)
    endpoints = ensure(launcher, variant("add_sub_config_default"), model_dir)  # recovers without restart
    assert get_json(endpoints, f"/v2/models/{MODEL}/config")["max_batch_size"] == 8
    assert launcher.server_starts == 1


def test_instance_count_change_restarts_with_workers(launcher: Any, model_dir: Path) -> None:
    starts = launcher.server_starts
    old_pid = launcher._server.proc.pid
    endpoints = ensure(launcher, variant("add_sub_config_2", instances=2, dynamic={}), model_dir)
    assert launcher.server_starts == starts + 1 and endpoints.server_pid != old_pid
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
    workers = [
        p for p in psutil.Process(endpoints.server_pid).children(recursive=True) if "python" in p.name()
    ]
    assert len(workers) >= 2
    http_infer_burst(endpoints, requests=16, threads=4)
    stats = get_json(endpoints, f"/v2/models/{MODEL}/stats")["model_stats"][0]
    assert stats["inference_count"] == 16 and stats["inference_stats"]["compute_infer"]["ns"] > 0
    ensure(launcher, variant("add_sub_config_3", instances=2), model_dir)  # batching off, same workers
    assert launcher.server_starts == starts + 1


def test_stop_kills_the_process_group_and_is_idempotent(launcher: Any) -> None:
    pid = launcher._server.proc.pid
    group = [pid] + [p.pid for p in psutil.Process(pid).children(recursive=True)]
    started = time.monotonic()
    launcher.stop()
    launcher.stop()
    assert time.monotonic() - started < 20
    alive = [p for p in group if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []


ORPHAN_SCRIPT = """
import os, sys
from pathlib import Path
from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.interfaces import RunContext
from modelyzer_mlserver.launcher import MLServerLauncher
export = Path(sys.argv[1])
config = config_from_dict({"profile_models": "add_sub"}, check_paths=False)
ml = MLServerLauncher(config, RunContext(export_path=export, output_model_repository=export / "out"))
ml.start()
print(ml._server.proc.pid, flush=True)
os.kill(os.getpid(), 9)
"""


def test_server_does_not_outlive_a_killed_controller(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and psutil.pid_exists(pid):
        time.sleep(0.2)
    assert not psutil.pid_exists(pid), f"MLServer {pid} survived its SIGKILLed launcher"
