"""GPU discovery and selection, and the CPU-only rule (kernel/gpus.py).

The no-GPU path runs for real here (nvidia-ml-py is installed, there is no NVIDIA driver). GPU hosts are faked
only at the pynvml function boundary (``FakeNvml`` from tests/plugins/collectors/test_nvml.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.gpus import (
    CPU_SERVER_MESSAGE,
    cpu_instance_groups,
    cpu_only_server,
    cpu_only_without_gpus,
    discover_gpus,
    found_gpus,
    resolve_cpu_only,
    select_gpus,
)
from modelyzer.kernel.interfaces import Launcher
from modelyzer.kernel.models import GpuDevice, ModelSpec
from modelyzer.kernel.store import Store
from tests.kernel.assembly_support import FOUND, M0, M2, A, B, context_for, nvml, profile_config, warnings_of
from tests.plugins.collectors.test_nvml import FakeGpu

__all__ = ["nvml"]  # a fixture


# --- selection -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (None, FOUND),
        (["all"], FOUND),
        ("ALL", FOUND),
        ([], []),
        (["GPU-bbbb"], [B]),
        (["gpu-BBBB", "0"], [B, A]),
        (["1"], [B]),
        (["2"], [M0, M2]),  # an index selects every MIG instance of that GPU
        (["MIG-c2"], [M2]),
        (["0", "GPU-aaaa", 0], [A]),  # duplicates collapse
    ],
)
def test_select_gpus(requested: Any, expected: list[GpuDevice]) -> None:
    assert select_gpus(requested, FOUND) == expected


def test_unknown_gpu_is_a_one_line_config_error_listing_what_was_found() -> None:
    with pytest.raises(ConfigError) as err:
        select_gpus(["GPU-nope"], FOUND)
    message = str(err.value)
    assert message.startswith("gpus: no GPU 'GPU-nope' on this host; GPUs found: 0 GPU-aaaa (A100); 1 GPU-bbbb")
    assert "\n" not in message and err.value.exit_code == 2
    with pytest.raises(ConfigError, match=r"gpus: no GPU '7' on this host; GPUs found: 0 GPU-aaaa"):
        select_gpus(["7"], FOUND)
    with pytest.raises(ConfigError, match=r"GPUs found: none \(no NVIDIA GPU found\) \(a remote server.*dcgm_disable"):
        select_gpus(["0"], [], on_this_host=False)


def test_discover_gpus_asks_the_collectors_and_records_the_selection(tmp_path: Path, nvml: Any) -> None:
    nvml()
    context = context_for(tmp_path)
    store = Store(":memory:")
    selected = discover_gpus(profile_config(tmp_path, gpus=["1", "MIG-c0"]), context, store=store)
    assert [d.uuid for d in selected] == ["GPU-bbbb", "MIG-c0"] and context.gpus == selected
    assert context.gpu_uuids == ["GPU-bbbb", "MIG-c0"]
    assert {r.uuid: (r.name, r.total_memory) for r in store.gpus()} == {
        "GPU-bbbb": ("NVIDIA A100-SXM4-40GB", 40_000_000_000),
        "MIG-c0": ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", 5_000_000_000),
    }
    assert [d.uuid for d in discover_gpus(profile_config(tmp_path), context)] == ["GPU-aaaa", "GPU-bbbb", "MIG-c0", "MIG-c2"]
    assert discover_gpus(profile_config(tmp_path, gpus=[]), context) == [] and context.gpus == []
    assert discover_gpus(profile_config(tmp_path, triton_launch_mode="remote", dcgm_disable=True), context) == []
    with pytest.raises(ConfigError, match="gpus: no GPU 'GPU-x'.*0 GPU-aaaa"):
        discover_gpus(profile_config(tmp_path, gpus=["GPU-x"]), context)


def test_discovery_survives_a_collector_that_raises(tmp_path: Path, nvml: Any, register_plugin: Any) -> None:
    from modelyzer.kernel.hookspecs import hookimpl

    class Broken:
        def __init__(self, config: Any, context: Any) -> None:
            raise RuntimeError("no such device")

    class Plugin:
        @hookimpl
        def register_metric_collectors(self, register: Any) -> None:
            register("broken", Broken)

    register_plugin(Plugin(), "broken-collector")
    nvml([FakeGpu("GPU-aaaa")])
    assert [d.uuid for d in found_gpus(profile_config(tmp_path), context_for(tmp_path))] == ["GPU-aaaa"]


# --- the real no-GPU path ------------------------------------------------------------------------------
def test_no_switch_on_remote_servers_or_with_gpus(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    remote = profile_config(tmp_path, triton_launch_mode="remote")
    elsewhere = context_for(tmp_path)
    elsewhere.server_on_this_host = False  # what the remote launcher declares (on_this_host)
    assert resolve_cpu_only(remote, elsewhere) is remote
    local = profile_config(tmp_path)
    assert resolve_cpu_only(local, context_for(tmp_path, [A])) is local
    assert warnings_of(caplog) == []


def test_gpus_empty_is_cpu_only_without_the_no_gpu_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modelyzer")
    config = resolve_cpu_only(profile_config(tmp_path, gpus=[]), context_for(tmp_path))
    assert config.models[0].cpu_only and warnings_of(caplog) == []
    assert "gpus is empty: profiling CPU-only" in caplog.text


@pytest.mark.parametrize(
    ("instance_group", "cpu_only"),
    [
        (None, True),
        ([{"count": [1, 2]}], True),  # no kind: becomes KIND_CPU
        ([{"kind": "KIND_GPU", "count": 1}], False),  # explicit kind wins
        ([{"kind": "KIND_CPU", "count": 1}], True),
        ([[{"kind": "KIND_GPU", "count": 1}], [{"count": 2}]], True),  # one group without a kind
        ([{"kind": ["KIND_CPU", "KIND_GPU"], "count": 1}], False),
    ],
)
def test_explicit_instance_kind_wins(tmp_path: Path, instance_group: Any, cpu_only: bool) -> None:
    settings: dict[str, Any] = {}
    if instance_group is not None:
        settings["model_config_parameters"] = {"instance_group": instance_group}
    config = profile_config(tmp_path, profile_models={"m": settings})
    resolved = resolve_cpu_only(config, context_for(tmp_path))
    assert resolved.models[0].cpu_only is cpu_only
    assert cpu_only_without_gpus(ModelSpec("x", cpu_only=True)) is True




# --- device truth: a KIND_GPU instance group where nothing runs on a GPU ---------------------------------------
class _CpuServer(Launcher):
    """A launcher declaring a CPU-only server (`devices() == []`), as the contrib MLServer one does."""

    def devices(self) -> list[GpuDevice]:
        return []

    def start(self) -> None: ...

    def ensure(self, variant: Any, variant_dir: Path, run_config: Any) -> Any: ...

    def stop(self) -> None: ...


def test_a_launcher_declaring_no_gpu_is_a_cpu_only_server(tmp_path: Path) -> None:
    assert cpu_only_server(_CpuServer()) is True
    assert cpu_only_server(None) is False
    context = context_for(tmp_path)
    assert discover_gpus(profile_config(tmp_path), context, _CpuServer()) == []
    assert context.cpu_only_server is True


@pytest.mark.parametrize("with_gpus", [False, True])
def test_on_a_cpu_only_server_an_explicit_kind_gpu_becomes_kind_cpu_with_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, with_gpus: bool) -> None:
    groups = [{"kind": "KIND_GPU", "count": [1, 2], "gpus": [0]}]
    config = profile_config(tmp_path, profile_models={"m": {"model_config_parameters": {"instance_group": groups}}})
    context = context_for(tmp_path, [A] if with_gpus else [])
    context.cpu_only_server = True
    resolved = resolve_cpu_only(config, context)
    [spec] = resolved.models
    assert spec.cpu_only is True
    assert spec.model_config_parameters["instance_group"] == [{"kind": "KIND_CPU", "count": [1, 2]}]
    assert warnings_of(caplog) == [
        CPU_SERVER_MESSAGE,
        "model m: model_config_parameters.instance_group asks for KIND_GPU but the model runs on the CPU here: "
        "profiled as KIND_CPU",
    ]


def test_without_gpus_on_a_server_that_can_use_them_the_explicit_kind_still_wins(tmp_path: Path) -> None:
    """Triton on a host without GPUs refuses KIND_GPU with its own error (a failed measurement): never mislabelled."""
    groups = [{"kind": "KIND_GPU", "count": 1}]
    config = profile_config(tmp_path, profile_models={"m": {"model_config_parameters": {"instance_group": groups}}})
    [spec] = resolve_cpu_only(config, context_for(tmp_path)).models
    assert spec.cpu_only is False and spec.model_config_parameters["instance_group"] == groups


def test_a_cpu_only_model_never_keeps_a_kind_gpu_group(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """cpu_only: true on a GPU host, KIND_GPU in its parameters (one group of a sweep, a kind list): KIND_CPU."""
    params = {"instance_group": [[{"kind": "KIND_GPU", "count": 1}], [{"kind": ["KIND_CPU", "KIND_GPU"], "count": 2}]]}
    config = profile_config(tmp_path, profile_models={"m": {"cpu_only": True, "model_config_parameters": params}})
    [spec] = resolve_cpu_only(config, context_for(tmp_path, [A])).models
    assert spec.model_config_parameters["instance_group"] == [[{"kind": "KIND_CPU", "count": 1}],
                                                              [{"kind": "KIND_CPU", "count": 2}]]
    assert len(warnings_of(caplog)) == 1


def test_a_cpu_only_models_own_config_pbtxt_kind_gpu_runs_as_kind_cpu(caplog: pytest.LogCaptureFixture) -> None:
    base = {"name": "m", "instance_group": [{"kind": "KIND_GPU", "count": 2, "gpus": [0, 1]}, {"kind": "KIND_CPU"}]}
    cpu = cpu_instance_groups(ModelSpec("m", cpu_only=True), base)
    assert cpu["instance_group"] == [{"kind": "KIND_CPU", "count": 2}, {"kind": "KIND_CPU"}]
    assert warnings_of(caplog) == ["model m: config.pbtxt.instance_group asks for KIND_GPU but the model runs on the "
                                   "CPU here: profiled as KIND_CPU"]
    assert cpu_instance_groups(ModelSpec("m"), base) is base  # a model that may use GPUs: as it is
    plain = {"name": "m", "instance_group": [{"kind": "KIND_CPU", "count": 1}]}
    assert cpu_instance_groups(ModelSpec("m", cpu_only=True), plain) is plain
