"""A stand-in ``tritonserver`` for tests: Triton's command line in front, a real MLServer 1.7.1 behind.

Run by the ``local`` launcher as ``triton_server_path`` (through the wrapper ``make_executable()`` writes, which
execs this file with the project's Python). It:

- accepts Triton's flags (``--model-repository``, ``--model-control-mode=explicit`` (the only mode it supports),
  ``--http-port``, ``--grpc-port``, ``--metrics-port``, ``--metrics-interval-ms`` and any other ``--flag[=value]``);
- appends ``{"argv", "env", "pid"}`` to the JSON list in ``$FAKE_TRITON_RECORD`` (when set), so tests can assert
  what the launcher passed;
- starts the extended MLServer of ``contrib/mlserver`` (``ServerProcess``) with its gRPC and metrics servers on
  the Triton gRPC and metrics ports (perf_analyzer talks to it directly), and serves the Triton HTTP port itself:
  the repository API's load-with-config (``POST /v2/repository/models/<m>/load`` with ``{"parameters":
  {"config": "<json>"}}``, or ``<repo>/<m>/config.pbtxt`` without one) is converted to MLServer model settings
  with ``modelyzer_mlserver.convert`` (the model keeps its name; the files come from ``<repository>/<m>``);
  everything else is forwarded to MLServer's own HTTP port;
- refuses loads as Triton does for a few realistic cases (no such model directory, a config name that differs,
  ``KIND_GPU`` without a visible GPU, anything MLServer refuses) with Triton-style ``{"error": …}`` answers and
  ``E…`` log lines; restarts its MLServer (same ports) when the instance count needs other worker processes;
- logs Triton-style lines and MLServer's log to stdout; stops MLServer and exits on SIGTERM/SIGINT.

Limits: load-with-config over gRPC is not supported (MLServer would ignore the config; the launcher loads over
HTTP); ``--allow-http=false`` is recorded but the HTTP port is served anyway; inference over HTTP goes through
this process and, MLServer lacking Triton's binary tensors, needs perf_analyzer's JSON tensor formats. Test
switches:
``FAKE_TRITON_HANG=1`` logs a few lines and never gets ready.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORD_ENV = "FAKE_TRITON_RECORD"
HANG_ENV = "FAKE_TRITON_HANG"
LOAD_PATH = re.compile(r"^/v2/repository/models/([^/]+)/(load|unload)$")
FORWARD_HEADERS = ("Content-Type", "Inference-Header-Content-Length", "Accept", "Accept-Encoding", "Content-Encoding")


def make_executable(directory: Path, python: str = sys.executable) -> Path:
    """Write ``<directory>/tritonserver``, a shell wrapper that runs this stand-in with ``python``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tritonserver"
    path.write_text(f'#!/bin/sh\nexec "{python}" "{Path(__file__).resolve()}" "$@"\n')
    path.chmod(0o755)
    return path


_log_lock = threading.Lock()


def tlog(level: str, message: str, source: str = "server.cc:1") -> None:
    """One Triton-style log line (``I0521 12:00:00.123456 4242 server.cc:1] message``) on stdout."""
    stamp = datetime.now().strftime("%m%d %H:%M:%S.%f")
    with _log_lock:
        sys.stdout.write(f"{level}{stamp} {os.getpid()} {source}] {message}\n")
        sys.stdout.flush()


def record(argv: list[str]) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    target = Path(path)
    try:
        runs = json.loads(target.read_text()) if target.exists() else []
    except ValueError:
        runs = []
    runs.append({"argv": argv, "env": dict(os.environ), "pid": os.getpid()})
    target.write_text(json.dumps(runs, indent=1))


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="tritonserver", allow_abbrev=False)
    parser.add_argument("--model-repository", "--model-store", action="append", default=[])
    parser.add_argument("--model-control-mode", default="none")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--metrics-interval-ms", type=int, default=2000)
    return parser.parse_known_args(argv)


class Backend:
    """The MLServer behind the stand-in, and the Triton load logic in front of it."""

    def __init__(self, repositories: list[Path], grpc_port: int, metrics_port: int) -> None:
        from modelyzer_mlserver.server import free_ports, python_of, resolve_mlserver

        self.repositories = repositories
        self.python = python_of(resolve_mlserver(None))
        self.work_dir = Path(tempfile.mkdtemp(prefix="fake-tritonserver-"))
        self.ports = (free_ports(1)[0], grpc_port, metrics_port)
        self.lock = threading.Lock()
        self.loaded: set[str] = set()
        self.server: Any = None
        self.relay_stop = threading.Event()

    def start(self, workers: int) -> None:
        from modelyzer_mlserver.server import ServerProcess

        env = {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
        self.server = ServerProcess(self.python, self.work_dir, self.work_dir / "mlserver.log", workers, env, self.ports)
        self.server.start(timeout=60.0)
        self.loaded.clear()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=5.0)
            self.server = None

    def relay_log(self) -> None:
        """Copy MLServer's log to our stdout as it grows (the launcher keeps our stdout as the server log)."""
        path, offset = self.work_dir / "mlserver.log", 0
        while not self.relay_stop.wait(0.2):
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except OSError:
                continue
            if chunk:
                offset += len(chunk)
                with _log_lock:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()

    # --- Triton's load-with-config ----------------------------------------------------------------------
    def load(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            try:
                version = self._load(name, body)
            except LoadRefused as err:
                tlog("E", f"failed to load '{name}' version 1: {err}", "model_lifecycle.cc:654")
                return 400, {"error": f"failed to load '{name}', {err}"}
            tlog("I", f"successfully loaded '{name}' version {version}", "model_lifecycle.cc:835")
            return 200, {}

    def _load(self, name: str, body: dict[str, Any]) -> str:
        from modelyzer_mlserver import convert

        from modelyzer.kernel.errors import ModelyzerError

        model_dir = next((r / name for r in self.repositories if (r / name).is_dir()), None)
        if model_dir is None:
            raise LoadRefused("failed to poll from model repository")
        config = self._config(name, model_dir, (body.get("parameters") or {}).get("config"))
        for i, group in enumerate(config.get("instance_group") or []):
            if group.get("kind") == "KIND_GPU" and not os.environ.get("CUDA_VISIBLE_DEVICES"):
                group_name = group.get("name") or f"{name}_{i}"
                raise LoadRefused(
                    f"instance group {group_name} of model {name} has kind KIND_GPU but no GPUs are available"
                )
        try:
            model_file, version = convert.find_model_file(model_dir, config)
            settings = convert.model_settings(name, config, model_file, version)
        except ModelyzerError as err:
            raise LoadRefused(str(err)) from err
        workers = convert.parallel_workers(config)
        if self.server is None or not self.server.running or self.server.workers != workers:
            tlog("I", f"backend: (re)starting MLServer with {workers} worker process(es)")
            self.stop()
            self.start(workers)
        server = self.server
        (server.repo / name).mkdir(parents=True, exist_ok=True)
        (server.repo / name / "model-settings.json").write_text(json.dumps(settings, indent=2))
        if name in self.loaded:  # a plain reload keeps MLServer's old batching: unload first
            server.request("POST", f"/v2/repository/models/{name}/unload")
            self.loaded.discard(name)
        offset = server.log_size()
        status, answer = server.request("POST", f"/v2/repository/models/{name}/load")
        if status != 200:
            reason = server.error_text(answer) if isinstance(answer, dict) else server.errors_since(offset)
            raise LoadRefused(f"load failed: {reason or f'HTTP {status}'}")
        self.loaded.add(name)
        return version

    def _config(self, name: str, model_dir: Path, override: Any) -> dict[str, Any]:
        if override:
            try:
                config = json.loads(override)
            except ValueError as err:
                raise LoadRefused(f"failed to parse the config override: {err}") from err
        elif (model_dir / "config.pbtxt").exists():
            from modelyzer.plugins.codecs.pbtxt import PbtxtCodec

            config = PbtxtCodec().read(model_dir / "config.pbtxt")
        else:
            raise LoadRefused(f"no config.pbtxt in {model_dir} and no config override")
        if config.get("name") not in (None, "", name):
            raise LoadRefused(f"model name '{config['name']}' in the config does not match '{name}'")
        return dict(config)

    def unload(self, name: str) -> tuple[int, Any]:
        with self.lock:
            self.loaded.discard(name)
            status, answer = self.server.request("POST", f"/v2/repository/models/{name}/unload")
            tlog("I", f"successfully unloaded '{name}'", "model_lifecycle.cc:620")
            return status, answer if isinstance(answer, dict) else {}


class LoadRefused(Exception):
    """A load Triton would refuse; the message is Triton's reason."""


def make_handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet access log
            pass

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

        def _forward(self, method: str) -> None:
            body = self._body()
            conn = http.client.HTTPConnection("127.0.0.1", backend.ports[0], timeout=120)
            try:
                headers = {k: v for k in FORWARD_HEADERS if (v := self.headers.get(k)) is not None}
                conn.request(method, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                out = {k: v for k in FORWARD_HEADERS if (v := response.getheader(k)) is not None}
                self._send(response.status, payload, out)
            except OSError as err:
                self._json(503, {"error": f"server not ready: {err}"})
            finally:
                conn.close()

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._forward("GET")

        def do_POST(self) -> None:  # noqa: N802
            match = LOAD_PATH.match(self.path)
            if match is None:
                self._forward("POST")
                return
            raw = self._body()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                self._json(400, {"error": "failed to parse the request JSON buffer"})
                return
            name, action = match.groups()
            self._json(*(backend.load(name, body) if action == "load" else backend.unload(name)))

    return Handler


def main(argv: list[str]) -> int:
    record(argv)
    args, others = parse(argv)
    tlog("I", f"stand-in tritonserver (MLServer behind), args: {' '.join(argv)}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if os.environ.get(HANG_ENV):
        tlog("I", "loading backends")
        tlog("W", "stand-in: hanging before readiness (FAKE_TRITON_HANG)")
        stop.wait()
        return 0
    if args.model_control_mode != "explicit":
        tlog("E", f"stand-in supports --model-control-mode=explicit only, got {args.model_control_mode}")
        return 1
    repositories = [Path(r) for r in args.model_repository]
    missing = [str(r) for r in repositories if not r.is_dir()]
    if not repositories or missing:
        tlog("E", f"failed to stat file {missing[0] if missing else '(no --model-repository)'}")
        return 1
    backend = Backend(repositories, args.grpc_port, args.metrics_port)
    try:
        front = ThreadingHTTPServer(("127.0.0.1", args.http_port), make_handler(backend))
    except OSError as err:
        tlog("E", f"failed to start HTTP service: Unavailable - Socket '0.0.0.0:{args.http_port}' already in use ({err})")
        return 1
    relay = threading.Thread(target=backend.relay_log, name="log-relay", daemon=True)
    relay.start()
    code, serving = 0, False
    try:
        backend.start(workers=0)
        threading.Thread(target=front.serve_forever, name="http", daemon=True).start()
        serving = True
        tlog("I", f"Started GRPCInferenceService at 0.0.0.0:{args.grpc_port}", "grpc_server.cc:2463")
        tlog("I", f"Started HTTPService at 0.0.0.0:{args.http_port}", "http_server.cc:4692")
        tlog("I", f"Started Metrics Service at 0.0.0.0:{args.metrics_port}", "http_server.cc:362")
        while not stop.wait(0.5):
            if backend.server is not None and not backend.server.running and not backend.lock.locked():
                tlog("E", "backend MLServer exited unexpectedly")
                code = 1
                break
    except Exception as err:  # noqa: BLE001 - a start failure is the server's exit reason
        tlog("E", f"failed to start the backend: {err}")
        code = 1
    finally:
        tlog("I", "Waiting for in-flight requests to complete.", "server.cc:307")
        if serving:
            front.shutdown()
        front.server_close()
        backend.stop()
        backend.relay_stop.set()
        relay.join(timeout=2)
        shutil.rmtree(backend.work_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
