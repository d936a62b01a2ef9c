"""The controller's watch over its TCP connections: file descriptors, unauthenticated peers, failed handshakes.

Every TCP connection to the controller's ROUTER costs a file descriptor from the moment it is accepted, and
a peer that never completes the CURVE handshake (a port scan, a stuck client, a flood) holds one until libzmq
gives up on it (`HANDSHAKE_IVL`). When the process runs out, libzmq can no longer accept anyone — agents
included — and says nothing. So the controller:
- raises its soft `RLIMIT_NOFILE` to the hard limit at start (`raise_fd_limit`);
- sets `HANDSHAKE_IVL` (`HANDSHAKE_SECONDS`): a connection that has not completed the handshake by then is
  dropped by libzmq;
- feeds its socket monitor's events to `ConnectionGuard`: connections accepted (`ACCEPTED`, with the fd) and
  not yet seen carrying a message (`seen(fd)`, from the message's `SRCFD`; in CURVE mode only an
  authenticated peer's messages get through) are *pending*; past `cap` of them, the oldest pending one is shut
  down, with one log line (at most once a minute) saying so; an `ACCEPT_FAILED` is logged too;
- names the likely cause of handshakes broken off for a protocol error: a cryptographic error means an agent
  holds another controller's public key, a mechanism mismatch that one end runs `--insecure`.

The cap is `MODELYZER_AGENT_MAX_PENDING` (default 256), never more than half the descriptors the process may
open (the rest stays for agents, the results DB and the servers of a local profile).
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import time
from collections.abc import Callable
from pathlib import Path

import zmq

log = logging.getLogger("modelyzer")

HANDSHAKE_SECONDS = 10.0  # a connection must complete its handshake within this (libzmq's default: 30 s)
MAX_PENDING = 256  # unauthenticated connections kept at most (MODELYZER_AGENT_MAX_PENDING)
LOG_EVERY = 60.0  # seconds between two lines about the same kind of trouble
MONITORED = (zmq.EVENT_ACCEPTED | zmq.EVENT_ACCEPT_FAILED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED
             | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (capped at 1 Mi); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.debug("open files limit raised from %d to %d", soft, target)
            soft = target
        except (ValueError, OSError) as err:
            log.debug("open files limit stays %d: %s", soft, err)
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


def pending_cap(fd_limit: int, configured: int = MAX_PENDING) -> int:
    """How many unauthenticated connections to keep: `configured`, at most half of `fd_limit` (at least 8)."""
    return max(8, min(configured, fd_limit // 2))


def shutdown_fd(fd: int) -> None:
    """Shut a connection down under libzmq's feet (it sees EOF and closes the fd itself; the fd stays libzmq's)."""
    try:
        copy = os.dup(fd)
    except OSError:
        return  # already gone
    try:
        dup = socket.socket(fileno=copy)
    except OSError:
        os.close(copy)  # not a socket (any more): nothing to shut
        return
    with dup:
        try:
            dup.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected any more


class ConnectionGuard:
    """Feeds on the controller socket's monitor events (see the module docstring)."""

    def __init__(self, *, cap: int, bind: str, fd_limit: int, keys_dir: Path | None = None,
                 clock: Callable[[], float] = time.monotonic, close: Callable[[int], None] = shutdown_fd) -> None:
        self.cap = cap
        self.bind = bind
        self.fd_limit = fd_limit
        self.keys_dir = keys_dir
        self.clock = clock
        self.close = close
        self.pending: dict[int, float] = {}  # fd → accepted at (oldest first)
        self.authenticated: set[int] = set()
        self.evicted = 0
        self._logged: dict[str, float] = {}

    def event(self, kind: int, value: int) -> None:
        """One monitor event (`value`: the fd for connection events, the error for failures)."""
        if kind == zmq.EVENT_ACCEPTED:
            self.authenticated.discard(value)
            self.pending[value] = self.clock()
        elif kind in (zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED):
            self.pending.pop(value, None)
            self.authenticated.discard(value)
        elif kind == zmq.EVENT_ACCEPT_FAILED:
            self._log("accept", "controller on %s cannot accept a connection: %s (%d pending, %d agents' "
                      "connections, open files limit %d)", self.bind, os.strerror(value), len(self.pending),
                      len(self.authenticated), self.fd_limit)
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            self._protocol_error(value)

    def seen(self, fd: int) -> None:
        """A message arrived over `fd`: its peer completed the handshake (and, with CURVE, ZAP admitted it)."""
        if fd >= 0 and self.pending.pop(fd, None) is not None:
            self.authenticated.add(fd)

    def enforce(self) -> int:
        """Shut down the oldest pending connections beyond the cap (call after draining events); how many."""
        excess = len(self.pending) - self.cap
        if excess <= 0:
            return 0
        oldest = list(self.pending)[:excess]
        for fd in oldest:
            del self.pending[fd]
            self.close(fd)
        self.evicted += excess
        self._log("cap", "controller on %s: %d connections have not completed the handshake (cap %d, open files "
                  "limit %d): closing the oldest (%d so far); something connects and never authenticates — a "
                  "port scan, or a client that is not a modelyzer agent", self.bind, self.cap + excess, self.cap,
                  self.fd_limit, self.evicted)
        return excess

    def _protocol_error(self, value: int) -> None:
        if value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            source = self.keys_dir / "controller.key" if self.keys_dir else "controller.key"
            self._log("crypto", "a CURVE handshake on %s failed (cryptographic error): an agent most likely holds "
                      "another controller's public key; copy %s to it again", self.bind, source)
        elif value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            mode = "CURVE" if self.keys_dir else "--insecure (plaintext)"
            self._log("mechanism", "a handshake on %s failed: the peer does not use this controller's security "
                      "mode (%s); start agents and controller both with keys or both with --insecure", self.bind,
                      mode)
        else:
            self._log("protocol", "a handshake on %s failed: ZMTP protocol error %#x", self.bind, value)

    def _log(self, what: str, fmt: str, *args: object) -> None:
        now = self.clock()
        if now - self._logged.get(what, float("-inf")) >= LOG_EVERY:
            self._logged[what] = now
            log.warning(fmt, *args)


__all__ = ["HANDSHAKE_SECONDS", "MAX_PENDING", "MONITORED", "ConnectionGuard", "pending_cap", "raise_fd_limit",
           "shutdown_fd"]
