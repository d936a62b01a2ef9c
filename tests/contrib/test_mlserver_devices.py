"""Device truth on the `mlserver` launcher: MLServer runs every model on the CPU, so it declares no GPU
(`devices() == []`) and a KIND_GPU instance group — in `model_config_parameters` or the model's own config.pbtxt —
is profiled, written and reported as KIND_CPU, with one warning line naming the model and the key.

The real profile runs MLServer 1.7.1 and the real perf_analyzer on 127.0.0.1 (skipped when either is missing).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelyzer.kernel.gpus import CPU_SERVER_MESSAGE
from modelyzer.kernel.interfaces import RunContext
from tests.conftest import QUICK_START, modelyzer_cmd, real_server_available
from tests.support.configs import profile_config


def test_the_mlserver_launcher_declares_no_gpu(tmp_path: Path) -> None:
    from modelyzer_mlserver.launcher import MLServerLauncher

    config = profile_config(triton_launch_mode="mlserver", export_path=tmp_path)
    launcher = MLServerLauncher(config, RunContext(export_path=tmp_path, output_model_repository=tmp_path / "out"))
    assert launcher.devices() == []  # a CPU-only server: building it starts nothing


@pytest.mark.integration
def test_kind_gpu_on_mlserver_is_profiled_and_reported_as_kind_cpu(tmp_path: Path) -> None:
    reason = real_server_available()
    if reason:
        pytest.skip(reason)
    repo = tmp_path / "repo"
    shutil.copytree(QUICK_START / "model_repository" / "add_sub", repo / "add_sub")
    pbtxt = repo / "add_sub" / "config.pbtxt"
    pbtxt.write_text(pbtxt.read_text().replace("kind: KIND_CPU", "kind: KIND_GPU\n    gpus: [ 0 ]"))
    export = tmp_path / "out"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model_repository": str(repo), "triton_launch_mode": "mlserver", "export_path": str(export),
        "output_model_repository_path": str(export / "omr"), "skip_detailed_reports": True,
        "skip_summary_reports": True, "concurrency": [1],
        "profile_models": {"add_sub": {"model_config_parameters": {
            "max_batch_size": 4, "instance_group": [{"kind": "KIND_GPU", "count": 1}]}}},
    }, sort_keys=False))
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(config)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert CPU_SERVER_MESSAGE in proc.stderr and "no NVIDIA GPU found" not in proc.stderr
    for key in ("model_config_parameters", "config.pbtxt"):
        line = (f"model add_sub: {key}.instance_group asks for KIND_GPU but the model runs on the CPU here: "
                "profiled as KIND_CPU")
        assert proc.stderr.count(line) == 1, proc.stderr[-3000:]
    # what ran is what is written and reported: KIND_CPU everywhere, GPU nowhere
    for variant in ("add_sub_config_default", "add_sub_config_0"):
        written = (export / "omr" / variant / "config.pbtxt").read_text()
        assert "KIND_CPU" in written and "KIND_GPU" not in written and "gpus" not in written
    with (export / "results" / "metrics-model-inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and {r["Instance Group"] for r in rows} == {"1:CPU"}
    assert float(rows[0]["Throughput (infer/sec)"]) > 0
    best = json.loads((export / "best_configs" / "add_sub" / "best_config.json").read_text())
    assert "GPU" not in json.dumps(best)
    assert "GPU" not in proc.stdout
