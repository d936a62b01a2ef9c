"""Parse perf_analyzer's ``-f <csv> --verbose-csv`` report into modelyzer Metrics.

perf_analyzer 2.51 writes a header row and one row per load value. Measured with the real binary:

``Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server
Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,
request/response,response wait`` and, with ``--collect-metrics``, ``Avg GPU Utilization,Avg GPU Power Usage,Max
GPU Memory Usage,Total GPU Memory`` whose cells look like ``GPU-aaaa:0.5;GPU-bbbb:0.25;`` (empty when the server
exports no ``nv_gpu_*`` metrics). With ``--request-rate-range`` the first column is ``Request Rate``.

Latencies are µs (reported as ms), GPU utilization a fraction (reported as %), GPU memory bytes (reported as
MB = bytes / 1e6); ``gpu_free_memory`` is total − used. Missing or empty columns yield no metric.
"""

from __future__ import annotations

import csv
import io

from modelyzer.kernel.models import LoadSpec, Metric

#: column → (tag, multiplier, divisor) applied to the cell (divisions keep µs → ms values exact-looking)
NON_GPU_COLUMNS: dict[str, tuple[str, float, float]] = {
    "Inferences/Second": ("perf_throughput", 1.0, 1.0),
    "Avg latency": ("perf_latency_avg", 1.0, 1000.0),
    "p50 latency": ("perf_latency_p50", 1.0, 1000.0),
    "p90 latency": ("perf_latency_p90", 1.0, 1000.0),
    "p95 latency": ("perf_latency_p95", 1.0, 1000.0),
    "p99 latency": ("perf_latency_p99", 1.0, 1000.0),
    "request/response": ("perf_client_send_recv", 1.0, 1000.0),
    "send/recv": ("perf_client_send_recv", 1.0, 1000.0),
    "response wait": ("perf_client_response_wait", 1.0, 1000.0),
    "Server Queue": ("perf_server_queue", 1.0, 1000.0),
    "Server Compute Input": ("perf_server_compute_input", 1.0, 1000.0),
    "Server Compute Infer": ("perf_server_compute_infer", 1.0, 1000.0),
    "Server Compute Output": ("perf_server_compute_output", 1.0, 1000.0),
}
GPU_COLUMNS: dict[str, tuple[str, float, float]] = {
    "Avg GPU Utilization": ("gpu_utilization", 100.0, 1.0),
    "Avg GPU Power Usage": ("gpu_power_usage", 1.0, 1.0),
    "Max GPU Memory Usage": ("gpu_used_memory", 1.0, 1e6),
}
TOTAL_GPU_MEMORY = "Total GPU Memory"
LOAD_COLUMNS = ("Concurrency", "Request Rate")


def _number(cell: str | None) -> float | None:
    if cell is None:
        return None
    try:
        return float(cell.strip())
    except ValueError:
        return None


def parse_gpu_cell(cell: str | None) -> dict[str, float]:
    """``"GPU-a:0.5;GPU-b:0.25;"`` → ``{"GPU-a": 0.5, "GPU-b": 0.25}`` (malformed parts are skipped)."""
    out: dict[str, float] = {}
    for part in (cell or "").split(";"):
        uuid, sep, value = part.strip().rpartition(":")
        number = _number(value) if sep else None
        if uuid and number is not None:
            out[uuid] = number
    return out


def read_rows(text: str) -> list[dict[str, str]]:
    """The CSV's data rows as dicts keyed by header (stripped); blank lines are ignored."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return []
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = [h.strip() for h in next(reader)]
    return [dict(zip(header, (c.strip() for c in row), strict=False)) for row in reader if row]


def select_row(rows: list[dict[str, str]], load: LoadSpec | None) -> dict[str, str] | None:
    """The row of the measured load (first column = concurrency or request rate); else the last row."""
    if not rows:
        return None
    target = _number(str(load.value)) if load is not None and load.mode != "request_intervals" else None
    if target is not None:
        for row in rows:
            for column in LOAD_COLUMNS:
                if _number(row.get(column)) == target:
                    return row
    return rows[-1]


def row_metrics(row: dict[str, str]) -> list[Metric]:
    """Metrics of one CSV row (non-GPU first, then per-GPU sorted by UUID)."""
    metrics: list[Metric] = []
    seen: set[str] = set()
    for column, (tag, mul, div) in NON_GPU_COLUMNS.items():
        value = _number(row.get(column))
        if value is None or tag in seen:
            continue
        seen.add(tag)
        metrics.append(Metric(tag, value * mul / div))
    per_gpu: dict[str, dict[str, float]] = {}
    for column, (tag, mul, div) in GPU_COLUMNS.items():
        for uuid, value in parse_gpu_cell(row.get(column)).items():
            per_gpu.setdefault(uuid, {})[tag] = value * mul / div
    used_bytes = parse_gpu_cell(row.get("Max GPU Memory Usage"))
    for uuid, total in parse_gpu_cell(row.get(TOTAL_GPU_MEMORY)).items():
        if uuid in used_bytes:
            per_gpu.setdefault(uuid, {})["gpu_free_memory"] = (total - used_bytes[uuid]) / 1e6
    for uuid in sorted(per_gpu):
        for tag, value in per_gpu[uuid].items():
            metrics.append(Metric(tag, value, gpu_uuid=uuid))
    return metrics


def parse_csv(text: str, load: LoadSpec | None = None) -> list[Metric]:
    """Metrics of the measured load from a perf_analyzer ``--verbose-csv`` file ([] if it has no data row)."""
    row = select_row(read_rows(text), load)
    return row_metrics(row) if row is not None else []
