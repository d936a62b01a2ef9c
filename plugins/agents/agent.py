"""The agent daemon (`modelyzer agent`): a DEALER socket to the controller, one worker thread per slot.

The main thread owns the socket (CURVE client unless `--insecure`) and an `AgentCore` (`zmq_agent_core.py`);
slot threads (`zmq_slots.SlotWorker`) hand finished measurements back through a queue and wake the main
thread through a pipe. The socket is recreated when the controller falls silent (a fresh connection and a
fresh hello, ZeroMQ guide ch. 4). A socket monitor turns "the controller refused this key" into an exit
with a clear message (exit code 2) instead of silent retries, and handshakes the controller keeps breaking off
(a wrong `controller.key`, one end `--insecure`) into one error line naming the likely cause and the fix
(again at most once a minute; the agent keeps retrying). SIGTERM/SIGINT: say bye, stop the servers.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ModelyzerError
from modelyzer.kernel.models import Measurement, RunConfig
from modelyzer.plugins.agents.agent_core import EXIT, MAX_SILENCE, RECONNECT, AgentCore, AgentRefused
from modelyzer.plugins.agents.keys import AgentKeys, fingerprint
from modelyzer.plugins.agents.protocol import MAX_MESSAGE_BYTES, SlotInfo
from modelyzer.plugins.agents.slots import Job, agent_config, capabilities, slot_workers

log = logging.getLogger("modelyzer")

POLL_MS = 100
EXIT_REFUSED = 2
MONITORED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_SUCCEEDED
             | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
HANDSHAKE_FAILURES = 3  # handshakes broken off in a row before the agent says why (libzmq retries every ~0.1 s)
HANDSHAKE_LOG_EVERY = 60.0  # seconds between two such lines


class AgentDaemon:
    """One agent process (see the module docstring)."""

    def __init__(self, controller: str, keys: AgentKeys | None, slots: tuple[SlotInfo, ...], *, name: str = "",
                 workdir: Path | None = None, overrides: dict[str, Any] | None = None,
                 max_silence: float = MAX_SILENCE) -> None:
        self.controller = controller
        self.keys = keys
        self.name = name or (keys.name if keys and keys.name != "agent" else socket.gethostname())
        self.workdir = (workdir or Path.cwd() / "modelyzer-agent").resolve()
        self.overrides = dict(overrides or {})
        self.results: queue.Queue[tuple[int, Measurement]] = queue.Queue()
        self.ready: queue.Queue[int] = queue.Queue()  # slots that finished warming up
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stop = threading.Event()
        self.config: ProfileConfig | None = None
        self.config_error = ""
        self.workers = slot_workers(slots, self.workdir, self.name, self._finished, self._warm)
        launch_modes, load_generators = capabilities()
        self.core = AgentCore(
            name=self.name, host=socket.gethostname(), pid=os.getpid(), slots=slots, launch_modes=launch_modes,
            load_generators=load_generators, on_run=self._run, on_config=self._configure, on_bye=self._bye,
            counters=self._counters, max_silence=max_silence, warms=True,
        )
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.sock: zmq.Socket[Any] | None = None
        self.monitor: zmq.Socket[Any] | None = None
        self.poller = zmq.Poller()
        self.failed_handshakes = 0  # in a row, since the last one that succeeded
        self._handshake_logged = float("-inf")

    # --- callbacks ------------------------------------------------------------------------------------------
    def _finished(self, slot: int, measurement: Measurement) -> None:  # slot threads
        self.results.put((slot, measurement))
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _warm(self, slot: int) -> None:  # slot threads
        self.ready.put(slot)
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _run(self, slot: int, rc: RunConfig) -> None:
        log.info("slot %d: %s", slot, rc.describe())
        self.workers[slot].submit(Job(rc, self.config, self.core.config_id, self.config_error))

    def _configure(self, values: dict[str, Any], config_id: str) -> None:
        try:
            self.config, self.config_error = agent_config(values, self.overrides), ""
        except ModelyzerError as err:
            self.config, self.config_error = None, f"the controller's config does not load here: {err}"
            log.error("%s", self.config_error)
            self.core.warming.clear()  # nothing to warm: every RunConfig fails with the reason
            return
        for worker in self.workers.values():
            worker.prepare(self.config, config_id)

    def _bye(self) -> None:
        for worker in self.workers.values():
            worker.stop_servers()

    def _counters(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for worker in self.workers.values():
            for name, value in worker.counters().items():
                out[name] = out.get(name, 0) + value
        return out

    # --- socket ------------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._close_socket()
        sock = self.ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
        sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
        if self.keys is not None:
            sock.curve_secretkey = self.keys.secret
            sock.curve_publickey = self.keys.public
            sock.curve_serverkey = self.keys.controller_public
        self.monitor = sock.get_monitor_socket(MONITORED)
        sock.connect(self.controller)
        self.sock = sock
        self.poller = zmq.Poller()
        for item in (sock, self.monitor, self._wake_r):
            self.poller.register(item, zmq.POLLIN)

    def _close_socket(self) -> None:
        if self.sock is not None:
            self.sock.disable_monitor()
            self.sock.close(linger=0)
            self.sock = None
        if self.monitor is not None:
            self.monitor.close(linger=0)
            self.monitor = None

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self._stop.set()

    # --- main loop ---------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Serve until stopped, refused, or the controller stays silent for `max_silence`; the exit code."""
        slots = ", ".join(s.gpu or "CPU" for s in self.core.slots.values())
        who = f"key {fingerprint(self.keys.public)}" if self.keys else "no key (--insecure)"
        log.info("agent %s: %d slot(s) (%s), %s, controller %s", self.name, len(self.core.slots), slots, who,
                 self.controller)
        self._connect()
        try:
            return self._loop()
        finally:
            try:
                self.core.bye()
                self._flush()
            except zmq.ZMQError:
                pass
            for worker in self.workers.values():
                worker.close(timeout=10)
            self._close_socket()
            self.ctx.term()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _loop(self) -> int:
        while not self._stop.is_set():
            events = dict(self.poller.poll(POLL_MS))
            if self.monitor in events and self._monitor_events():
                return EXIT_REFUSED
            if self.sock in events:
                try:
                    self._receive()
                except AgentRefused as err:
                    log.error("the controller refused this agent: %s", err)
                    return EXIT_REFUSED
            if self._wake_r in events:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            while not self.ready.empty():
                self.core.slot_ready(self.ready.get_nowait())
            while not self.results.empty():
                self.core.finished(*self.results.get_nowait())
            action = self.core.tick()
            if action == EXIT:
                log.error("no word from the controller for %.0f s: exiting", self.core.max_silence)
                return 1
            if action == RECONNECT:
                self._connect()
            self._flush()
        return 0

    def _receive(self) -> None:
        assert self.sock is not None
        for _ in range(1000):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 1:
                log.warning("dropped a %d-frame message from the controller", len(frames))
                continue
            self.core.handle(frames[0])

    def _monitor_events(self) -> bool:
        """Handle the socket's handshake events; True when the controller refused this agent's key (exit)."""
        assert self.monitor is not None
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)
            kind, value = event["event"], int(event["value"])
            if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                key = self.keys.public.decode() if self.keys else "?"
                log.error("the controller at %s refused this agent's key %s: copy %s.key into the controller's "
                          "authorized_keys directory", self.controller, key, self.keys.name if self.keys else "?")
                return True
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.failed_handshakes = 0
                if not self.core.registered:
                    self.core.backoff.reset()  # connected: say hello now rather than after the backoff
            elif kind in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                self.failed_handshakes += 1
                now = time.monotonic()
                # a protocol error names its cause (and libzmq does not retry): say it at once
                enough = kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL or self.failed_handshakes >= HANDSHAKE_FAILURES
                if enough and now - self._handshake_logged >= HANDSHAKE_LOG_EVERY:
                    self._handshake_logged = now
                    log.error("%s", self.handshake_problem(kind, value))
        return False

    def handshake_problem(self, kind: int, value: int) -> str:
        """The line saying why handshakes with the controller fail, and what to do."""
        head = f"handshake with the controller at {self.controller} failed"
        if self.failed_handshakes > 1:
            head += f" {self.failed_handshakes} times in a row"
        if kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return (f"{head}: one end runs --insecure and the other does not; start both with CURVE keys (or both "
                    "with --insecure on a trusted network)")
        if kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            return f"{head}: ZMTP protocol error {value:#x}; is {self.controller} a modelyzer controller?"
        if self.keys is None:
            return (f"{head}: this agent runs --insecure; is the controller a modelyzer controller started with "
                    "--insecure too?")
        where = self.keys.controller_path or "controller.key"
        return (f"{head} (the controller breaks off the CURVE handshake): the controller's public key in {where} "
                "most likely does not match the controller's; copy controller.key from the controller's keys "
                "directory (`modelyzer keys generate`) here again and restart this agent")

    def _flush(self) -> None:
        assert self.sock is not None
        for data in self.core.take_outbox():
            try:
                self.sock.send(data, zmq.NOBLOCK)
            except zmq.Again:
                pass  # not connected yet: hellos are retried, measurements resent


def install_signal_handlers(daemon: AgentDaemon) -> None:
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)


__all__ = ["EXIT_REFUSED", "AgentDaemon", "install_signal_handlers"]
