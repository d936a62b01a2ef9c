"""A profile that replays a recorded surface (bench/surfaces): real CLI, real results DB, no server, ~1 s.

`replay_config(tmp_path, **keys)` writes the model repository and a brute-search YAML (20-odd RunConfigs);
`modelyzer(*args)` runs the real CLI in a subprocess.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT, modelyzer_cmd

SURFACE = ROOT / "bench" / "surfaces" / "synthetic-sweet-spot.db"
MODEL = "synthetic-sweet-spot"
PBTXT = f'''name: "{MODEL}"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [{{ name: "x" data_type: TYPE_FP32 dims: [16] }}]
output [{{ name: "y" data_type: TYPE_FP32 dims: [16] }}]
'''


def replay_config(tmp_path: Path, **extra: Any) -> Path:
    """A brute profile of the recorded surface: 20-odd RunConfigs, no server."""
    (tmp_path / "repo" / MODEL).mkdir(parents=True, exist_ok=True)
    (tmp_path / "repo" / MODEL / "config.pbtxt").write_text(PBTXT)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_repository": str(tmp_path / "repo"), "profile_models": MODEL, "triton_launch_mode": "replay",
        "replay_results_db": str(SURFACE), "run_config_search_max_concurrency": 8,
        "run_config_search_max_instance_count": 2, "output_model_repository_path": str(tmp_path / "omr"),
        "skip_detailed_reports": True, "export_path": str(tmp_path / "out"), **extra}))
    return path


def modelyzer(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*modelyzer_cmd(), *args], capture_output=True, text=True, timeout=timeout, env=env)


def one_line_error(proc: subprocess.CompletedProcess[str], *says: str) -> str:
    """The process failed with exactly one `error:` line (and no traceback) that says each of `says`."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for text in says:
        assert text in errors[0], errors[0]
    return errors[0]
