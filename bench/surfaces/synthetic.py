"""SYNTHETIC performance surfaces: analytic, plausible, NOT measured on any server.

They stand in for recorded surfaces until brute-force runs on real servers (MLServer on CPU, Triton on GPU) are
recorded into `bench/surfaces/*.db`. Each surface is a small queueing model of an inference server with
dynamic batching:

- a batch of `b` items takes `t(b) = t0 + t1·b + t2·b²` ms on one instance (`t2` > 0: big batches stop paying);
- `n` instances share the hardware: speed-up `n / (1 + contention·(n−1)) − penalty·(n−1)`;
- a closed loop of `c` clients, each sending client batches of `bs` items, fills server batches of
  `b = clamp(c·bs/n, bs, max(max_batch_size, bs))` (no dynamic batching: `b = bs`); a queue delay of `d` µs
  lets batches fill a little more at the cost of `d` µs of latency;
- throughput is the smooth minimum of the offered rate `c·bs/t(b)` and the capacity, reduced by a small
  per-client overhead at very high concurrency; average latency follows Little's law, p99 is 1.3× it plus
  noise; deterministic ±0.5% pseudo-noise per point keeps the optimum from being a perfectly smooth peak.

`Surface.metrics(run_config)` answers any RunConfig (tests use it directly); `bench/surfaces/make.py` records
the power-of-two grid of the default search space into small results DBs labelled `synthetic-*`.
"""

from __future__ import annotations

import hashlib

import attrs

from modelyzer.kernel.models import RunConfig


def _noise(*key: object, amplitude: float = 0.005) -> float:
    digest = hashlib.sha256(repr(key).encode()).digest()
    return 1.0 + amplitude * (int.from_bytes(digest[:4], "big") / 2**32 * 2 - 1)


@attrs.frozen
class Surface:
    """One synthetic server + model (see the module docstring); `latency_budget` is its p99 constraint (ms)."""

    name: str
    t0: float
    t1: float
    t2: float = 0.0
    contention: float = 0.2
    penalty: float = 0.0
    overhead: float = 1e-4
    latency_budget: float = 50.0
    base_max_batch_size: int = 8
    noise: float = 0.005

    def base_config(self) -> dict[str, object]:
        return {
            "name": self.name,
            "platform": "onnxruntime_onnx",
            "max_batch_size": self.base_max_batch_size,
            "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [16]}],
            "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [16]}],
        }

    def point(self, mbs: int, instances: int, batch_size: int, concurrency: int, dynamic: bool, delay_us: int = 0
              ) -> dict[str, float]:
        c, bs, n = max(concurrency, 1), max(batch_size, 1), max(instances, 1)
        fill = c * bs / n * (1.0 + delay_us / 2000.0)
        b = min(max(fill, bs), max(mbs, bs)) if dynamic else float(bs)
        service = self.t0 + self.t1 * b + self.t2 * b * b
        speedup = max(n / (1 + self.contention * (n - 1)) - self.penalty * (n - 1), 0.05)
        capacity = speedup * b / service * 1000.0
        offered = c * bs / (service + delay_us / 1000.0) * 1000.0
        p = 4.0
        rate = (offered**-p + capacity**-p) ** (-1 / p) / (1 + self.overhead * c)
        rate *= _noise(self.name, mbs, n, bs, c, dynamic, delay_us, amplitude=self.noise)
        latency = c * bs / rate * 1000.0
        p99 = latency * 1.3 * _noise("p99", self.name, mbs, n, bs, c, amplitude=self.noise * 4)
        return {
            "perf_throughput": round(rate, 3),
            "perf_latency_avg": round(latency, 3),
            "perf_latency_p99": round(p99, 3),
            "gpu_used_memory": round(400 + n * (150 + 3 * max(mbs, 1)), 1),
        }

    def metrics(self, rc: RunConfig) -> dict[str, float]:
        v = rc.variant
        delay = int((v.config.get("dynamic_batching") or {}).get("max_queue_delay_microseconds", 0) or 0)
        concurrency = rc.load.concurrency or int(rc.load.request_rate or 1)
        return self.point(v.max_batch_size, v.instance_count, rc.load.batch_size, concurrency,
                          v.dynamic_batching, delay)


SURFACES: tuple[Surface, ...] = (
    # batch-friendly (GPU-like): a large fixed cost per batch, so big batches and many instances pay
    Surface("synthetic-batch-friendly", t0=4.0, t1=0.05, contention=0.15, overhead=5e-5, latency_budget=15.0),
    # core-bound (CPU-like): per-item cost dominates and instances fight over cores
    Surface("synthetic-core-bound", t0=0.6, t1=0.35, t2=0.002, contention=0.45, penalty=0.08,
            overhead=3e-4, latency_budget=10.0),
    # a sweet spot: superlinear batch cost (optimal batch ~20), moderate contention
    Surface("synthetic-sweet-spot", t0=2.0, t1=0.1, t2=0.005, contention=0.3, penalty=0.03, overhead=1e-4,
            latency_budget=10.0),
)


def by_name(name: str) -> Surface:
    return next(s for s in SURFACES if s.name == name)
