"""bench/cpu_accel: the best ONNX Runtime vs the best OpenVINO variant of a small conv model on this CPU, for real.

Run: `.venv/bin/python bench/cpu_accel.py [--max-concurrency 8] [extra modelyzer profile flags, e.g.
--accuracy-tolerance 0.05]` (after `bash .ci/setup`). `--dali` runs the DALI half instead (bench/cpu_accel_dali.py:
JPEG through a DALI step on Triton vs decoded tensors from the client).

A small image classifier is made at run time with `onnx.helper` (FP32 input [3, 96, 96], four 3×3 convs + ReLU:
3→32, 32→64, 64→64 stride 2, 64→128 stride 2; global average pool, 128→10 Gemm; batch dimension dynamic,
max_batch_size 8, dynamic batching on) in a Triton-layout repository. Two `modelyzer profile` runs on
MLServer with the real perf_analyzer (brute search, manual model_config_parameters, concurrency 1..max):

- ONNX Runtime: `intra_op_thread_count` 1 (the launcher's default) and 2;
- OpenVINO (`cpu_execution_accelerator` openvino): PERFORMANCE_HINT LATENCY, THROUGHPUT, and THROUGHPUT with
  INFERENCE_PRECISION_HINT f32 (OpenVINO's default precision is bf16 on CPUs that have it; the accuracy guard
  refuses a variant whose outputs leave `accuracy_tolerance`).

Printed: for each runtime its best variant (highest throughput over every measured load), with throughput,
p99 latency and the load, and the OpenVINO properties the collector recorded; then any refused variants.

Measured on the 2-core development VM (a CPU with BF16; server and perf_analyzer share the cores):
- default tolerance 1e-3: ONNX Runtime (2 threads) 241 infer/s, p99 61.5 ms @ c8; OpenVINO THROUGHPUT f32
  182 infer/s, p99 76.8 ms @ c8; the bf16 variants refused (max rel error 0.0197).
- `--accuracy-tolerance 0.05`: ONNX Runtime 230 infer/s, p99 52.0 ms @ c8; OpenVINO LATENCY (bf16, 1 stream)
  338 infer/s, p99 11.8 ms @ c2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from modelyzer.kernel.models import Result
from modelyzer.kernel.store import Store

ROOT = Path(__file__).resolve().parents[1]
MODEL = "conv_net"
SIDE = 96
LAYERS = ((3, 32, 1), (32, 64, 1), (64, 64, 2), (64, 128, 2))  # (in, out, stride) of each 3×3 conv
CONFIG_PBTXT = f"""name: "{MODEL}"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ {{ name: "IMAGE" data_type: TYPE_FP32 dims: [ 3, {SIDE}, {SIDE} ] }} ]
output [ {{ name: "LOGITS" data_type: TYPE_FP32 dims: [ 10 ] }} ]
instance_group [ {{ count: 1 kind: KIND_CPU }} ]
dynamic_batching {{ }}
"""


def conv_model(seed: int = 0) -> onnx.ModelProto:
    """The bench's conv net (see the module docstring), weights seeded."""
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def weight(name: str, *shape: int) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name))
        return name

    x = "IMAGE"
    for i, (cin, cout, stride) in enumerate(LAYERS):
        w, b = weight(f"w{i}", cout, cin, 3, 3), weight(f"b{i}", cout)
        nodes.append(helper.make_node("Conv", [x, w, b], [f"c{i}"], pads=[1, 1, 1, 1], strides=[stride, stride]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", weight("fc_w", 10, LAYERS[-1][1]), weight("fc_b", 10)], ["LOGITS"],
                                  transB=1))
    graph = helper.make_graph(
        nodes, MODEL,
        [helper.make_tensor_value_info("IMAGE", TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("LOGITS", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_repository(root: Path) -> Path:
    model_dir = root / MODEL
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(conv_model(), str(model_dir / "1" / "model.onnx"))
    (model_dir / "config.pbtxt").write_text(CONFIG_PBTXT)
    return root


def openvino(**parameters: str) -> list[dict[str, Any]]:
    return [{"name": "openvino", "parameters": parameters}]


#: runtime → the model_config_parameters of its profile
SEARCHES: dict[str, dict[str, Any]] = {
    "ONNX Runtime": {"parameters": {"intra_op_thread_count": {"string_value": ["1", "2"]}}},
    "OpenVINO": {"optimization": {"execution_accelerators": {"cpu_execution_accelerator": [
        openvino(PERFORMANCE_HINT="LATENCY"),
        openvino(PERFORMANCE_HINT="THROUGHPUT"),
        openvino(PERFORMANCE_HINT="THROUGHPUT", INFERENCE_PRECISION_HINT="f32"),
    ]}}},
}


def profile(runtime: str, repo: Path, work: Path, max_concurrency: int, extra: list[str]) -> list[Result]:
    export = work / runtime.replace(" ", "_").lower()
    config = work / f"{export.name}.yaml"
    config.write_text(yaml.safe_dump({
        "model_repository": str(repo),
        "triton_launch_mode": "mlserver",
        "profile_models": {MODEL: {"model_config_parameters": SEARCHES[runtime]}},
        "run_config_search_max_concurrency": max_concurrency,
        "collect_cpu_metrics": True,
        "perf_analyzer_flags": {"measurement-request-count": 100, "stability-percentage": 25},
    }))
    cmd = [str(ROOT / ".venv" / "bin" / "modelyzer"), "profile", "-f", str(config), "--export-path", str(export),
           "--output-model-repository-path", str(export / "repo"), "-q", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"profile of {runtime} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    store = Store(export / "results.db")
    try:
        return store.results(MODEL)
    finally:
        store.close()


def label(result: Result) -> str:
    config = result.run_config.variant.config
    entries = (((config.get("optimization") or {}).get("execution_accelerators") or {})
               .get("cpu_execution_accelerator") or [])
    if entries:
        return "openvino " + " ".join(f"{k}={v}" for k, v in entries[0].get("parameters", {}).items())
    threads = ((config.get("parameters") or {}).get("intra_op_thread_count") or {}).get("string_value", "1")
    return f"onnxruntime intra_op_thread_count={threads}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--dali", action="store_true",
                        help="the DALI half instead (bench/cpu_accel_dali.py): preprocessing in the model vs client")
    args, extra = parser.parse_known_args(argv)
    if args.dali:  # --- the DALI half: a separate module, its own docstring ---
        from cpu_accel_dali import run  # noqa: PLC0415 - only for --dali

        return run(min(args.max_concurrency, 4) if "--max-concurrency" not in argv else args.max_concurrency)
    print(f"bench/cpu_accel — {MODEL} (3×{SIDE}×{SIDE} conv net) on MLServer + perf_analyzer, this CPU")
    refused: list[str] = []
    with tempfile.TemporaryDirectory(prefix="modelyzer-bench-") as tmp:
        work = Path(tmp)
        repo = write_repository(work / "models")
        for runtime in SEARCHES:
            t0 = time.monotonic()
            results = profile(runtime, repo, work, args.max_concurrency, extra)
            wall = time.monotonic() - t0
            ok = [r for r in results if r.measurement.ok and not r.run_config.variant.is_default]
            refused += sorted({f"{label(r)}: {r.measurement.error}" for r in results if not r.measurement.ok})
            if not ok:
                print(f"  {runtime:13s} no successful measurement ({wall:.0f} s)")
                continue
            best = max(ok, key=lambda r: r.measurement.values().get("perf_throughput", 0.0))
            values = best.measurement.values()
            load = best.run_config.load
            props = ", ".join(f"{k.removeprefix('openvino_')} {v:g}" for k, v in sorted(values.items())
                              if k.startswith("openvino_"))
            print(f"  {runtime:13s} best {label(best)} @ concurrency {load.concurrency}: "
                  f"{values.get('perf_throughput', 0.0):.1f} infer/s, p99 {values.get('perf_latency_p99', 0.0):.2f} ms"
                  f"{f'  [{props}]' if props else ''}  ({len(results)} measurements, {wall:.0f} s)")
    for line in refused:
        print(f"  refused: {line.splitlines()[0][:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
