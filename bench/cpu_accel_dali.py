"""bench/cpu_accel, DALI half: preprocessing inside the model (DALI) vs on the client, on the real Triton (CPU).

Run: `.venv/bin/python bench/cpu_accel.py --dali [--max-concurrency 4]` (after `bash .ci/setup`, whose
.ci/setup.d/dali.sh installs DALI into .venv-triton and makes examples/triton-cpu/dali's model and data).

One `modelyzer profile` of examples/triton-cpu/dali on the local Triton 2.51 with the real perf_analyzer, both
models one after the other (brute search: instance count 1, batch size 1, concurrency 1..max):

- `classifier`: the client sends the decoded, resized, normalised FP32 [3, 64, 64] tensor (tensor_input.json);
- `ensemble_dali_classifier`: the client sends the JPEG bytes (jpeg_input.json); dali_preprocess (a DALI CPU
  pipeline) decodes/resizes/normalises on the server, then the same classifier runs.

Printed per model: the best measurement's throughput, p99 and load, the `dali` collector's request bytes and
preprocessing share; then the client-side preprocessing time per image (Pillow, this process) that the
classifier's numbers leave out — the client pays it instead of the server.

Measured on the 2-core development VM (server, perf_analyzer and DALI share the cores; profile 94 s), best of
concurrency 1..4: classifier 49152 B/request, 2307 infer/s, p99 4.15 ms @ c4; ensemble_dali_classifier
13904 B/request (3.5× less), 769 infer/s, p99 8.34 ms @ c4, DALI 87.7% of its server time; client-side
preprocessing 0.56 ms/image (Pillow) that the classifier's numbers leave out.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from modelyzer.kernel.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "triton-cpu" / "dali"
MODELS = {"classifier": "tensor_input.json", "ensemble_dali_classifier": "jpeg_input.json"}


def client_preprocess_ms(jpegs: list[bytes], rounds: int = 50) -> float:
    """Milliseconds per image of the example's client-side preprocessing (make_example.client_preprocess)."""
    spec = importlib.util.spec_from_file_location("dali_make_example", EXAMPLE / "make_example.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    t0 = time.perf_counter()
    for _ in range(rounds):
        for data in jpegs:
            module.client_preprocess(data)
    return (time.perf_counter() - t0) * 1e3 / (rounds * len(jpegs))


def run(max_concurrency: int) -> int:
    data = EXAMPLE / "data"
    if not (data / "jpeg_input.json").is_file():
        raise SystemExit("examples/triton-cpu/dali has no data: run `bash .ci/setup.d/dali.sh` (installs DALI)")
    print("bench/cpu_accel --dali — JPEG through a DALI step on the server vs decoded tensors from the client "
          "(local Triton 2.51, CPU)")
    with tempfile.TemporaryDirectory(prefix="modelyzer-bench-dali-") as tmp:
        export = Path(tmp) / "out"
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({
            "model_repository": str(EXAMPLE / "model_repository"), "triton_launch_mode": "local",
            "profile_models": {m: {"perf_analyzer_flags": {"input-data": str(data / f)}} for m, f in MODELS.items()},
            "export_path": str(export), "output_model_repository_path": str(export / "omr"),
            "run_config_search_max_model_batch_size": 1, "run_config_search_max_instance_count": 1,
            "run_config_search_max_concurrency": max_concurrency,
            "perf_analyzer_flags": {"measurement-request-count": 200, "stability-percentage": 25},
            "skip_detailed_reports": True,
        }))
        t0 = time.monotonic()
        proc = subprocess.run([str(ROOT / ".venv" / "bin" / "modelyzer"), "profile", "-f", str(config), "-q"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"profile failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        print(f"  (profile of both models: {time.monotonic() - t0:.0f} s)")
        store = Store(export / "results.db")
        try:
            for model in MODELS:
                ok = [r for r in store.results(model) if r.measurement.ok]
                best = max(ok, key=lambda r: r.measurement.values().get("perf_throughput", 0.0))
                v = best.measurement.values()
                print(f"  {model:25s} {v.get('request_bytes', 0):8.0f} B/request  "
                      f"{v.get('perf_throughput', 0):7.1f} infer/s  p99 {v.get('perf_latency_p99', 0):6.2f} ms  "
                      f"@ concurrency {best.run_config.load.concurrency}  "
                      f"preprocessing {v.get('preprocess_share', 0):4.1f}% of server time"
                      f" ({len(ok)} measurements)")
        finally:
            store.close()
    jpegs = [base64.b64decode(e["JPEG"]["b64"]) for e in json.loads((data / "jpeg_input.json").read_text())["data"]]
    print(f"  client-side preprocessing (Pillow decode+resize+normalise, not in the classifier's numbers): "
          f"{client_preprocess_ms(jpegs):.2f} ms/image")
    return 0
