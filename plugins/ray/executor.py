"""`RayExecutor`: the kernel Executor that runs RunConfigs on slot actors of a Ray cluster (`executor: ray`).

- **Slots.** One actor per slot (`actor.SlotActor`): per GPU of the cluster (`num_gpus=1`), else per unit of the
  `ray_slot_resource` custom resource, else one (one CPU); `ray_slots` sets the count. Each actor keeps its
  server warm from one RunConfig to the next — server reuse as on agents. Actors start (and their servers boot)
  when the profile starts; RunConfigs go to whichever actor is idle.
- **Exactly once.** Results come back to this process and the engine stores each before the next is taken;
  a RunConfig whose actor died mid-measurement (its worker or node lost) goes to another actor, a fresh one
  replacing the dead, at most `ray_max_task_retries` more times, then is stored as failed with the reason.
  Results are checked like agents' (`agents.validate`) before they reach the store. Resume is the engine's: a
  rerun measures only what the results DB lacks.
- **Stopping.** `stop()` (also on Ctrl-C) asks every actor to stop its server — concurrently with a measurement
  in flight (`max_concurrency=2`) — then kills the actors; a Ray instance this executor started is shut down.
- **Wire.** Only the config (the agents' wire keys), RunConfigs and Measurements cross, as plain dicts; the model
  repository and any paths in the config are read on the actor's node (shared storage).

Ray is imported here only, when the executor is built: without it, one line says how to install it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from modelyzer.kernel import registry
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, ModelyzerError
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import STATUS_FAILED, GpuDevice, Measurement, RunConfig, converter, stable_hash
from modelyzer.plugins.agents.slots import wire_config
from modelyzer.plugins.agents.validate import check_measurement, required_metrics
from modelyzer.plugins.ray.actor import SlotActor
from modelyzer.plugins.ray.settings import RaySettings

log = logging.getLogger("modelyzer")

WAIT_SECONDS = 0.5  # ray.wait's timeout: how often Ctrl-C and dead actors are noticed while waiting
READY_TIMEOUT = 300.0  # seconds for the first slot actor to be ready (its server started)
STOP_TIMEOUT = 30.0  # seconds the actors get to stop their servers


def import_ray() -> Any:
    """The `ray` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("executor ray: the ray package is not installed; pip install 'modelyzer[ray]' (or "
                          "ray>=2.40), or use another executor") from None
    return ray


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """One line when a `host:port` Ray address answers no TCP connection (instead of Ray's long retries)."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"ray_address: {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379) or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConfigError(f"ray_address: the Ray cluster at {address} cannot be reached ({err.strerror or err}); "
                          "start it there with `ray start --head`, or fix ray_address") from None


@attrs.define
class Plan:
    """How many slot actors and what each one needs from Ray."""

    count: int
    options: dict[str, Any]
    kind: str  # "GPU", the custom resource's name, or "CPU"


def plan_slots(resources: dict[str, float], settings: RaySettings) -> Plan:
    """The slot actors for a cluster offering `resources` in total (see the module docstring)."""
    gpus = int(resources.get("GPU", 0))
    units = int(resources.get(settings.ray_slot_resource, 0))
    if gpus:
        plan = Plan(gpus, {"num_gpus": 1, "num_cpus": 0}, "GPU")
    elif units:
        plan = Plan(units, {"num_cpus": 0, "resources": {settings.ray_slot_resource: 1}}, settings.ray_slot_resource)
    else:
        plan = Plan(1, {"num_cpus": 1}, "CPU")
    if settings.ray_slots > 0:
        plan.count = settings.ray_slots
    return plan


@attrs.define(eq=False)
class Slot:
    """One slot actor as the controller sees it."""

    index: int
    handle: Any
    ready_ref: Any = None  # its warm-up call, until it answered
    info: dict[str, Any] = attrs.field(factory=dict)
    busy: bool = False
    dead: bool = False
    counters: dict[str, int] = attrs.field(factory=dict)  # its latest, as its last measurement reported them


class RayExecutor(Executor):
    """Runs RunConfigs on Ray slot actors (see the module docstring)."""

    def __init__(self, config: ProfileConfig, context: RunContext | None = None) -> None:
        self.ray = import_ray()
        self.config = config
        self.context = context
        self.settings = config.settings(RaySettings)
        self.wired = wire_config(config)
        self.config_id = stable_hash(self.wired)
        self.required = required_metrics(config)
        self._slots: list[Slot] = []
        self._plan: Plan | None = None
        self._own_ray = False
        self._connected = False
        self._counters: Counter[str] = Counter()
        self.lost = 0  # measurements lost with their actor (retried or failed)

    # --- Executor ------------------------------------------------------------------------------------------------
    @property
    def slots(self) -> int:  # type: ignore[override]
        return max(sum(1 for s in self._slots if not s.dead), 1)

    def offered_gpus(self) -> list[GpuDevice]:
        """Start the slot actors; their GPUs (none on a CPU cluster) are the profile's."""
        launcher = registry.get("launchers", self.config.triton_launch_mode).factory
        if self.context is not None and isinstance(launcher, type) and issubclass(launcher, Launcher):
            self.context.server_on_this_host = launcher.on_this_host
        self.start()
        return [converter.structure(s.info["gpu"], GpuDevice) for s in self._slots if s.info.get("gpu")]

    def check(self) -> list[str]:
        """The cluster's address answers (Ray is installed: the executor was built)."""
        address = self.settings.ray_address
        check_reachable(address)
        if not address:
            return ["ray: a private Ray instance will be started on this host for the profile"]
        return [f"ray: the cluster at {address} answers" if address != "auto" else
                "ray: the cluster this host belongs to (auto) is found when the profile starts"]

    def start(self) -> None:
        """Connect to (or start) Ray, create the slot actors and wait until one is ready (idempotent)."""
        if self._slots:
            return
        self._connect()
        assert self._plan is not None
        log.info("ray: %d slot actor(s), one %s each", self._plan.count, self._plan.kind)
        self._slots = [self._new_slot(i) for i in range(self._plan.count)]
        started = time.monotonic()
        while not any(s.info for s in self._slots):
            self._poll_ready(WAIT_SECONDS)
            if time.monotonic() - started > READY_TIMEOUT:
                raise ModelyzerError(f"ray: no slot actor was scheduled within {READY_TIMEOUT:g} s; the cluster "
                                     f"lacks free {self._plan.kind} resources (see `ray status`)")

    def execute(self, run_configs: Sequence[RunConfig]) -> Iterator[tuple[RunConfig, Measurement]]:
        self.start()
        todo = deque(run_configs)
        attempts: Counter[str] = Counter()
        running: dict[Any, tuple[RunConfig, Slot]] = {}
        while todo or running:
            for slot in self._slots:
                if todo and slot.info and not slot.busy and not slot.dead:
                    rc = todo.popleft()
                    slot.busy = True
                    running[slot.handle.measure.remote(converter.unstructure(rc))] = (rc, slot)
            warming = [s.ready_ref for s in self._slots if s.ready_ref is not None]
            done, _ = self.ray.wait([*running, *warming], num_returns=1, timeout=WAIT_SECONDS)
            for ref in done:
                if ref not in running:
                    self._poll_ready(0)
                    continue
                rc, slot = running.pop(ref)
                slot.busy = False
                measurement = self._result(ref, rc, slot)
                if measurement is None:  # its actor died: another one measures it
                    attempts[rc.key] += 1
                    if attempts[rc.key] <= self.settings.ray_max_task_retries:
                        todo.appendleft(rc)
                        continue
                    measurement = Measurement(rc.key, STATUS_FAILED, error=(
                        f"ray: lost with its slot actor {attempts[rc.key]} times (workers or nodes died)"))
                yield rc, measurement
            if not any(not s.dead for s in self._slots):
                raise ModelyzerError("ray: every slot actor died; see `ray status` and the Ray logs")

    def stop(self) -> None:
        """Stop every actor's server, kill the actors; shut Ray down when this executor started it."""
        live = [s for s in self._slots if not s.dead]
        self._slots = []
        if live:
            refs = {s.handle.stop.remote(): s for s in live}
            try:
                done, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=STOP_TIMEOUT)
                for slot in live:
                    self._counters.update(slot.counters)  # replaced by the final ones where the actor answers
                for ref in done:
                    try:
                        final = self.ray.get(ref)
                        self._counters.subtract(refs[ref].counters)
                        self._counters.update(final)
                    except Exception as err:  # noqa: BLE001 - a dead actor has nothing left to stop
                        log.debug("ray: stopping %s: %s", refs[ref].info.get("name", "an actor"), err)
            finally:
                for slot in live:
                    self.ray.kill(slot.handle, no_restart=True)
        if self._connected and self._own_ray:
            self.ray.shutdown()
            self._connected = False

    def counters(self) -> dict[str, int]:
        """Server starts and model loads: of stopped or dead actors, plus the live ones' latest (sent with each
        measurement — no call to the actors)."""
        out = Counter(self._counters)
        for slot in self._slots:
            out.update(slot.counters)
        return {"server_starts": out.get("server_starts", 0), "model_loads": out.get("model_loads", 0)}

    # --- internals -------------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        if self._connected:
            return
        address = self.settings.ray_address
        check_reachable(address)
        kwargs: dict[str, Any] = {"namespace": "modelyzer", "log_to_driver": False, "logging_level": logging.WARNING}
        if address:
            kwargs["address"] = address
        else:  # a private instance on this host, offering the slots asked for
            kwargs.update(include_dashboard=False, resources={
                self.settings.ray_slot_resource: self.settings.ray_slots or 1})
        try:
            self.ray.init(**kwargs)
        except Exception as err:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError …
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"ray_address: cannot connect to the Ray cluster at {address or 'a new local instance'}"
                              f" ({first[:200]}); start it with `ray start --head`, or fix ray_address") from None
        self._connected, self._own_ray = True, not address
        self._plan = plan_slots(self.ray.cluster_resources(), self.settings)

    def _new_slot(self, index: int) -> Slot:
        assert self._plan is not None
        actor_class = self.ray.remote(SlotActor).options(max_concurrency=2, max_restarts=0, **self._plan.options)
        handle = actor_class.remote(self.wired, self.config_id, index, self._plan.count)
        return Slot(index, handle, ready_ref=handle.ready.remote())

    def _poll_ready(self, timeout: float) -> None:
        """Take the answers of actors that finished warming up; replace those that died doing so."""
        waiting = {s.ready_ref: s for s in self._slots if s.ready_ref is not None}
        if not waiting:
            return
        done, _ = self.ray.wait(list(waiting), num_returns=len(waiting), timeout=timeout)
        for ref in done:
            slot = waiting[ref]
            slot.ready_ref = None
            try:
                slot.info = self.ray.get(ref)
                log.info("ray: slot actor %s ready on %s", slot.info.get("name"), slot.info.get("host"))
            except Exception as err:  # noqa: BLE001 - a slot that cannot even start is replaced
                log.warning("ray: slot actor %d did not start: %s", slot.index, str(err).splitlines()[0][:200])
                self._replace(slot)

    def _result(self, ref: Any, rc: RunConfig, slot: Slot) -> Measurement | None:
        """The measurement of `ref`, checked; None when its actor died (the slot is replaced)."""
        try:
            raw = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as err:
            self.lost += 1
            log.warning("ray: slot actor %s died measuring %s (%s); another one measures it",
                        slot.info.get("name", slot.index), rc.describe(), type(err).__name__)
            self._replace(slot)
            return None
        except self.ray.exceptions.RayError as err:
            return Measurement(rc.key, STATUS_FAILED, error=f"ray: {str(err).splitlines()[0][:300]}")
        slot.counters = dict(raw.get("counters") or {})
        measurement = converter.structure(raw["measurement"], Measurement)
        reason = check_measurement(measurement, self.required(rc))
        if reason:
            log.warning("ray: %s: result refused: %s", rc.describe(), reason)
            return Measurement(rc.key, STATUS_FAILED, error=f"ray: invalid result: {reason}")
        return measurement

    def _replace(self, slot: Slot) -> None:
        slot.dead = True
        self._counters.update(slot.counters)  # its servers counted as last reported
        try:
            self.ray.kill(slot.handle, no_restart=True)
        except Exception as err:  # noqa: BLE001 - already gone
            log.debug("ray: killing a dead actor: %s", err)
        self._slots[self._slots.index(slot)] = self._new_slot(slot.index)
