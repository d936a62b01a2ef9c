"""Process-level helpers of the managed-server launchers: ports, the server log, the pidfile, process groups.

- ``port_of`` / ``free_ports`` / ``port_problem``: which ports a server gets, and why one cannot be used (in
  use, or another server answering on it); ``http_status``: one HTTP GET (readiness probes).
- ``ServerLog``: the server's stdout/stderr file (size, last lines, error lines written since an offset).
- ``PidFile``: ``{"pid", "create_time", "argv"}`` of the running server, so the next start can stop a server a
  killed profile left behind — only if that PID still runs that command (start time and arguments match).
- ``signal_group``: signal a server started in its own session (its process group) without raising.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

from modelyzer.kernel.errors import ConfigError

READY_PATH = "/v2/health/ready"


def port_of(key: str, value: str) -> int:
    """The port of ``host:port`` (endpoints) or of a URL (``triton_metrics_url``); ConfigError naming the key."""
    text = str(value).strip()
    try:
        port = urllib.parse.urlsplit(text if "//" in text else f"//{text}").port
    except ValueError:
        port = None
    if not port:
        raise ConfigError(
            f"{key}: no port in {text!r}; use host:port (or a URL with a port for the metrics URL)"
        )
    return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def http_status(
    port: int, path: str = READY_PATH, timeout: float = 1.0, host: str = "127.0.0.1"
) -> int | None:
    """HTTP status of ``GET http://<host>:<port><path>``, or None when nothing speaks HTTP there."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (OSError, ValueError):
        return None


def port_problem(port: int, key: str) -> str | None:
    """Why ``port`` cannot be used for the server (None when it is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
            return None
        except OSError:
            pass
    status = http_status(port)
    if status is not None:
        return (
            f"another server is already answering on port {port} ({key}; HTTP {status} for {READY_PATH}); "
            f"stop it, set {key} to a free port, or profile that server with triton_launch_mode remote"
        )
    return f"port {port} ({key}) is already in use by another process; free it or set {key} to a free port"


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid`` (gone already: nothing to do)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class ServerLog:
    """The file that receives the server's stdout and stderr."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(empty log)"

    def errors_since(self, offset: int, lines: int = 5) -> str:
        """Error lines logged after byte ``offset`` (Triton's ``E<MMDD> …`` lines, or any "error"), `` | ``-joined."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        hits = [ln.strip() for ln in text if (ln[:1] == "E" and ln[1:5].isdigit()) or "error" in ln.lower()]
        return " | ".join(hits[-lines:])


class PidFile:
    """Where the running server's identity is kept between profiles."""

    def __init__(self, path: Path, log: logging.Logger, label: str = "tritonserver") -> None:
        self.path = path
        self.log = log
        self.label = label

    def write(self, pid: int, argv: list[str]) -> None:
        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:
            created = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"pid": pid, "create_time": created, "argv": argv}) + "\n")
        except OSError as err:
            self.log.warning(
                "cannot write %s: %s (a killed profile may leave the server running)", self.path, err
            )

    def remove(self, pid: int) -> None:
        """Remove the file if it still names ``pid``."""
        try:
            if json.loads(self.path.read_text()).get("pid") == pid:
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def stop_leftover(self, grace: float) -> int | None:
        """Stop the server the file names if that PID still runs that command; return its PID if stopped."""
        try:
            record = json.loads(self.path.read_text())
            pid, argv, created = int(record["pid"]), list(record["argv"]), float(record["create_time"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        stopped: int | None = None
        try:
            proc = psutil.Process(pid)
            cmdline = proc.cmdline()
            # a script's cmdline starts with its interpreter: compare the arguments, and the start time (PID reuse)
            same = (
                abs(proc.create_time() - created) < 0.01
                and cmdline[len(cmdline) - len(argv) + 1 :] == argv[1:]
            )
        except psutil.Error:
            same = False
        if same:
            self.log.warning("%s: stopping pid %d left running by an earlier profile (%s)", self.label, pid, self.path)
            signal_group(pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except psutil.Error:
                pass
            signal_group(pid, signal.SIGKILL)
            stopped = pid
        try:
            self.path.unlink()
        except OSError:
            pass
        return stopped
