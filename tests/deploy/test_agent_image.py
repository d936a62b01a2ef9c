"""deploy/docker: the agent image built by ``deploy/docker/build.sh`` with the real docker CLI against a private
dockerd, from a ``docker import``-ed base (no registry here: ``tests/deploy/python_base.py`` makes a
``python:3.11-slim``-like base from this host's Python). The full image — modelyzer and every dependency from
wheels, and the setup's perf_analyzer 2.51 (``.tools/bin/perf_analyzer``, with ``--perf-analyzer``, when it is
there) — is built: 40-75 s here with the wheels in pip's cache, ~350 MB (67 MB of base, 26 MB of perf_analyzer and
its libraries, the rest the venv without .pyc files), so the test builds the real thing, not a reduced variant.

Checked in containers of it, as the manifests run them (uid 65532, the ENTRYPOINT overridden by ``command``):
``modelyzer agent --help`` and ``profile --help`` show the flags the manifests use; the dependencies with native
code import (pyzmq with CURVE, numpy, matplotlib, grpc, sqlite3, optuna); ``keys generate`` writes a key pair
in a writable volume; ``perf_analyzer --version`` runs from its bundled libraries; the build used no network
(``--network none``) and the containers run with none either.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.deploy import python_base
from tests.support.dockerd import PrivateDockerd, private_dockerd

BASE = "127.0.0.1:1/modelyzer/python-base:3.11"  # present locally only; nothing listens on its registry port
TAG = "127.0.0.1:1/modelyzer/agent:test"
BUILD = ROOT / "deploy" / "docker" / "build.sh"
PERF_ANALYZER = ROOT / ".tools" / "bin" / "perf_analyzer"
BUILD_BUDGET = 240.0  # seconds: the build takes ~40-75 s here; a slower one is a regression worth a look
pytestmark = pytest.mark.integration  # a real dockerd and a real image build (~1 min)


@pytest.fixture(scope="module")
def engine() -> Iterator[PrivateDockerd]:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed (build.sh runs it)")
    with private_dockerd() as started:
        python_base.import_base(started.client(), BASE)
        yield started


@pytest.fixture(scope="module")
def built(engine: PrivateDockerd) -> dict[str, Any]:
    started = time.monotonic()
    argv = ["bash", str(BUILD), "--tag", TAG, "--base", BASE, "--python", str(ROOT / ".venv" / "bin" / "python")]
    if PERF_ANALYZER.exists() and shutil.which("patchelf"):
        argv += ["--perf-analyzer", str(PERF_ANALYZER)]
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=engine.env, timeout=900, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"build.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    image = engine.client().images.get(TAG)
    print(f"\nagent image: {image.attrs['Size'] / 1e6:.0f} MB, built in {seconds:.0f} s\n{proc.stdout[-400:]}")
    return {"seconds": seconds, "size": float(image.attrs["Size"]), "perf_analyzer": "--perf-analyzer" in argv}


def run(engine: PrivateDockerd, *args: str, entrypoint: str | None = None, volume: Path | None = None) -> str:
    """Run a container of the image the way the manifests do; stdout+stderr, asserting exit code 0."""
    argv = ["docker", "run", "--rm", "--network", "none", "--user", "65532:65532"]
    if entrypoint:
        argv += ["--entrypoint", entrypoint]
    if volume is not None:
        argv += ["-v", f"{volume}:/work"]
    proc = subprocess.run([*argv, TAG, *args], capture_output=True, text=True, env=engine.env, timeout=120,
                          check=False)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_the_image_builds_without_network_and_runs_agent_help(engine: PrivateDockerd, built: dict[str, Any]) -> None:
    assert built["seconds"] < BUILD_BUDGET
    started = time.monotonic()
    out = run(engine)  # the image's default command: `modelyzer agent --help`
    print(f"\nmodelyzer agent --help in a container: {time.monotonic() - started:.1f} s")
    for option in ("--controller", "--keys", "--key", "--gpus", "--workdir", "--set", "--max-silence"):
        assert option in out
    assert "--agent-keys" in run(engine, "profile", "--help")
    config = engine.client().images.get(TAG).attrs["Config"]
    assert config["User"] == "65532:65532" and config["Entrypoint"] == ["modelyzer"]


def test_native_dependencies_import_and_keys_are_written(engine: PrivateDockerd, built: dict[str, Any],
                                                         tmp_path: Path) -> None:
    code = ("import zmq, numpy, matplotlib.pyplot, grpc, sqlite3, optuna, modelyzer.plugins.agents.agent; "
            "print('curve', zmq.has('curve'), 'sqlite', sqlite3.sqlite_version)")
    out = run(engine, "-c", code, entrypoint="python3")
    assert "curve True" in out
    tmp_path.chmod(0o777)
    run(engine, "keys", "generate", "/work/keys", volume=tmp_path)
    assert {p.name for p in (tmp_path / "keys").iterdir()} >= {"controller.key", "controller.key_secret",
                                                              "agent.key", "agent.key_secret", "authorized_keys"}


def test_perf_analyzer_runs_from_the_image(engine: PrivateDockerd, built: dict[str, Any]) -> None:
    if not built["perf_analyzer"]:
        pytest.skip(f"{PERF_ANALYZER} (.ci/setup) or patchelf is missing: the image was built without perf_analyzer")
    out = run(engine, "--version", entrypoint="perf_analyzer")
    assert "2.51" in out or "perf_analyzer" in out.lower(), out
