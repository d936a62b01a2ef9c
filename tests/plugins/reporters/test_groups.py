"""Reports of models profiled concurrently, as a profile stores them (Store.name_run_config, Store.record of
`RunConfig.group`s): CSV rows and cells, the summary (name, headline, table), best_config.json per model, plots,
no detailed report — and which specs are reported (`groups.report_specs`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import attrs
import pytest

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.models import (
    ConfigVariant,
    LoadSpec,
    Measurement,
    Metric,
    ModelSpec,
    RunConfig,
    group_spec,
)
from modelyzer.kernel.profile import Profile
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters.groups import report_specs
from tests.plugins.reporters.test_summary import html_text, write

GPU = "GPU-g"


def config_of(model: str, count: int, mbs: int, kind: str = "KIND_GPU") -> dict[str, Any]:
    return {"name": model, "platform": "onnxruntime_onnx", "max_batch_size": mbs,
            "instance_group": [{"count": count, "kind": kind}]}


#: (a's (count, mbs), b's (count, mbs)) → measurements [(a's concurrency, a's (throughput, p99), b's …)]
COMBOS = {
    ((1, 8), (1, 4)): [(1, (100.0, 4.0), 2, (40.0, 6.0)), (2, (150.0, 8.0), 2, (50.0, 9.0))],  # both default
    ((2, 8), (1, 4)): [(4, (300.0, 12.0), 8, (60.0, 30.0)),  # b's p99 over 25: fails
                       (2, (250.0, 7.0), 4, (55.0, 11.0))],
    ((1, 2), (2, 4)): [(2, (140.0, 9.0), 4, (90.0, 10.0))],
}


def make_config(export: Path, **values: Any) -> ProfileConfig:
    return config_from_dict({"profile_models": {"a": {}, "b": {"constraints": {"perf_latency_p99": {"max": 25}}}},
                             "run_config_profile_models_concurrently_enable": True, "export_path": str(export),
                             **values}, check_paths=False)


def build(path: Path) -> tuple[Store, ProfileConfig]:
    """A profiled group "a,b" (the config as a profile groups it: one `group_spec`)."""
    config = make_config(path.parent)
    group = group_spec(tuple(config.models))
    config = attrs.evolve(config, models=(group,))
    store = Store(path)
    run_id = store.start_run(config.to_dict())
    store.upsert_model("a,b", {"_members": [{"model": "a", "config": config_of("a", 1, 8)},
                                            {"model": "b", "config": config_of("b", 1, 4)}]}, attrs.asdict(group))
    store.record_gpu(GPU, "Tesla T4", 16 * 2**30)
    for ((ca, ma), (cb, mb)), points in COMBOS.items():
        default = (ca, ma, cb, mb) == (1, 8, 1, 4)
        for conc_a, (tput_a, p99_a), conc_b, (tput_b, p99_b) in points:
            rc = store.name_run_config(RunConfig.group((
                RunConfig("a", ConfigVariant("a", config_of("a", ca, ma), is_default=default),
                          LoadSpec(concurrency=conc_a)),
                RunConfig("b", ConfigVariant("b", config_of("b", cb, mb), is_default=default),
                          LoadSpec(concurrency=conc_b)))))
            own = {"a": {"perf_throughput": tput_a, "perf_latency_p99": p99_a},
                   "b": {"perf_throughput": tput_b, "perf_latency_p99": p99_b}}
            values = [Metric(tag, metrics.combine(tag, [own["a"][tag], own["b"][tag]])) for tag in own["a"]]
            values += [Metric(metrics.model_tag(tag, m), v) for m, vs in own.items() for tag, v in vs.items()]
            values += [Metric("gpu_used_memory", 1000.0 + tput_a, GPU), Metric("gpu_utilization", 60.0, GPU)]
            store.record(run_id, rc, Measurement(rc.key, metrics=tuple(values)))
    store.update_run(run_id, status="finished")
    return store, config


@pytest.fixture
def profiled(tmp_path: Path) -> tuple[Store, ProfileConfig]:
    return build(tmp_path / "results.db")


def test_members_are_named_in_their_own_series(profiled: Any) -> None:
    store, _ = profiled
    assert [v.name for v in store.variants("a,b")] == [
        "a_config_default,b_config_default", "a_config_0,b_config_default", "a_config_1,b_config_0"]
    assert [v.name for v in store.variants("b")] == ["b_config_default", "b_config_0"]
    results = store.results("a,b")
    assert [[m.load.concurrency for m in r.run_config.members] for r in results][:2] == [[1, 2], [2, 2]]


def test_csv_rows_and_cells(profiled: Any, tmp_path: Path) -> None:
    store, config = profiled
    write(store, config, "csv")
    rows = (tmp_path / "results" / "metrics-model-inference.csv").read_text().splitlines()
    assert rows == [
        "Model,Batch,Concurrency,Model Config Path,Instance Group,Max Batch Size,Satisfies Constraints,"
        "Throughput (infer/sec),p99 Latency (ms)",
        # a_config_0 (passing at 2/4) beats the default and a_config_1 on a's and b's throughput together
        '"a,b","1,1","2,4","a_config_0,b_config_default","2:GPU,1:GPU","8,4",Yes,"305.0, [250.0,55.0]",'
        '"9.0, [7.0,11.0]"',
        '"a,b","1,1","4,8","a_config_0,b_config_default","2:GPU,1:GPU","8,4",No,"360.0, [300.0,60.0]",'
        '"21.0, [12.0,30.0]"',
        '"a,b","1,1","2,4","a_config_1,b_config_0","1:GPU,2:GPU","2,4",Yes,"230.0, [140.0,90.0]",'
        '"9.5, [9.0,10.0]"',
        '"a,b","1,1","2,2","a_config_default,b_config_default","1:GPU,1:GPU","8,4",Yes,"200.0, [150.0,50.0]",'
        '"8.5, [8.0,9.0]"',
        '"a,b","1,1","1,2","a_config_default,b_config_default","1:GPU,1:GPU","8,4",Yes,"140.0, [100.0,40.0]",'
        '"5.0, [4.0,6.0]"',
    ]
    gpu = (tmp_path / "results" / "metrics-model-gpu.csv").read_text().splitlines()
    assert gpu[1] == '"a,b",GPU-g,"1,1","2,4","a_config_0,b_config_default","2:GPU,1:GPU",Yes,1250.0,60.0,'


def test_summary_report(profiled: Any, tmp_path: Path) -> None:
    store, config = profiled
    paths = write(store, config, "summary")
    page = tmp_path / "reports" / "summaries" / "a,b" / "result_summary.html"
    assert page in paths
    html, text = page.read_text(), html_text(page)
    assert "<h3>Model: a and b</h3>" in html
    assert "Constraint targets: b: Max p99 Latency: 25 ms" in text
    gain = round(0.5 * (250 - 150) / 150 * 100 + 0.5 * (55 - 50) / 50 * 100)
    assert (f"In 5 measurements across 3 configurations, the combination of a_config_0 and b_config_default is "
            f"{gain}% better than the default configuration at maximizing throughput") in text
    assert "<li><strong>a_config_0</strong>: 2 GPU instances with a max batch size of 8" in html
    assert "<li><strong>b_config_default</strong>: 1 GPU instance with a max batch size of 4" in html
    assert "Per model values are parenthetical." in text
    assert ("<td>a_config_0<br>b_config_default</td><td>(8, 4)</td><td>(Disabled, Disabled)</td>"
            "<td>(2:GPU, 1:GPU)</td><td><strong>9.0</strong> (7.0, 11.0)</td>"
            "<td><strong>305.0</strong> (250.0, 55.0)</td><td>1250</td><td>60.0</td><td>(2, 4)</td><td>Yes</td>") in html
    assert sorted(p.name for p in (tmp_path / "plots" / "simple" / "a,b").iterdir()) == [
        "gpu_mem_v_latency.png", "throughput_v_latency.png"]


def test_best_config_per_model(profiled: Any, tmp_path: Path) -> None:
    store, config = profiled
    paths = write(store, config, "best_config")
    out = tmp_path / "best_configs" / "a,b"
    assert paths == [out / "best_config.json", out / "a" / "config.pbtxt", out / "b" / "config.pbtxt"]
    doc = json.loads((out / "best_config.json").read_text())
    assert (doc["model"], doc["models"], doc["variant"]) == ("a,b", ["a", "b"], "a_config_0,b_config_default")
    assert [(m["variant"], m["knobs"]["instance_group"], m["load"]["concurrency"]) for m in doc["members"]] == [
        ("a_config_0", "2:GPU", 2), ("b_config_default", "1:GPU", 4)]
    assert doc["members"][1]["metrics"]["perf_throughput"] == 55.0 and doc["metrics"]["perf_throughput"] == 305.0
    assert doc["constraints"] == [{"tag": "perf_latency_p99@b", "min": None, "max": 25.0, "value": 11.0, "met": True}]
    assert 'name: "a"' in (out / "a" / "config.pbtxt").read_text()
    assert "count: 2" in (out / "a" / "config.pbtxt").read_text()


def test_no_detailed_report_for_a_group(profiled: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, config = profiled
    with caplog.at_level(logging.INFO, logger="modelyzer"):
        assert write(store, config, "detailed") == []
    assert [r.getMessage() for r in caplog.records if "detailed" in r.getMessage()] == [
        "no detailed reports for a,b: models profiled concurrently get a summary only (as in Model Analyzer)"]


def test_the_config_of_a_reporting_command_reports_the_group(profiled: Any, tmp_path: Path) -> None:
    """A config naming the models (not grouped, e.g. `report`'s) reports the stored group with its settings; a
    model of it that the DB also holds on its own is reported on its own too."""
    store, _ = profiled
    plain = make_config(tmp_path, num_configs_per_model=1)
    (group,) = report_specs(store, plain)
    assert group.name == "a,b" and [c.tag for c in group.constraints] == ["perf_latency_p99@b"]
    store.upsert_model("a", config_of("a", 1, 8), {"name": "a"})
    assert [s.name for s in report_specs(store, plain)] == ["a,b", "a"]
    assert [s.name for s in report_specs(store, attrs.evolve(plain, models=(ModelSpec("c"),)))] == ["c"]
    ranked = Profile(plain, store=store).rank()
    assert set(ranked) == {"a", "b"}  # the plain config ranks its own models; the reporters rank the group
    write(store, plain, "csv")
    assert len((tmp_path / "results" / "metrics-model-inference.csv").read_text().splitlines()) == 6
