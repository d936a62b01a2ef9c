"""The dashboard's values without a browser: ranked rows with ties, the compare view, the frontier, the ETA, the
agents probe — over a real results DB written through the Store API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from modelyzer.frontends.web import figures, views
from modelyzer.frontends.web.live import AgentsProbe, controller_address, eta, live_state
from modelyzer.frontends.web.snapshot import ResultsDB
from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, ModelSpec, RunConfig
from modelyzer.kernel.store import Run, Store

MODEL = "m"


def variant(instances: int, batch: int) -> ConfigVariant:
    return ConfigVariant(MODEL, {"name": MODEL, "max_batch_size": batch,
                                 "instance_group": [{"count": instances, "kind": "KIND_CPU"}]})


def record(store: Store, run_id: int, v: ConfigVariant, concurrency: int, throughput: float, p99: float,
           ci: float = 2.0) -> None:
    rc = store.name_run_config(RunConfig(MODEL, v, LoadSpec(concurrency=concurrency)))
    metrics = (Metric("perf_throughput", throughput), Metric("perf_throughput_ci", ci), Metric("perf_latency_p99", p99),
               Metric("perf_latency_p99_ci", ci))
    store.record(run_id, rc, Measurement(rc.key, metrics=metrics, started_at=1.0, finished_at=2.0))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "results.db"
    store = Store(path)
    run_id = store.start_run({"export_path": str(tmp_path)})
    spec = ModelSpec(MODEL, constraints=(), cpu_only=True)
    store.upsert_model(MODEL, {"name": MODEL}, attrs.asdict(spec))
    record(store, run_id, variant(2, 8), 4, 1000.0, 9.0)
    record(store, run_id, variant(1, 8), 4, 990.0, 9.5)  # within the noise of the first: tied, fewer instances
    record(store, run_id, variant(1, 8), 1, 400.0, 3.0)
    record(store, run_id, variant(1, 1), 4, 500.0, 20.0)
    store.record_progress(run_id, 4, 6)
    store.close()
    return path


def test_ranked_rows_mark_the_statistically_tied_leaders(db: Path) -> None:
    snap = ResultsDB(db).current()
    rows = views.ranked_rows(snap, MODEL)
    assert [r.rank_text for r in rows] == ["1≈", "2≈", "3"]
    assert rows[0].knobs[0] == "1:CPU"  # the tie-break rule: fewer instances first
    assert "statistically tied" in views.tie_text(snap.tie(MODEL))


def test_compare_shows_the_config_difference_and_the_metrics(db: Path) -> None:
    snap = ResultsDB(db).current()
    names = [r.name for r in views.ranked_rows(snap, MODEL)]
    found = views.compare(snap, MODEL, names[0], names[2])
    assert found is not None
    changed = {d.key: (d.a, d.b) for d in found.diff if d.changed}
    assert changed == {"max_batch_size": ("8", "1")}
    assert found.diff[0].changed  # changed fields first
    throughput = next(m for m in found.metrics if m.tag == "perf_throughput")
    assert throughput.delta.startswith("-49.")
    assert [load for load, _, _ in found.loads] == ["concurrency 1", "concurrency 4"]
    assert views.compare(snap, MODEL, names[0], "nope") is None


def test_frontier_has_a_trace_per_config_and_the_pareto_line(db: Path) -> None:
    snap = ResultsDB(db).current()
    fig = figures.frontier(snap, MODEL)
    names = [t["name"] for t in fig["data"]]
    assert names[-1] == "frontier" and len(names) == 4
    assert "instances 1:CPU, max batch 8" in fig["data"][0]["customdata"][0][1]
    assert "load: %{customdata[2]}" in fig["data"][0]["hovertemplate"]
    assert figures.pareto([(1, 10), (2, 5), (3, 20), (4, 15)]) == [(1, 10), (3, 20)]
    assert figures.breakdown(snap, MODEL)["data"]  # percentiles: no breakdown was measured


def test_live_state_counts_down_what_the_engine_expects(db: Path) -> None:
    snap = ResultsDB(db).current()
    state = live_state(snap, AgentsProbe())
    assert state["run"]["done"] == 4 and state["run"]["total"] == 10 and state["agents"] is None
    assert len(state["latest"]) == 4
    assert eta([0.0, 1.0, 2.0], 5) == "5s" and eta([1.0], 3) == "?" and eta([], 0) == "0s"


def test_the_snapshot_follows_commits(db: Path) -> None:
    results = ResultsDB(db, min_interval=0)
    first = results.current()
    assert results.current() is first  # nothing changed: the same snapshot
    store = Store(db)
    record(store, 1, variant(4, 8), 4, 1200.0, 8.0)
    store.close()
    assert results.changed()
    assert len(results.current().results(MODEL)) == 5


def test_agents_probe_asks_the_controller_of_a_running_run_and_caches(tmp_path: Path) -> None:
    asked: list[tuple[str, Any]] = []

    def query(url: str, keys: Any, timeout: float) -> dict[str, Any]:
        asked.append((url, keys))
        if len(asked) > 1:
            raise RuntimeError("no answer")
        return {"bind": url, "agents": [], "slots": 3}

    probe = AgentsProbe(query, interval=0)
    run = Run(1, status="running", config={"agents": "tcp://0.0.0.0:5555", "insecure": True})
    assert probe.status(run) == {"bind": "tcp://127.0.0.1:5555", "agents": [], "slots": 3}
    assert probe.status(run) == {"error": "no answer", "agents": []}
    assert probe.status(attrs.evolve(run, status="finished")) is None
    assert probe.status(Run(2, status="running")) is None
    assert controller_address("tcp://*:7") == "tcp://127.0.0.1:7"


def test_breakdown_stacks_the_parts_a_load_generator_measured(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    run_id = store.start_run({"export_path": str(tmp_path)})
    store.upsert_model(MODEL, {"name": MODEL}, attrs.asdict(ModelSpec(MODEL)))
    rc = store.name_run_config(RunConfig(MODEL, variant(1, 8), LoadSpec(concurrency=1)))
    parts = {"perf_client_send_recv": 0.2, "perf_server_queue": 0.5, "perf_server_compute_infer": 1.5}
    store.record(run_id, rc, Measurement(rc.key, metrics=(Metric("perf_throughput", 100.0),
                                                         *(Metric(t, v) for t, v in parts.items()))))
    store.close()
    fig = figures.breakdown(ResultsDB(tmp_path / "r.db").current(), MODEL)
    assert fig["layout"]["barmode"] == "stack"
    assert [(t["name"], t["y"]) for t in fig["data"]] == [("Client send/recv", [0.2]), ("Server queue", [0.5]),
                                                          ("Server compute infer", [1.5])]
