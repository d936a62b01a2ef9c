"""Record the SYNTHETIC surfaces of `synthetic.py` into small results DBs: `bench/surfaces/synthetic-*.db`.

Run: `.venv/bin/python bench/surfaces/make.py` (rewrites the DBs). Each DB holds one model whose variants are
Model Analyzer's default brute space on a CPU server (the default config, instance count 1..5 × max_batch_size
1..128, KIND_CPU, `dynamic_batching {}`), each measured at every power-of-two concurrency 1..1024 with client
batch 1 — 451 measurements, answered by the analytic model, not by a server. A `bench_surface` table labels the
DB as synthetic and carries its latency budget (p99, ms) for `bench/search.py`.

Recorded surfaces from real brute runs (MLServer on CPU; Triton on GPU hosts) belong next to these, without the
`synthetic-` prefix: record them with `modelyzer profile --run-config-search-mode brute --results-db <db>`.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bench.surfaces.synthetic import SURFACES, Surface  # noqa: E402
from modelyzer.kernel.config import config_from_dict  # noqa: E402
from modelyzer.kernel.models import LoadSpec, Measurement, Metric, ModelSpec, RunConfig  # noqa: E402
from modelyzer.kernel.store import Store, SurfaceLabel  # noqa: E402
from modelyzer.plugins.search.space import config_space  # noqa: E402

CONCURRENCY = [2**i for i in range(11)]
LABEL = "SYNTHETIC: analytic queueing model (bench/surfaces/synthetic.py), not measured on a server"


def record(surface: Surface, path: Path) -> int:
    """Write `surface`'s power-of-two grid into a fresh results DB at `path`; returns the measurement count."""
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = Store(path)
    spec = ModelSpec(surface.name, cpu_only=True)
    base = surface.base_config()
    store.upsert_model(spec.name, base, {"name": spec.name, "cpu_only": True})
    run_id = store.start_run({"synthetic_surface": surface.name})
    space = config_space(spec, base, config_from_dict({"profile_models": spec.name}, check_paths=False))
    variants = [space.default_variant()] + [
        space.variant(coord) for coord in itertools.product(*(range(len(d)) for d in space.dimensions))
    ]
    count = 0
    for variant in variants:
        named = store.name_variant(variant)
        for concurrency in CONCURRENCY:
            rc = RunConfig(spec.name, named, LoadSpec(concurrency=concurrency))
            values = surface.metrics(rc)
            store.record(run_id, rc, Measurement(rc.key, metrics=tuple(Metric(k, v) for k, v in values.items())))
            count += 1
    store.update_run(run_id, status="synthetic", measured=count)
    store.label_surface(SurfaceLabel(surface.name, surface.latency_budget, LABEL))
    store.vacuum()
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return count


def main() -> int:
    for surface in SURFACES:
        path = HERE / f"{surface.name}.db"
        count = record(surface, path)
        print(f"{path.relative_to(HERE.parents[1])}: {count} measurements, {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
