"""Triton-style per-model inference statistics, kept in the MLServer main process (standard library only).

The runtime measures each model execution (compute input / infer / output, batch size, a batch id) and sends
the numbers back with the response (`TIMING_KEY` in the response parameters; they survive MLServer's adaptive
batcher, which copies response parameters to every split response, and its worker processes). The extension
adds the request's own timing around it and records it here:

- success     request arrival at the protocol handler → response ready (count = requests)
- compute_*   the runtime's measured durations of the batch that carried the request, plus request decoding
              (input) and response encoding (output) in the protocol handler — per request, as Triton does
- queue       the rest of the request's time: waiting in the adaptive batcher, dispatch to a worker
- execution_count / batch_stats count each batch once (recognised by its batch id)

`to_json()` has the shape of Triton's `GET /v2/models/<m>/stats`; `wire.encode_statistics_response` turns it
into the gRPC `ModelStatisticsResponse`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

TIMING_KEY = "modelyzer_timing"
_SEEN_BATCHES = 4096


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += max(0, int(ns))

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass(frozen=True)
class Timing:
    """What the runtime measured for one model execution (one possibly merged batch)."""

    compute_input_ns: int
    compute_infer_ns: int
    compute_output_ns: int
    batch_id: str
    batch_size: int

    def encode(self) -> str:
        return (
            f"{self.compute_input_ns},{self.compute_infer_ns},{self.compute_output_ns},"
            f"{self.batch_id},{self.batch_size}"
        )

    @classmethod
    def decode(cls, text: str) -> Timing | None:
        try:
            ci, inf, co, batch_id, size = str(text).split(",")
            return cls(int(ci), int(inf), int(co), batch_id, int(size))
        except (TypeError, ValueError):
            return None


@dataclass
class _BatchStats:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass
class ModelStats:
    """Cumulative statistics of one served model (monotonic, like Triton's: clients take deltas)."""

    name: str
    version: str = "1"
    last_inference_ms: int = 0
    inference_count: int = 0
    execution_count: int = 0
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    batches: dict[int, _BatchStats] = field(default_factory=dict)
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def record_success(
        self,
        total_ns: int,
        inferences: int,
        timing: Timing | None,
        decode_ns: int = 0,
        encode_ns: int = 0,
    ) -> None:
        """One successful request: `total_ns` end to end, `inferences` = its batch size (1 if unbatched)."""
        self.last_inference_ms = int(time.time() * 1000)
        self.inference_count += max(1, inferences)
        self.success.add(total_ns)
        ci, inf, co = decode_ns, 0, encode_ns
        if timing is not None:
            ci += timing.compute_input_ns
            inf += timing.compute_infer_ns
            co += timing.compute_output_ns
            self._record_batch(timing)
        else:
            self.execution_count += 1
        self.compute_input.add(ci)
        self.compute_infer.add(inf)
        self.compute_output.add(co)
        self.queue.add(total_ns - ci - inf - co)

    def _record_batch(self, timing: Timing) -> None:
        if timing.batch_id in self._seen:
            return
        self._seen[timing.batch_id] = None
        if len(self._seen) > _SEEN_BATCHES:
            self._seen.popitem(last=False)
        self.execution_count += 1
        batch = self.batches.setdefault(max(1, timing.batch_size), _BatchStats())
        batch.compute_input.add(timing.compute_input_ns)
        batch.compute_infer.add(timing.compute_infer_ns)
        batch.compute_output.add(timing.compute_output_ns)

    def record_failure(self, total_ns: int) -> None:
        self.fail.add(total_ns)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self.success.to_json(),
                "fail": self.fail.to_json(),
                "queue": self.queue.to_json(),
                "compute_input": self.compute_input.to_json(),
                "compute_infer": self.compute_infer.to_json(),
                "compute_output": self.compute_output.to_json(),
                "cache_hit": Duration().to_json(),
                "cache_miss": Duration().to_json(),
            },
            "batch_stats": [
                {
                    "batch_size": size,
                    "compute_input": b.compute_input.to_json(),
                    "compute_infer": b.compute_infer.to_json(),
                    "compute_output": b.compute_output.to_json(),
                }
                for size, b in sorted(self.batches.items())
            ],
            "memory_usage": [],
        }


class StatsRegistry:
    """ModelStats by model name (one version per name is served)."""

    def __init__(self) -> None:
        self._models: dict[str, ModelStats] = {}

    def get(self, name: str, version: str = "1") -> ModelStats:
        stats = self._models.get(name)
        if stats is None:
            stats = self._models[name] = ModelStats(name=name, version=version or "1")
        elif version and stats.version != version:
            stats.version = version
        return stats

    def to_json(self, names: list[str]) -> list[dict[str, Any]]:
        """Statistics of `names` (models without traffic yet report zeros)."""
        return [self.get(name).to_json() for name in names]
