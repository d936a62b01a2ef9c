"""Fixtures of the third-party plugin tests: the demo distributions installed into a site dir, and the real CLI
run against it (a subprocess with that dir on PYTHONPATH, so plugins come in only through their entry points)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import modelyzer_cmd
from tests.third_party.wheels import DISTS, install

#: a CPU model the toy launcher "serves"; brute search reads its max_batch_size and instance_group
TOY_CONFIG = """\
name: "toy_add"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
"""

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both demo distributions, built and pip-installed (with their entry points) into one site dir."""
    return install([DISTS / "mz_demo", DISTS / "mz_demo_llm"], tmp_path_factory.mktemp("third_party"))


@pytest.fixture(scope="session")
def cli(demo_site: Path) -> Cli:
    """`cli(*args, cwd=..., **env)`: run `modelyzer` with the demo plugins installed; extra env vars as keywords."""

    def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELYZER_")}
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(demo_site), environ.get("PYTHONPATH")]))
        environ.update(env)
        return subprocess.run([*modelyzer_cmd(), *args], cwd=cwd, env=environ, capture_output=True, text=True,
                              timeout=120)

    return run


def toy_repository(root: Path) -> Path:
    """A model repository with one pbtxt model, `toy_add`."""
    model = root / "repo" / "toy_add"
    model.mkdir(parents=True)
    (model / "config.pbtxt").write_text(TOY_CONFIG)
    return root / "repo"


def error_lines(stderr: str) -> list[str]:
    """The `error:` lines of a CLI run (a usage error is exactly one, and no traceback)."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]
