"""plugins/agents/slots.py: the config on the wire, slot discovery, per-slot executors and worker threads."""

from __future__ import annotations

import logging
import queue
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import MetricCollector
from modelyzer.kernel.models import STATUS_FAILED, Endpoints, GpuDevice, Measurement, Metric
from modelyzer.kernel.store import Store
from modelyzer.plugins.agents.protocol import SlotInfo
from modelyzer.plugins.agents.slots import (
    CONTROLLER_ONLY,
    Job,
    SlotWorker,
    agent_config,
    discover_slots,
    slot_executor,
    wire_config,
)
from tests.integration import bench_agents


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("replay")
    return bench_agents().make_fixture(root, instances=[1, 2], batch_sizes=[1, 2], concurrency=[1, 2])  # type: ignore[no-any-return]


def replay_config(values: dict[str, Any], recording: Path, **extra: Any) -> Any:
    return config_from_dict({**values, "triton_launch_mode": "replay", "replay_results_db": str(recording),
                             "agents": "tcp://127.0.0.1:5555", "insecure": True, **extra})


def test_the_wire_config_has_what_agents_need_and_nothing_of_the_controller(replay: Any) -> None:
    values, recording = replay
    wired = wire_config(replay_config(values, recording, replay_duration=0.25, latency_budget=10))
    assert wired["triton_launch_mode"] == "replay" and wired["replay_duration"] == 0.25
    assert wired["replay_results_db"] == str(recording) and wired["profile_models"] == ["bench_model"]
    assert not set(wired) & (CONTROLLER_ONLY - {"profile_models"})
    assert "run_config_search_max_concurrency" not in wired  # defaults are not sent


def test_the_agent_rebuilds_the_config_with_its_own_overrides(replay: Any) -> None:
    values, recording = replay
    wired = wire_config(replay_config(values, recording))
    config = agent_config(wired, {"replay_duration": "0.5"})
    assert config.triton_launch_mode == "replay" and config.replay_duration == 0.5
    assert config.model_repository == Path(values["model_repository"])
    with pytest.raises(ConfigError, match="replay_duration"):
        agent_config(wired, {"replay_duration": "soon"})


def test_cpu_hosts_offer_cpu_slots() -> None:
    assert discover_slots("none", 3) == (SlotInfo(0), SlotInfo(1), SlotInfo(2))
    assert discover_slots("all") == (SlotInfo(0),)  # no GPU on this machine: one CPU slot


class FakeGpus(MetricCollector):
    """Two GPUs at the hardware boundary (no NVML here)."""

    def __init__(self, config: Any, context: Any) -> None:
        pass

    def enabled(self) -> bool:
        return False

    def devices(self) -> list[GpuDevice]:
        return [GpuDevice("GPU-aaaa", "A100", 0, 40000), GpuDevice("GPU-bbbb", "A100", 1, 40000)]

    def start(self, endpoints: Endpoints) -> None:
        pass

    def stop(self) -> list[Metric]:
        return []


class FakeGpuPlugin:
    @hookimpl
    def register_metric_collectors(self, register: Any) -> None:
        register("fake_gpus", FakeGpus)


def test_gpu_hosts_offer_one_slot_per_selected_gpu(register_plugin: Any, caplog: pytest.LogCaptureFixture) -> None:
    register_plugin(FakeGpuPlugin(), "fake-gpus")
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        slots = discover_slots("all", 4)
    assert [(s.index, s.gpu, s.gpu_index) for s in slots] == [(0, "GPU-aaaa", 0), (1, "GPU-bbbb", 1)]
    assert "--slots 4 ignored" in caplog.text
    assert [s.gpu for s in discover_slots("1")] == ["GPU-bbbb"]
    with pytest.raises(ConfigError, match="no GPU '7'"):
        discover_slots("7")


def test_each_slot_has_its_own_directory_gpu_and_ports(replay: Any, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    values, recording = replay
    config = agent_config(wire_config(replay_config(values, recording)))
    executor = slot_executor(config, SlotInfo(1, "GPU-x", "A100", 3), tmp_path, 2)
    assert executor.context.export_path == tmp_path / "slot-1"
    assert executor.context.gpu_uuids == ["GPU-x"]
    assert (tmp_path / "slot-1" / "output_model_repository").is_dir()
    local = agent_config({"profile_models": ["m"], "triton_http_endpoint": "localhost:9000"})
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        shared = slot_executor(local, SlotInfo(0), tmp_path, 2)
    assert "triton_http_endpoint" not in shared.config.user_set and "free ports" in caplog.text


def test_a_worker_runs_run_configs_and_turns_errors_into_failed_measurements(replay: Any, tmp_path: Path) -> None:
    values, recording = replay
    config = agent_config(wire_config(replay_config(values, recording)))
    done: queue.Queue[tuple[int, Measurement]] = queue.Queue()
    worker = SlotWorker(SlotInfo(0), tmp_path, 1, "agent-x", lambda slot, m: done.put((slot, m)))
    store = Store(recording)
    rcs = [r.run_config for r in store.results()][:2]
    store.close()
    try:
        worker.submit(Job(rcs[0], config, "c1"))
        worker.submit(Job(rcs[1], None, "c1", "the controller's config does not load here: boom"))
        slot, ok = done.get(timeout=30)
        _, failed = done.get(timeout=30)
    finally:
        worker.close()
    assert slot == 0 and ok.ok and ok.run_config_key == rcs[0].key and ok.agent == "agent-x" and ok.host
    assert failed.status == STATUS_FAILED and "boom" in (failed.error or "")
    assert worker.counters()["model_loads"] >= 1
