"""The remote launcher: readiness errors on a closed port (real clients), and repository loads with a config
override against ``data/triton_stub.py`` over the real tritonclient HTTP client."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError, ModelLoadError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from modelyzer.plugins.launchers import remote as rl
from modelyzer.plugins.launchers.triton_repository import override_config
from tests.conftest import QUICK_START, real_server_available
from tests.support.configs import profile_config

STUB = Path(__file__).parents[1] / "data" / "triton_stub.py"


def make_config(**overrides: Any) -> ProfileConfig:
    values: dict[str, Any] = dict(
        client_protocol="http",
        triton_launch_mode="remote",
        triton_http_endpoint="localhost:8000",
        triton_grpc_endpoint="localhost:8001",
        triton_metrics_url="http://localhost:8002/metrics",
        client_max_retries=3,
        reload_model_disable=False,
        monitoring_interval=1.0,
    )
    values.update(overrides)
    return profile_config(**values)


def launcher(tmp_path: Path, **overrides: Any) -> rl.RemoteLauncher:
    context = RunContext(export_path=tmp_path, output_model_repository=tmp_path / "omr")
    return rl.RemoteLauncher(make_config(**overrides), context)


def variant(config: dict[str, Any], name: str = "add_sub_config_1") -> ConfigVariant:
    return ConfigVariant("add_sub", config, name=name)


def rc(v: ConfigVariant) -> RunConfig:
    return RunConfig("add_sub", v, LoadSpec(concurrency=1))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_unreachable_server_is_a_one_line_launch_error(tmp_path: Path, protocol: str) -> None:
    endpoint = f"127.0.0.1:{closed_port()}"
    lau = launcher(
        tmp_path,
        client_protocol=protocol,
        client_max_retries=2,
        triton_http_endpoint=endpoint,
        triton_grpc_endpoint=endpoint,
    )
    start = time.monotonic()
    with pytest.raises(LaunchError) as err:
        lau.start()
    message = str(err.value)
    assert "\n" not in message and endpoint in message and f"triton_{protocol}_endpoint" in message
    assert "after 2 tries" in message and time.monotonic() - start < 15
    lau.stop()
    lau.stop()


def test_static_facts_and_hook(tmp_path: Path) -> None:
    assert launcher(tmp_path).writes_full_variant_dirs() is False
    caps = rl.RemoteLauncher
    assert (caps.on_this_host, caps.starts_server, caps.server_only_window) == (False, False, False)
    assert (caps.serves_metrics, caps.in_process) == (True, False)
    seen: dict[str, Any] = {}
    rl.register_launchers(lambda name, factory: seen.update({name: factory}))
    assert seen == {"remote": rl.RemoteLauncher}
    override = override_config(variant({"name": "x", "max_batch_size": 4, "_cpu_only": True}))
    assert override == {"name": "add_sub", "max_batch_size": 4}


@pytest.fixture
def stub() -> Iterator[Callable[..., int]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> int:
        proc = subprocess.Popen([sys.executable, str(STUB), *args], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        return int(proc.stdout.readline().split()[1])

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def loads(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stub/loads") as response:
        return list(json.load(response))


def test_loads_variants_with_a_config_override(tmp_path: Path, stub: Callable[..., int]) -> None:
    port = stub()
    lau = launcher(
        tmp_path, triton_http_endpoint=f"127.0.0.1:{port}", triton_metrics_url="http://m:8002/metrics"
    )
    lau.start()
    v1 = variant(
        {"max_batch_size": 16, "dynamic_batching": {}, "instance_group": [{"count": 2, "kind": "KIND_CPU"}]}
    )
    endpoints = lau.ensure(v1, tmp_path / "omr" / "add_sub_config_1", rc(v1))
    assert endpoints == Endpoints(
        http=f"127.0.0.1:{port}",
        grpc="localhost:8001",
        metrics_url="http://m:8002/metrics",
        protocol="http",
        model_name="add_sub",
        triton_metrics=True,
    )
    lau.ensure(v1, tmp_path, rc(v1))  # same config: no reload
    v2 = variant({"max_batch_size": 4}, name="add_sub_config_2")
    lau.ensure(v2, tmp_path, rc(v2))
    sent = loads(port)
    assert [s["name"] for s in sent] == ["add_sub", "add_sub"] and lau.model_loads == 2
    assert json.loads(sent[0]["parameters"]["config"]) == {"name": "add_sub", **v1.config}
    assert json.loads(sent[1]["parameters"]["config"]) == {"name": "add_sub", "max_batch_size": 4}
    lau.stop()


def test_refused_load_carries_the_servers_message(tmp_path: Path, stub: Callable[..., int]) -> None:
    port = stub()
    lau = launcher(tmp_path, triton_http_endpoint=f"127.0.0.1:{port}")
    bad = variant({"max_batch_size": 5000}, name="add_sub_config_9")
    with pytest.raises(ModelLoadError) as err:
        lau.ensure(bad, tmp_path, rc(bad))
    assert "\n" not in str(err.value) and "add_sub_config_9" in str(err.value)
    assert "max_batch_size exceeds the limit of 1000" in str(err.value) and lau.model_loads == 0


def test_warns_once_about_other_loaded_models(
    tmp_path: Path, stub: Callable[..., int], caplog: pytest.LogCaptureFixture
) -> None:
    port = stub("--other-model", "resnet50")
    lau = launcher(tmp_path, triton_http_endpoint=f"127.0.0.1:{port}")
    lau.start()
    v = variant({"max_batch_size": 8})
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        lau.ensure(v, tmp_path, rc(v))
        lau.ensure(variant({"max_batch_size": 2}), tmp_path, rc(v))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "resnet50" in warnings[0] and "add_sub" not in warnings[0].split(":")[-1]


def test_reload_model_disable_loads_nothing(tmp_path: Path, stub: Callable[..., int]) -> None:
    port = stub("--model", "add_sub")
    lau = launcher(
        tmp_path, triton_http_endpoint=f"127.0.0.1:{port}", reload_model_disable=True, client_max_retries=1
    )
    v = variant({"max_batch_size": 8})
    assert lau.ensure(v, tmp_path, rc(v)).model_name == "add_sub"
    assert loads(port) == [] and lau.model_loads == 0
    missing = ConfigVariant("other", {"max_batch_size": 8}, name="other_config_0")
    with pytest.raises(ModelLoadError, match="reload_model_disable"):
        lau.ensure(missing, tmp_path, RunConfig("other", missing, LoadSpec(concurrency=1)))


def test_grpc_load_against_a_real_mlserver(tmp_path: Path) -> None:
    """A real MLServer (contrib launcher) plays the user's remote server; loads go through gRPC."""
    if reason := real_server_available():
        pytest.skip(reason)
    launcher_mod = pytest.importorskip("modelyzer_mlserver.launcher")
    from modelyzer.plugins.codecs.pbtxt import PbtxtCodec

    model_dir = QUICK_START / "model_repository" / "add_sub"
    base = PbtxtCodec().read(model_dir / "config.pbtxt")
    owner_config = make_config(client_protocol="grpc", client_max_retries=60, triton_server_path=None,
                               triton_output_path=None)  # fmt: skip
    owner = launcher_mod.MLServerLauncher(owner_config, RunContext(tmp_path, tmp_path / "omr"))
    try:
        owner.start()
        v0 = variant(base, name="add_sub_config_default")
        served = owner.ensure(v0, model_dir, rc(v0))
        lau = launcher(tmp_path, client_protocol="grpc", triton_grpc_endpoint=served.grpc,
                       triton_http_endpoint=served.http, triton_metrics_url=served.metrics_url)  # fmt: skip
        lau.start()
        v1 = variant({**base, "max_batch_size": 4})
        endpoints = lau.ensure(v1, model_dir, rc(v1))
        assert endpoints.grpc == served.grpc and endpoints.model_name == "add_sub" and lau.model_loads == 1
        assert lau.repository.client.is_model_ready("add_sub")
        lau.stop()
    finally:
        owner.stop()
