"""A tiny Triton-compatible HTTP server (KServe v2 + Triton extensions) for driving the REAL perf_analyzer.

Test helper run as a subprocess: ``python triton_stub.py [--port 0] [--model add_sub] [--other-model NAME]
[--no-gpu-metrics]``; prints ``PORT <n>`` once listening. It answers what perf_analyzer 2.51 asks over HTTP:
``/v2`` (lists the ``statistics`` extension), model metadata and config, ``/stats`` (fixed server times:
queue 20 µs, compute input 10 µs, infer 200 µs, output 5 µs), JSON-tensor ``/infer`` (echo), ``/metrics`` with two
fake GPUs' ``nv_gpu_*`` gauges, and the repository API (index, load with a config override, unload).
``GET /stub/loads`` returns the load requests received. A load whose config has ``max_batch_size`` > 1000 is
refused with a Triton-style error.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GPU_METRICS = """# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-aaaa"} 0.5
nv_gpu_utilization{gpu_uuid="GPU-bbbb"} 0.25
# TYPE nv_gpu_power_usage gauge
nv_gpu_power_usage{gpu_uuid="GPU-aaaa"} 100.5
nv_gpu_power_usage{gpu_uuid="GPU-bbbb"} 50
# TYPE nv_gpu_memory_total_bytes gauge
nv_gpu_memory_total_bytes{gpu_uuid="GPU-aaaa"} 16000000000
nv_gpu_memory_total_bytes{gpu_uuid="GPU-bbbb"} 16000000000
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{gpu_uuid="GPU-aaaa"} 1000000000
nv_gpu_memory_used_bytes{gpu_uuid="GPU-bbbb"} 2000000000
"""
OTHER_METRICS = '# TYPE nv_inference_count counter\nnv_inference_count{model="add_sub",version="1"} 0\n'


class State:
    def __init__(self, model: str, others: list[str], gpu_metrics: bool) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.count = 0
        self.loaded = {model, *others}
        self.loads: list[dict[str, Any]] = []
        self.gpu_metrics = gpu_metrics
        self.config: dict[str, Any] = {
            "name": model,
            "platform": "onnxruntime_onnx",
            "backend": "onnxruntime",
            "max_batch_size": 8,
            "input": [
                {"name": "INPUT0", "data_type": "TYPE_FP32", "dims": ["4"]},
                {"name": "INPUT1", "data_type": "TYPE_FP32", "dims": ["4"]},
            ],
            "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": ["4"]}],
        }

    def metadata(self) -> dict[str, Any]:
        batch = [-1] if int(self.config.get("max_batch_size", 0) or 0) > 0 else []
        tensor = lambda n: {"name": n, "datatype": "FP32", "shape": [*batch, 4]}  # noqa: E731
        return {
            "name": self.model,
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [tensor("INPUT0"), tensor("INPUT1")],
            "outputs": [tensor("OUTPUT0")],
        }

    def stats(self) -> dict[str, Any]:
        with self.lock:
            n = self.count
        st = lambda ns: {"count": n, "ns": n * ns}  # noqa: E731
        zero = {"count": 0, "ns": 0}
        inference = {
            "success": st(300_000),
            "fail": zero,
            "queue": st(20_000),
            "compute_input": st(10_000),
            "compute_infer": st(200_000),
            "compute_output": st(5_000),
            "cache_hit": zero,
            "cache_miss": zero,
        }
        return {
            "model_stats": [
                {
                    "name": self.model,
                    "version": "1",
                    "last_inference": 0,
                    "inference_count": n,
                    "execution_count": n,
                    "inference_stats": inference,
                    "batch_stats": [],
                }
            ]
        }


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, obj: Any, code: int = 200, ctype: str = "application/json") -> None:
            body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0].rstrip("/")
            parts = path.split("/")
            if path == "/v2":
                return self._send(
                    {
                        "name": "triton_stub",
                        "version": "2.51.0",
                        "extensions": ["model_repository", "statistics"],
                    }
                )
            if path in ("/v2/health/ready", "/v2/health/live"):
                return self._send(b"")
            if path == "/metrics":
                text = (GPU_METRICS if state.gpu_metrics else "") + OTHER_METRICS
                return self._send(text.encode(), ctype="text/plain; version=0.0.4")
            if path == "/stub/loads":
                return self._send(state.loads)
            if parts[:3] == ["", "v2", "models"] and len(parts) >= 4:
                name = parts[3]
                if name not in state.loaded:
                    return self._send({"error": f"Request for unknown model: '{name}' is not found"}, 400)
                if path.endswith("/ready"):
                    return self._send(b"")
                if path.endswith("/config"):
                    return self._send(state.config)
                if path.endswith("/stats"):
                    return self._send(state.stats())
                return self._send(state.metadata())
            self._send({"error": f"not found: {path}"}, 404)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            path = self.path.split("?")[0].rstrip("/")
            parts = path.split("/")
            if path.endswith("/infer"):
                request = json.loads(body)
                with state.lock:
                    state.count += 1
                first = request["inputs"][0]
                out = {"name": "OUTPUT0", "datatype": "FP32", "shape": first["shape"], "data": first["data"]}
                return self._send({"model_name": state.model, "model_version": "1", "outputs": [out]})
            if path == "/v2/repository/index":
                return self._send(
                    [{"name": n, "version": "1", "state": "READY"} for n in sorted(state.loaded)]
                )
            if parts[:4] == ["", "v2", "repository", "models"] and len(parts) == 6:
                name, action = parts[4], parts[5]
                params = (json.loads(body) if body else {}).get("parameters", {})
                if action == "unload":
                    state.loaded.discard(name)
                    return self._send(b"")
                state.loads.append({"name": name, "parameters": params})
                override = json.loads(params["config"]) if "config" in params else {}
                if int(override.get("max_batch_size", 0) or 0) > 1000:
                    msg = f"load failed for model '{name}': max_batch_size exceeds the limit of 1000"
                    return self._send({"error": msg}, 400)
                state.config.update(override)
                state.loaded.add(name)
                return self._send(b"")
            self._send({"error": f"not found: {path}"}, 404)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="add_sub")
    parser.add_argument("--other-model", action="append", default=[])
    parser.add_argument("--no-gpu-metrics", action="store_true")
    args = parser.parse_args()
    state = State(args.model, args.other_model, not args.no_gpu_metrics)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
