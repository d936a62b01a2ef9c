"""A small `modelyzer profile` on the real Triton, as the pipeline tests run it: one config file, one CLI run."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import modelyzer_cmd

#: what every such profile shares: the local Triton, short stable windows, no detailed reports
BASE: dict[str, Any] = {
    "triton_launch_mode": "local",
    "perf_analyzer_flags": {"measurement-request-count": 50, "stability-percentage": 100},
    "skip_detailed_reports": True,
}


def profile_on_triton(tmp_path: Path, **keys: Any) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run `modelyzer profile` with BASE and `keys` (export under `tmp_path/out`); the run must succeed."""
    export = tmp_path / "out"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "export_path": str(export),
                                    "output_model_repository_path": str(export / "omr"), **keys}, sort_keys=False))
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, export
