"""`AgentsExecutor`: the kernel Executor that runs RunConfigs on ZeroMQ agents (`profile --agents URL`).

One background I/O thread owns every socket: the ROUTER the agents connect to (CURVE server unless
`insecure`), libzmq's ZAP endpoint (who may connect, `zmq_keys.ZapHandler`) and an inproc wake-up socket.
It feeds frames and time to the `Hub` (`zmq_hub.py`) under a lock and sends what the hub queued. The engine's
thread only calls `execute()`, which submits the batch to the hub and yields measurements as they arrive;
when the engine asks for the next one, the previous one has been committed by `store.record`, and only then
is it acknowledged to its agent (exactly-once storage without an engine change).

`slots` is the number of free agent slots, so strategies size their batches to the pool; `start()` waits
for `min_agents`. Heartbeat interval and liveness come from `MODELYZER_AGENT_HEARTBEAT` (seconds, default 1)
and `MODELYZER_AGENT_LIVENESS` (missed heartbeats, default 5).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from modelyzer.kernel import hooks, registry
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, ModelyzerError
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.liveness import HEARTBEAT_INTERVAL, LIVENESS
from modelyzer.kernel.models import GpuDevice, Measurement, RunConfig, stable_hash
from modelyzer.plugins.agents.guard import (
    HANDSHAKE_SECONDS,
    MAX_PENDING,
    MONITORED,
    ConnectionGuard,
    pending_cap,
    raise_fd_limit,
)
from modelyzer.plugins.agents.hub import Hub
from modelyzer.plugins.agents.keys import ZAP_ENDPOINT, ZapHandler, load_controller_keys
from modelyzer.plugins.agents.protocol import MAX_MESSAGE_BYTES
from modelyzer.plugins.agents.slots import wire_config
from modelyzer.plugins.agents.validate import required_metrics

log = logging.getLogger("modelyzer")

WAIT_LOG_EVERY = 10.0  # seconds between "waiting for agents" lines
POLL_MS = 200


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise ConfigError(f"{name}: must be a number, got {value!r}") from None


def insecure_warning(role: str) -> str:
    return (f"{role}: --insecure: agent traffic is plaintext and unauthenticated; anyone who can reach the port "
            "can join or read it — use only on a trusted network")


class AgentsExecutor(Executor):
    """Runs RunConfigs on remote agents (see the module docstring)."""

    def __init__(self, config: ProfileConfig, context: RunContext | None = None, *, bind: str | None = None,
                 keys_dir: Path | None = None, insecure: bool | None = None, min_agents: int | None = None) -> None:
        self.config = config
        self.context = context
        self.bind = str(bind or config.agents or "")
        if not self.bind:
            raise ConfigError("agents: give the address to listen on, e.g. --agents tcp://0.0.0.0:5555")
        self.insecure = config.insecure if insecure is None else insecure
        self.min_agents = min_agents if min_agents is not None else config.min_agents
        keys = keys_dir if keys_dir is not None else config.agent_keys
        self.keys = None
        if self.insecure:
            log.warning("%s", insecure_warning("controller"))
        elif keys is None:
            raise ConfigError("agent_keys: agents need CURVE keys; create them with `modelyzer keys generate DIR` and "
                              "pass --agent-keys DIR (or --insecure on a trusted network)")
        else:
            self.keys = load_controller_keys(Path(keys))
        wired = wire_config(config)
        self._lock = threading.RLock()
        self._results: queue.Queue[tuple[RunConfig, Measurement]] = queue.Queue()
        self.hub = Hub(
            config=wired, config_id=stable_hash(wired), launch_mode=config.triton_launch_mode,
            bind=self.bind, interval=env_float("MODELYZER_AGENT_HEARTBEAT", HEARTBEAT_INTERVAL),
            liveness=int(env_float("MODELYZER_AGENT_LIVENESS", LIVENESS)),
            deliver=lambda rc, m: self._results.put((rc, m)), on_joined=hooks.agent_joined, on_lost=hooks.agent_lost,
            required=required_metrics(config),
        )
        self.endpoint = ""
        self._ctx: zmq.Context[Any] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._wake: zmq.Socket[Any] | None = None
        self._wake_address = f"inproc://modelyzer-wake-{id(self)}"
        self._started = False
        self._waited = False
        self.guard: ConnectionGuard | None = None

    # --- Executor --------------------------------------------------------------------------------------------
    @property
    def slots(self) -> int:  # type: ignore[override]
        with self._lock:
            return max(self.hub.scheduler.free_slots, 1)

    def check(self) -> list[str]:
        """The keys loaded (the constructor did); where agents will connect."""
        security = "plaintext (--insecure)" if self.keys is None else f"CURVE keys from {self.config.agent_keys}"
        return [f"agents: will listen on {self.bind} for {self.min_agents} agent(s), {security}"]

    def start(self) -> None:
        """Listen, then (the first time only) wait until `min_agents` agents registered."""
        self.listen()
        if not self._waited:
            self.wait_for_agents(self.min_agents)
            self._waited = True

    def listen(self) -> str:
        """Bind and start the I/O thread (idempotent); returns the endpoint agents connect to."""
        if self._started:
            return self.endpoint
        self._started = True
        fd_limit = raise_fd_limit()
        cap = pending_cap(fd_limit, int(env_float("MODELYZER_AGENT_MAX_PENDING", MAX_PENDING)))
        self.guard = ConnectionGuard(cap=cap, bind=self.bind, fd_limit=fd_limit,
                                     keys_dir=self.keys.authorized.parent if self.keys else None)
        self._ctx = zmq.Context()
        self._thread = threading.Thread(target=self._io, name="modelyzer-agents-io", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        self._wake = self._ctx.socket(zmq.PAIR)
        self._wake.linger = 0
        self._wake.connect(self._wake_address)
        log.info("controller listening on %s (%s)", self.endpoint, "plaintext" if self.insecure else "CURVE")
        return self.endpoint

    def wait_for_agents(self, count: int, timeout: float | None = None) -> None:
        """Block until `count` agents are connected with their slots warm (ModelyzerError after `timeout` s)."""
        started = next_log = time.monotonic()
        while True:
            with self._lock:
                agents = self.hub.connected()
                connected = len(agents)
                ready = sum(1 for a in agents if not self.hub.scheduler.warming_slots(a.id))
            if ready >= count:
                return
            self._check_io()
            now = time.monotonic()
            if timeout is not None and now - started > timeout:
                raise ModelyzerError(f"agents: only {connected} of {count} agent(s) connected after {timeout:g} s")
            if now >= next_log:
                log.info("waiting for agents on %s: %d of %d connected, %d ready", self.endpoint, connected, count,
                         ready)
                next_log = now + WAIT_LOG_EVERY
            time.sleep(0.05)

    def execute(self, run_configs: Sequence[RunConfig]) -> Iterator[tuple[RunConfig, Measurement]]:
        self.start()  # a no-op once started: later batches run on whichever agents are connected
        remaining = {rc.key for rc in run_configs}
        with self._lock:
            self.hub.submit(run_configs)
        self._poke()
        while remaining:
            try:
                rc, measurement = self._results.get(timeout=0.5)
            except queue.Empty:
                self._check_io()
                continue
            if rc.key not in remaining:
                continue
            remaining.discard(rc.key)
            yield rc, measurement
            # resumed by the engine: the measurement is committed, so the agent may forget it now
            with self._lock:
                self.hub.committed(rc.key)
            self._poke()

    def stop(self) -> None:
        if not self._started:
            return
        self._started = self._waited = False
        with self._lock:
            self.hub.finish()
        self._poke()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._wake is not None:
            self._wake.close(linger=0)
            self._wake = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def counters(self) -> dict[str, int]:
        with self._lock:
            return self.hub.counters()

    def offered_gpus(self) -> list[GpuDevice]:
        """Listen and wait for `min_agents` agents; their GPUs are the profile's.

        Whether their servers' GPUs are the agents' own is the launcher's `on_this_host` capability.
        """
        launcher = registry.get("launchers", self.config.triton_launch_mode).factory
        if self.context is not None and isinstance(launcher, type) and issubclass(launcher, Launcher):
            self.context.server_on_this_host = launcher.on_this_host
        self.start()
        return self.gpus()

    def gpus(self) -> list[GpuDevice]:
        """The GPUs of the connected agents (the profile's GPUs)."""
        with self._lock:
            return self.hub.gpus()

    def status_line(self) -> str:
        with self._lock:
            return self.hub.status_line()

    # --- the I/O thread ------------------------------------------------------------------------------------------
    def _poke(self) -> None:
        if self._wake is not None:
            try:
                self._wake.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass

    def _check_io(self) -> None:
        if self._error is not None:
            raise ModelyzerError(f"agents: the controller's network thread failed: {self._error}")
        if self._thread is not None and not self._thread.is_alive() and not self._stopping.is_set():
            raise ModelyzerError("agents: the controller's network thread stopped")

    def _io(self) -> None:
        assert self._ctx is not None
        ctx = self._ctx
        sockets: list[zmq.Socket[Any]] = []
        zap: zmq.Socket[Any] | None = None
        try:
            if self.keys is not None:
                zap = ctx.socket(zmq.ROUTER)
                sockets.append(zap)
                zap.bind(ZAP_ENDPOINT)
            router = ctx.socket(zmq.ROUTER)
            sockets.append(router)
            router.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
            router.setsockopt(zmq.TCP_KEEPALIVE, 1)
            router.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
            router.setsockopt(zmq.HANDSHAKE_IVL, int(HANDSHAKE_SECONDS * 1000))
            router.linger = 1000
            if self.keys is not None:
                router.curve_secretkey = self.keys.secret
                router.curve_publickey = self.keys.public
                router.curve_server = True
            monitor = router.get_monitor_socket(MONITORED)  # closed (after disable_monitor) before the router
            sockets.insert(0, monitor)
            wake = ctx.socket(zmq.PAIR)
            sockets.append(wake)
            wake.bind(self._wake_address)
            try:
                router.bind(self.bind)
            except zmq.ZMQError as err:
                raise ConfigError(f"agents: cannot listen on {self.bind}: {err}") from None
            self.endpoint = router.last_endpoint.decode()
            handler = ZapHandler(self.keys.authorized) if self.keys else None
            if handler is not None:
                with self._lock:
                    self.hub.authorized = handler.admits  # a deleted key file revokes a connected agent too
            self._ready.set()
            self._loop(router, zap, wake, handler, monitor)
        except BaseException as err:  # noqa: BLE001 - reported to the engine's thread by _check_io
            self._error = err
            if self._ready.is_set():
                log.error("controller network thread failed: %s", err)
        finally:
            self._ready.set()
            for sock in sockets:
                if sock.type == zmq.ROUTER and sock is not zap:
                    sock.disable_monitor()
            for sock in sockets:
                sock.close(linger=500)

    def _loop(self, router: zmq.Socket[Any], zap: zmq.Socket[Any] | None, wake: zmq.Socket[Any],
              handler: ZapHandler | None, monitor: zmq.Socket[Any]) -> None:
        poller = zmq.Poller()
        for sock in (router, zap, wake, monitor):
            if sock is not None:
                poller.register(sock, zmq.POLLIN)
        timeout = int(min(POLL_MS, self.hub.liveness.interval * 250))
        while True:
            events = dict(poller.poll(timeout))
            if zap is not None and handler is not None and zap in events:
                while zap.poll(0):
                    reply = handler.reply(zap.recv_multipart())
                    if reply:
                        zap.send_multipart(reply)
            if monitor in events:
                self._watch(monitor)
            if router in events:
                self._receive(router)
            if wake in events:
                while wake.poll(0):
                    wake.recv()
            stopping = self._stopping.is_set()  # read before the outbox: `stop()` queues its byes before setting it
            with self._lock:
                self.hub.tick()
                outgoing = self.hub.take_outbox()
            for route, data in outgoing:
                try:
                    router.send_multipart([route, data], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # the peer is gone (ROUTER drops) or its queue is full: heartbeats and resends recover
            if stopping:
                return

    def _watch(self, monitor: zmq.Socket[Any]) -> None:
        """Feed the socket monitor's events to the connection guard, then let it enforce its cap."""
        assert self.guard is not None
        while monitor.poll(0):
            event = recv_monitor_message(monitor)
            self.guard.event(int(event["event"]), int(event["value"]))
        self.guard.enforce()

    def _receive(self, router: zmq.Socket[Any]) -> None:
        for _ in range(1000):  # bounded, so heartbeats still go out under a flood
            try:
                frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) != 2:
                log.warning("dropped a %d-frame message (expected one frame per message)", len(frames) - 1)
                continue
            route, body = frames[0].bytes, frames[1]
            user_id = ""
            if self.keys is not None:
                try:
                    user_id = str(body.get("User-Id") or "")
                except zmq.ZMQError:
                    user_id = ""
                if not user_id:
                    continue  # CURVE without ZAP identity cannot happen; never trust such a frame
            if self.guard is not None:
                self.guard.seen(_source_fd(body))
            with self._lock:
                self.hub.handle(route, user_id, body.bytes)


def _source_fd(frame: zmq.Frame) -> int:
    """The fd of the connection a message came over (-1 when libzmq does not say)."""
    try:
        return int(frame.get(zmq.SRCFD))
    except (zmq.ZMQError, TypeError, ValueError):
        return -1


__all__ = ["AgentsExecutor", "env_float", "insecure_warning"]
