"""What an agent executes with: the profile config on the wire, its slots, and one worker thread per slot.

The controller sends `wire_config(config)`: the keys the user set that matter where RunConfigs execute (not
the search, ranking or agent keys), plus the profiled model names. The agent rebuilds a `ProfileConfig` with
`agent_config()` (`config_from_dict(..., check_paths=False)`, its own `--set KEY=VALUE` overrides last), so
paths in it (model repository, replay DB) must exist on the agent host, or be overridden there.

Each slot (one per selected GPU, or `--slots N` CPU slots) is a `SlotWorker`: a thread with its own
in-process executor (`plugins/executors/local.py`, parts chosen by `kernel.assembly`) in its own work
directory `<workdir>/slot-<i>`, restricted to its GPU. It is built, and its server started, as soon as the
controller's config arrives (so servers boot while the controller waits for other agents), and then reports
the slot ready (`on_ready`: the controller leaves it alone until then); it — and so the
slot's server — is kept for the next RunConfig, and rebuilt only when the controller's config changes. A failure to launch or to build
the config becomes a `failed` Measurement carrying the reason, never a crashed agent.
"""

from __future__ import annotations

import logging
import queue
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel import registry
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.config_fields import FIELDS
from modelyzer.kernel.errors import LaunchError, ModelyzerError
from modelyzer.kernel.gpus import found_gpus, select_gpus
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import STATUS_FAILED, GpuDevice, Measurement, RunConfig
from modelyzer.kernel.repository import prepare_output_repository
from modelyzer.plugins.agents.protocol import SlotInfo
from modelyzer.plugins.executors.local import InProcessExecutor

log = logging.getLogger("modelyzer")

#: keys the agents do not need (search, ranking, reports, the controller's own agent settings, its paths)
CONTROLLER_ONLY = frozenset({
    "config_file", "checkpoint_directory", "export_path", "results_db", "profile_models", "bls_composing_models",
    "ensemble_composing_models", "objectives", "constraints", "weighting", "latency_budget", "min_throughput",
    "num_configs_per_model", "num_top_model_configs", "report_model_configs", "plots", "output_formats",
    "output_model_repository_path", "override_output_model_repository", "agents", "min_agents", "agent_keys",
    "insecure", "gpus",  # an agent's GPUs are its own `--gpus`
})
#: keys of a server on the agent host that several slots must not share (a launcher that `starts_server`)
PER_SERVER_KEYS = ("triton_http_endpoint", "triton_grpc_endpoint", "triton_metrics_url", "triton_output_path")


def wire_config(config: ProfileConfig) -> dict[str, Any]:
    """The JSON-able config the controller sends agents (see the module docstring)."""
    values = config.to_dict()
    known = FIELDS.keys() | config.plugin_settings.keys()
    out = {k: values[k] for k in sorted(config.user_set)
           if k in known and k not in CONTROLLER_ONLY and values.get(k) is not None}
    out["profile_models"] = list(config.profile_models)
    return out


def agent_config(values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> ProfileConfig:
    """The agent's ProfileConfig: the controller's values, then the agent's own overrides."""
    return config_from_dict({**values, **(overrides or {})}, check_paths=False)


# --- capabilities -----------------------------------------------------------------------------------------------
def _probe() -> tuple[ProfileConfig, RunContext]:
    config = config_from_dict({"profile_models": ["agent-probe"]}, check_paths=False)
    scratch = Path(tempfile.gettempdir())
    return config, RunContext(export_path=scratch, output_model_repository=scratch)


def discover_slots(gpus: str | None = "all", slots: int | None = None) -> tuple[SlotInfo, ...]:
    """One slot per selected GPU (`gpus`: `all`, `none`, or UUIDs/indices, comma-separated), else `slots` CPU slots."""
    devices: list[GpuDevice] = []
    if gpus and gpus.strip().lower() not in ("none", "[]", ""):
        config, context = _probe()
        devices = select_gpus([t for t in gpus.split(",") if t.strip()], found_gpus(config, context))
    if devices:
        if slots is not None and slots != len(devices):
            log.warning("--slots %d ignored: this host has %d selected GPU(s), one slot each", slots, len(devices))
        return tuple(SlotInfo(i, d.uuid, d.name, d.index, d.total_memory_mb) for i, d in enumerate(devices))
    return tuple(SlotInfo(i) for i in range(max(slots or 1, 1)))


def capabilities() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(launch modes, load generators) registered on this host."""
    return tuple(sorted(registry.registry("launchers"))), tuple(sorted(registry.registry("load_generators")))


def slot_executor(config: ProfileConfig, slot: SlotInfo, workdir: Path, slot_count: int) -> InProcessExecutor:
    """The in-process executor of one slot: its own directory, its own GPU, its own server ports."""
    base = workdir / f"slot-{slot.index}"
    repo = base / "output_model_repository"
    changes: dict[str, Any] = {"export_path": base, "output_model_repository_path": repo,
                               "override_output_model_repository": True}
    launcher = registry.get("launchers", config.triton_launch_mode).factory
    starts_server = isinstance(launcher, type) and issubclass(launcher, Launcher) and launcher.starts_server
    if slot_count > 1 and starts_server:
        shared = set(PER_SERVER_KEYS) & config.user_set
        if shared:
            log.warning("slot %d: %s ignored: each slot runs its own server on free ports", slot.index,
                        ", ".join(sorted(shared)))
        changes["user_set"] = config.user_set - set(PER_SERVER_KEYS)
        changes["triton_output_path"] = None
    cfg = attrs.evolve(config, **changes)
    base.mkdir(parents=True, exist_ok=True)
    prepare_output_repository(repo, True)
    gpus = [GpuDevice(slot.gpu, slot.gpu_name, slot.gpu_index, slot.total_memory_mb)] if slot.gpu else []
    context = RunContext(export_path=base, output_model_repository=repo, gpus=gpus)
    return InProcessExecutor(cfg, context)  # the slot's GPU is already in its context


# --- workers ------------------------------------------------------------------------------------------------------
@attrs.frozen
class Job:
    run_config: RunConfig
    config: ProfileConfig | None
    config_id: str
    config_error: str = ""


@attrs.frozen
class _Prepare:
    config: ProfileConfig
    config_id: str


_STOP_SERVERS = object()
_EXIT = object()


class SlotRunner:
    """One slot's executor, kept (and so its server warm) from one RunConfig to the next and rebuilt only for
    another config; every failure becomes a `failed` Measurement whose error starts with `owner` ("agent NAME",
    or a Ray actor's). Measurements carry `agent` as theirs. Not thread-safe: one caller at a time (the agent's
    slot thread, a Ray actor)."""

    def __init__(self, slot: SlotInfo, workdir: Path, slot_count: int, agent: str, owner: str = "") -> None:
        self.slot = slot
        self.workdir = workdir
        self.slot_count = slot_count
        self.agent = agent
        self.owner = owner or f"agent {agent}"
        self.host = socket.gethostname()
        self._executor: InProcessExecutor | None = None
        self._config_id = ""
        self._counters = {"server_starts": 0, "model_loads": 0}

    def warm(self, config: ProfileConfig, config_id: str) -> None:
        """Build the executor and start it (server up, replay index built) before the first RunConfig; a failure
        is logged and left to the first RunConfig, which retries and reports it."""
        try:
            self._executor_for(config, config_id).start()
        except Exception as err:  # noqa: BLE001 - the first RunConfig retries and reports the error
            log.warning("slot %d: could not start: %s", self.slot.index, err)
            self.drop()

    def measure(self, rc: RunConfig, config: ProfileConfig | None, config_id: str, config_error: str = "") -> Measurement:
        """`rc` measured with the slot's executor for `config`; never raises (but KeyboardInterrupt)."""
        started = time.time()
        try:
            if config is None:
                raise ModelyzerError(config_error or "no config from the controller")
            executor = self._executor_for(config, config_id)
            executor.start()
            m = executor.run_one(rc)
        except ModelyzerError as err:
            if isinstance(err, LaunchError):
                self.drop()
            m = Measurement(rc.key, STATUS_FAILED, error=f"{self.owner}: {err}", started_at=started,
                            finished_at=time.time())
        except Exception as err:  # noqa: BLE001 - a slot must survive any plugin error
            log.exception("slot %d: %s failed", self.slot.index, rc.describe())
            self.drop()
            m = Measurement(rc.key, STATUS_FAILED, error=f"{self.owner}: {type(err).__name__}: {err}",
                            started_at=started, finished_at=time.time())
        return attrs.evolve(m, host=self.host, agent=self.agent, gpu=self.slot.gpu)

    def counters(self) -> dict[str, int]:
        """Server starts and model loads of every executor this slot had."""
        out = dict(self._counters)
        executor = self._executor
        if executor is not None:
            for name, value in executor.counters().items():
                out[name] = out.get(name, 0) + value
        return out

    def drop(self) -> None:
        """Stop the slot's server and forget its executor (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        for name, value in executor.counters().items():
            self._counters[name] = self._counters.get(name, 0) + value
        try:
            executor.stop()
        except Exception as err:  # noqa: BLE001 - stopping must not kill the slot
            log.warning("slot %d: stopping the server failed: %s", self.slot.index, err)

    def _executor_for(self, config: ProfileConfig, config_id: str) -> InProcessExecutor:
        if self._executor is None or config_id != self._config_id:
            self.drop()
            self._executor = slot_executor(config, self.slot, self.workdir, self.slot_count)
            self._config_id = config_id
        return self._executor


class SlotWorker:
    """One slot's thread: runs one RunConfig at a time with the slot's `SlotRunner` (see the module docstring)."""

    def __init__(self, slot: SlotInfo, workdir: Path, slot_count: int, agent_name: str,
                 on_done: Callable[[int, Measurement], None],
                 on_ready: Callable[[int], None] = lambda slot: None) -> None:
        self.slot = slot
        self.on_done = on_done
        self.on_ready = on_ready
        self.runner = SlotRunner(slot, workdir, slot_count, agent_name)
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"modelyzer-slot-{slot.index}", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def prepare(self, config: ProfileConfig, config_id: str) -> None:
        """Build the slot's executor and start its server now (a welcome), not at the first RunConfig."""
        self._jobs.put(_Prepare(config, config_id))

    def stop_servers(self) -> None:
        """Stop the slot's server after the current RunConfig (the profile is over)."""
        self._jobs.put(_STOP_SERVERS)

    def close(self, timeout: float = 30.0) -> None:
        self._jobs.put(_EXIT)
        self._thread.join(timeout)

    def counters(self) -> dict[str, int]:
        return self.runner.counters()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _EXIT or job is _STOP_SERVERS:
                self.runner.drop()
                if job is _EXIT:
                    return
                continue
            if isinstance(job, _Prepare):
                try:
                    self.runner.warm(job.config, job.config_id)
                finally:
                    self.on_ready(self.slot.index)
                continue
            self.on_done(self.slot.index, self.runner.measure(job.run_config, job.config, job.config_id,
                                                              job.config_error))


def slot_workers(slots: Sequence[SlotInfo], workdir: Path, agent_name: str,
                 on_done: Callable[[int, Measurement], None],
                 on_ready: Callable[[int], None] = lambda slot: None) -> dict[int, SlotWorker]:
    return {s.index: SlotWorker(s, workdir, len(slots), agent_name, on_done, on_ready) for s in slots}


__all__ = ["CONTROLLER_ONLY", "Job", "SlotRunner", "SlotWorker", "agent_config", "capabilities", "discover_slots",
           "slot_executor", "slot_workers", "wire_config"]
