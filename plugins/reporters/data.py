"""What the summary, detailed and best-config reporters read from the results store, computed once.

`model_data()` gathers everything a report about one model needs — its results, the ranking, the counts of
Model Analyzer's headline sentence (measurements and configurations with a successful measurement), the
failed measurements, the hardware, a stable colour per config — and `run_infos()` the search statistics of
the `runs` table. Formatting helpers shared by the reporters live here too, so the HTML, the JSON and the
tests agree on every number.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

import attrs

from modelyzer.kernel import assembly, metrics, ranking
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.models import ConfigVariant, Constraint, ModelSpec, Objective, Result
from modelyzer.kernel.store import Store

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")
LOAD_TAGS = ("batch_size", "concurrency", "request_rate")
LOAD_HEADERS = {"batch_size": "Client Batch Size", "concurrency": "Request Concurrency", "request_rate": "Request Rate"}
GIB = 2**30


# ---- hardware ---------------------------------------------------------------------------------------------


@attrs.frozen
class Hardware:
    """Where the measurements ran: GPUs from the store, or this host's CPU and RAM for CPU-only runs."""

    kind: str  # "gpu", "cpu" or "remote" (a remote server without GPU metrics: its hardware is unknown)
    description: str  # "1 x NVIDIA TITAN RTX" / "Intel(R) Xeon(R) Processor (2 cores)" / the server's address
    memory_gb: float | None

    @property
    def phrase(self) -> str:
        """The words after "on" in the headline sentence."""
        if self.kind == "remote":
            return f"the remote server {self.description}"
        return f"GPU(s) {self.description}" if self.kind == "gpu" else f"CPU {self.description}"

    @property
    def memory_text(self) -> str:
        return f"{self.memory_gb:.1f} GB" if self.memory_gb is not None else "unknown"


def cpu_description() -> str:
    """This host's CPU model name (from /proc/cpuinfo) and core count."""
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count() or 1
    return f"{name or 'unknown CPU'} ({cores} core{'s' if cores != 1 else ''})"


def total_ram_gb() -> float | None:
    try:
        import psutil

        return float(psutil.virtual_memory().total) / GIB
    except Exception:  # pragma: no cover - psutil is a dependency; be safe in reports anyway
        return None


def gpu_memory_gb(total_memory: Any) -> float:
    """GiB of a `gpus.total_memory` value (bytes, as Model Analyzer's checkpoints and the store hold it)."""
    return float(total_memory or 0) / GIB


def hardware(store: Store, gpu_metrics: bool, hosts: Sequence[str] = (), remote_server: str = "") -> Hardware:
    """GPUs recorded in the store when GPU metrics are reported, else the CPU of the measuring host.

    The CPU is read from this machine only when the measurements were taken here (or their host is unknown);
    `remote_server` (the address of a server in `remote` launch mode) has no CPU this host can read.
    """
    gpus = store.gpus()
    if gpu_metrics and gpus:
        counts: dict[str, int] = {}
        for gpu in gpus:
            counts[gpu.name] = counts.get(gpu.name, 0) + 1
        text = ", ".join(f"{n} x {name}" for name, n in counts.items())
        return Hardware("gpu", text, round(sum(gpu_memory_gb(g.total_memory) for g in gpus), 1))
    if remote_server:
        return Hardware("remote", remote_server, None)
    here = socket.gethostname()
    remote = sorted({h for h in hosts if h and h not in (here, "localhost", "127.0.0.1")})
    if remote:
        return Hardware("cpu", f"of host {', '.join(remote)}", None)
    return Hardware("cpu", cpu_description(), total_ram_gb())


# ---- runs (search statistics) ------------------------------------------------------------------------------


@attrs.frozen
class RunInfo:
    """One row of the `runs` table as the summary report shows it."""

    id: int
    status: str
    strategy: str
    launch_mode: str
    server: str  # the gRPC/HTTP endpoint the profile used
    measured: int
    skipped: int
    failed: int
    wall_seconds: float
    window_seconds: float
    server_starts: int
    model_loads: int
    started_at: float
    retry_seconds: float = 0.0


def run_infos(store: Store) -> list[RunInfo]:
    out = []
    for run in store.runs():
        cfg = run.config
        out.append(RunInfo(
            id=run.id, status=run.status or "unknown",
            strategy=str(cfg.get("run_config_search_mode") or "–"),
            launch_mode=str(cfg.get("triton_launch_mode") or ""),
            server=str(cfg.get("triton_http_endpoint" if cfg.get("client_protocol") == "http" else "triton_grpc_endpoint")
                       or ""),
            measured=run.measured, skipped=run.skipped, failed=run.failed, wall_seconds=run.wall_seconds,
            window_seconds=run.window_seconds, server_starts=run.server_starts, model_loads=run.model_loads,
            started_at=run.started_at, retry_seconds=run.retry_seconds,
        ))
    return out


def unfinished_note(runs: Sequence[RunInfo]) -> str | None:
    """A sentence for reports when the latest profile did not finish, else None."""
    if not runs:
        return None
    last = runs[-1]
    if last.status == "interrupted":
        return (f"The profile (run {last.id}) was interrupted: this report covers the measurements stored before it "
                "stopped. Run the same profile command again to resume it.")
    if last.status in ("running", "failed", "killed"):
        what = {"failed": "failed", "killed": "was killed"}.get(last.status, "did not finish (killed, or still running)")
        return f"The profile (run {last.id}) {what}: this report covers the measurements stored so far."
    return None


# ---- model specs ---------------------------------------------------------------------------------------------


def stored_spec(store: Store, model: str) -> ModelSpec:
    """The ModelSpec a profile stored for `model`; defaults (throughput objective, no constraints) otherwise."""
    return store.model_spec(model)


def stored_specs(store: Store) -> tuple[ModelSpec, ...]:
    return tuple(stored_spec(store, name) for name in store.models())


# ---- per-model data ----------------------------------------------------------------------------------------------


@attrs.frozen
class ModelData:
    """Everything one model's reports show, computed from the store."""

    spec: ModelSpec
    results: tuple[Result, ...]
    ranked: tuple[RankedConfig, ...]  # every config, best first
    top: tuple[RankedConfig, ...]  # top configs (+ the default), best first
    failed: tuple[Result, ...]
    variants: dict[str, ConfigVariant]  # every stored config of the model, by name (store order)
    colors: dict[str, str]
    hardware: Hardware
    gpu_metrics: bool
    cpu_metrics: bool
    load_tag: str
    batch_sizes: tuple[int, ...]

    @property
    def measurements(self) -> int:
        """Model Analyzer's N: successful measurements of this model (passing or not)."""
        return sum(1 for r in self.results if r.measurement.ok)

    @property
    def configurations(self) -> int:
        """Model Analyzer's M: configs with at least one successful measurement."""
        return len(self.ranked)

    @property
    def best(self) -> RankedConfig | None:
        return self.top[0] if self.top else None

    @property
    def tie(self) -> ranking.Tie | None:
        """The leading configs the measurements cannot tell apart (`ranking.tie`), None when the best stands alone."""
        return ranking.tie(self.ranked, self.spec.objectives)

    @property
    def default(self) -> RankedConfig | None:
        return next((r for r in self.ranked if r.best.run_config.variant.is_default), None)

    def gain(self) -> float | None:
        """Percent gain of the best config's best measurement over the default's best passing one (None: no
        default measurement meets the constraints, or nothing was measured)."""
        best, default = self.best, self.default
        if best is None or default is None:
            return None
        passing = [r for r in default.results if r.measurement.ok
                   and ranking.passes(self.spec.constraints, ranking.measurement_values(r.measurement))]
        if not passing:
            return None
        found = ranking.best_result(passing, self.spec.objectives, self.spec.constraints)
        assert found is not None
        return ranking.gain_percent(ranking.measurement_values(best.best.measurement),
                                    ranking.measurement_values(found[0].measurement), self.spec.objectives)

    def ok_results(self, variant: str) -> list[Result]:
        return [r for r in self.results if r.measurement.ok and r.run_config.variant.name == variant]


def model_data(store: Store, config: ProfileConfig, spec: ModelSpec, top: Sequence[RankedConfig] | None = None) -> ModelData:
    """Collect one model's report data; `top` is the ranker's top-N (computed here when not given)."""
    # the reference workload's results (the CSV has every workload's)
    results = tuple(ranking.at_workload(store.results(spec.name), assembly.workloads(config)[0]))
    ranked = tuple(ranking.rank(results, spec.objectives, spec.constraints))
    if top is None:
        top = ranking.rank(results, spec.objectives, spec.constraints,
                           top_n=config.num_configs_per_model, include_default=True)
    variants = {v.name: v for v in store.variants(spec.name)}
    for r in results:
        variants.setdefault(r.run_config.variant.name, r.run_config.variant)
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(variants)}
    ok = [r for r in results if r.measurement.ok]
    tags = {m.tag for r in ok for m in r.measurement.metrics}
    has_gpu_values = any(m.gpu_uuid is not None or metrics_is_gpu(m.tag) for r in ok for m in r.measurement.metrics)
    gpu_metrics = has_gpu_values and (not spec.cpu_only or config.always_report_gpu_metrics)
    runs = run_infos(store)
    remote = runs[-1].server if runs and runs[-1].launch_mode == "remote" else ""
    loads = [load for r in ok for load in ([m.load for m in r.run_config.members] or [r.run_config.load])]
    load_tag = "request_rate" if any(load.request_rate is not None for load in loads) else "concurrency"
    return ModelData(
        spec=spec, results=results, ranked=ranked, top=tuple(top),
        failed=tuple(r for r in results if not r.measurement.ok), variants=variants, colors=colors,
        hardware=hardware(store, gpu_metrics, [r.measurement.host for r in results], remote),
        gpu_metrics=gpu_metrics, cpu_metrics="cpu_used_ram" in tags, load_tag=load_tag,
        batch_sizes=tuple(sorted({load.batch_size for load in loads})),
    )


def metrics_is_gpu(tag: str) -> bool:
    info = metrics.get(tag)
    return bool(info and info.gpu)


# ---- values and formatting ----------------------------------------------------------------------------------------


def value(result: Result, tag: str) -> float | None:
    """A plot/table value: load parameters from the RunConfig, metrics aggregated across GPUs."""
    load = result.run_config.load
    if tag in LOAD_TAGS:
        if result.run_config.members:  # a concurrent group's models each have their own load: no one value
            return None
        raw = getattr(load, tag)
        return float(raw) if raw is not None else None
    return ranking.measurement_values(result.measurement).get(tag)


def label(tag: str) -> str:
    """Axis/column label of a tag."""
    if tag in LOAD_HEADERS:
        return LOAD_HEADERS[tag]
    info = metrics.get(tag)
    return info.header if info else tag


def fmt(number: float | int | None) -> str:
    """Numbers as reports show them: 1 decimal from 100 up, 2 from 10, 3 below; integers as integers."""
    if number is None:
        return "–"
    if isinstance(number, int):
        return str(number)
    magnitude = abs(float(number))
    digits = 1 if magnitude >= 100 else 2 if magnitude >= 10 else 3
    return f"{float(number):.{digits}f}"


def constraint_text(c: Constraint) -> str:
    """`Max p99 Latency: 50 ms` (Model Analyzer's constraint-target wording)."""
    info = metrics.get(c.tag)
    name = info.header.rsplit(" (", 1)[0] if info else c.tag
    unit = f" {info.unit}" if info and info.unit else ""
    parts = []
    if c.min is not None:
        parts.append(f"Min {name}: {c.min:g}{unit}")
    if c.max is not None:
        parts.append(f"Max {name}: {c.max:g}{unit}")
    return ", ".join(parts)


def constraint_targets(constraints: Sequence[Constraint]) -> str:
    """The constraints as the summary lists them; a concurrent group's per model (`a: Max p99 Latency: 50 ms; b:
    …`, from their `tag@model` constraints)."""
    by_model: dict[str | None, list[str]] = {}
    for c in constraints:
        by_model.setdefault(metrics.split_model_tag(c.tag)[1], []).append(constraint_text(c))
    parts = [(f"{model}: " if model else "") + ", ".join(texts) for model, texts in by_model.items()]
    return "; ".join(parts) or "None"


def objectives_text(objectives: Sequence[Objective]) -> str:
    """`Throughput (infer/sec) ↑ 100%` for each objective, with normalized weights."""
    parts = []
    for tag, weight in ranking.normalized(objectives):
        info = metrics.get(tag)
        arrow = "higher is better" if not info or info.direction == metrics.HIGHER else "lower is better"
        model = metrics.split_model_tag(tag)[1]
        parts.append(f"{label(tag)}{f' of {model}' if model else ''} ({arrow}, weight {weight:.0%})")
    return "; ".join(parts)


def default_objectives(objectives: Sequence[Objective]) -> bool:
    return [o.tag for o in objectives] == ["perf_throughput"]


def instance_kind_word(variant: ConfigVariant, cpu_only: bool) -> str:
    kind = variant.instance_kind
    if kind == "KIND_CPU" or (kind == "KIND_AUTO" and cpu_only):
        return "CPU"
    if kind == "KIND_MODEL":
        return "model"
    return "GPU"


def platform(variant: ConfigVariant) -> str:
    return str(variant.config.get("platform") or variant.config.get("backend") or "unknown")


def knobs(variant: ConfigVariant, cpu_only: bool) -> dict[str, Any]:
    """The deployment knobs of a config, for tables and best_config.json."""
    return {
        "instance_count": variant.instance_count,
        "instance_kind": f"KIND_{instance_kind_word(variant, cpu_only).upper()}",
        "instance_group": instance_group_text(variant, cpu_only),
        "max_batch_size": variant.max_batch_size,
        "dynamic_batching": variant.dynamic_batching,
        "platform": platform(variant),
        "params": dict(variant.params),
    }


def instance_group_text(variant: ConfigVariant, cpu_only: bool) -> str:
    """`<count>:<KIND>` groups; a config without instance groups runs one instance, on CPU for CPU-only models."""
    return variant.instance_group_str(cpu_only)


def instances_phrase(variant: ConfigVariant, cpu_only: bool) -> str:
    n = variant.instance_count
    return f"{n} {instance_kind_word(variant, cpu_only)} instance{'s' if n != 1 else ''}"


def load_text(result: Result) -> str:
    """The load of a measurement; a concurrent group's per model (`a: concurrency 4; b: concurrency 8`)."""
    rc = result.run_config
    if rc.members:
        return "; ".join(f"{m.model}: {m.load.describe()}" for m in rc.members)
    return rc.load.describe()


def first_line(text: str | None, limit: int = 240) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "no error text")
    return line if len(line) <= limit else line[: limit - 1] + "…"
