"""Checkpoints of models profiled concurrently (`--run-config-profile-models-concurrently-enable`).

Model Analyzer's own multi-model checkpoint: its golden CSVs byte for byte (test_ma_checkpoint), and here its own
summary facts (`ma-summary/summary.json`: headline, bullets, counts, table), its measurement keys, its plot data
and no detailed report. Then a checkpoint of three models built here — request rates, a constraint on one model,
another model ranked by latency with weighting 3, a CPU-only model — whose order and cells are known by hand, so
the import and the reports follow Model Analyzer's rules rather than the oracle's numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelyzer.frontends.cli.main import cli
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.models import ConfigVariant
from modelyzer.kernel.profile import Profile
from modelyzer.kernel.store import Store
from modelyzer.plugins.importers.ma_checkpoint import import_checkpoint
from modelyzer.plugins.loadgen.perf_analyzer_args import measurement_key
from modelyzer.plugins.reporters import plots
from modelyzer.plugins.reporters import render as report_render
from modelyzer.plugins.reporters import summary as summary_report
from modelyzer.plugins.reporters.data import model_data
from modelyzer.plugins.reporters.groups import report_specs
from tests.plugins.importers.test_ma_checkpoint import ORACLES, export_csvs, oracle, perf_config, write_ckpt

NAME = "multi-model-ckpt"
GROUP = "resnet50_libtorch,vgg19_libtorch"


@pytest.fixture(autouse=True)
def _html_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_render, "pdf_available", lambda: False)


def strip(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def expected_summary() -> dict[str, Any]:
    path = ORACLES / NAME / "ma-summary" / "summary.json"
    if not path.is_file():
        pytest.skip(f"oracle {path} absent")
    return json.loads(path.read_text())["reports"][GROUP]  # type: ignore[no-any-return]


def oracle_config(export: Path) -> ProfileConfig:
    return config_from_dict({"profile_models": GROUP, "run_config_profile_models_concurrently_enable": True,
                             "export_path": str(export)}, check_paths=False)


# --- Model Analyzer's multi-model checkpoint ----------------------------------------------------------------------
def test_the_oracle_imports_as_one_group_with_each_models_variants(tmp_path: Path) -> None:
    path = oracle(NAME)
    state = json.loads(path.read_text())
    results = state["ResultManager.results"]["_results"][GROUP]
    store = Store(tmp_path / "r.db")
    summary = import_checkpoint(path, store)
    assert (summary.models, summary.variants, summary.measurements) == ((GROUP,), 7, 12)
    assert store.models() == [GROUP]
    spec = store.model_spec(GROUP)
    assert [m.name for m in spec.members] == GROUP.split(",")
    assert [(o.tag, o.weight) for o in spec.objectives] == [("perf_throughput@resnet50_libtorch", 0.5),
                                                          ("perf_throughput@vgg19_libtorch", 0.5)]
    assert [v.name for v in store.variants(GROUP)] == list(results)
    assert store.variant("vgg19_libtorch_config_4").model == "vgg19_libtorch"
    base = store.base_config(GROUP)["_members"]
    assert [(m["model"], m["config"]["max_batch_size"]) for m in base] == [("resnet50_libtorch", 128),
                                                                          ("vgg19_libtorch", 128)]
    imported = store.results(GROUP)
    config = oracle_config(tmp_path)
    # Model Analyzer's measurement key of a concurrent RunConfig: its models' keys, one after the other
    assert ["".join(measurement_key(m, config) for m in r.run_config.members) for r in imported] == [
        k for _, ms in results.values() for k in ms]
    first = next(iter(results["resnet50_libtorch_config_5,vgg19_libtorch_config_7"][1].values()))
    result = next(r for r in imported if r.run_config.variant.name == first["_model_variants_name"])
    resnet, vgg = (dict(mcm["_non_gpu_data"]) for mcm in first["_model_config_measurements"])
    values = result.measurement.values()
    assert values["perf_throughput@vgg19_libtorch"] == vgg["perf_throughput"]["_value"]
    assert values["perf_throughput"] == resnet["perf_throughput"]["_value"] + vgg["perf_throughput"]["_value"]
    assert values["perf_latency_p99"] == pytest.approx(
        (resnet["perf_latency_p99"]["_value"] + vgg["perf_latency_p99"]["_value"]) / 2)
    assert [m.load.concurrency for m in result.run_config.members] == [4, 8]
    assert list(result.measurement.gpu_values()) == list(first["_gpu_data"])


def test_the_summary_is_model_analyzers(tmp_path: Path) -> None:
    expected = expected_summary()
    store = Store(tmp_path / "r.db")
    import_checkpoint(oracle(NAME), store)
    config = oracle_config(tmp_path)
    (spec,) = report_specs(store, config)
    data = model_data(store, config, spec)
    headline = summary_report.headline(data)
    assert headline == strip(expected["summary_sentence"].split("<UL>")[0])
    assert (data.measurements, data.configurations) == (expected["num_measurements_N"],
                                                        expected["num_configurations_M"])
    assert data.best is not None and data.best.variant_name == expected["best_config"]
    assert [m.name for m in data.best.best.run_config.variant.members] == expected["best_config_variants"]
    headers, rows = summary_report.table(data)
    assert headers[:len(expected["table_headers"])] == expected["table_headers"]
    assert [[str(c) for c in row[:len(expected["table_headers"])]] for row in rows] == [
        [str(c) for c in row] for row in expected["table_rows"]]


def test_export_writes_model_analyzers_summary_and_no_detailed_report(tmp_path: Path) -> None:
    expected = expected_summary()
    db, out = tmp_path / "r.db", tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(cli, ["import-ma-checkpoint", str(oracle(NAME)), "--results-db", str(db),
                                 "--model-repository", str(tmp_path / "repo")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "imported 12 measurements of 7 variants" in result.output
    assert sorted(p.parent.name for p in (tmp_path / "repo").glob("*/config.pbtxt")) == GROUP.split(",")
    result = runner.invoke(cli, ["export", "--results-db", str(db), "-e", str(out), "--model", GROUP],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    html = (out / "reports" / "summaries" / GROUP / "result_summary.html").read_text()
    text = strip(html)
    assert f"<h3>{expected['subheading']}</h3>" in html
    for paragraph in expected["paragraphs"][:3]:
        assert paragraph in text
    assert strip(expected["summary_sentence"].split("<UL>")[0]) in text
    for bullet in re.findall(r"<LI>(.*?)</LI>", expected["summary_sentence"]):
        assert f"<li>{bullet.strip()}" in html  # each model's bullet (modelyzer adds its best load after it)
    assert strip(expected["paragraphs"][4]) in text
    assert strip(expected["paragraphs"][5]) in text  # "… Per model values are parenthetical."
    for row in expected["table_rows"]:
        assert "".join(f"<td>{cell}</td>" for cell in row) in html
    for caption in expected["images_in_report"]:
        assert caption in text
    assert sorted(p.name for p in (out / "plots" / "simple" / GROUP).iterdir()) == sorted(expected["plots"])
    assert not (out / "reports" / "detailed").exists()
    best = json.loads((out / "best_configs" / GROUP / "best_config.json").read_text())
    assert best["variant"] == expected["best_config"]
    assert [m["variant"] for m in best["members"]] == expected["best_config_variants"]
    assert (out / "best_configs" / GROUP / "vgg19_libtorch" / "config.pbtxt").is_file()


def test_plot_data_is_model_analyzers(tmp_path: Path) -> None:
    golden = ORACLES / NAME / "plot_manager.json"
    if not golden.is_file():
        pytest.skip(f"{golden} absent")
    expected = json.loads(golden.read_text())["_simple_plots"][GROUP]["gpu_mem_v_latency"]["_data"]
    store = Store(tmp_path / "r.db")
    import_checkpoint(oracle(NAME), store)
    config = oracle_config(tmp_path)
    (spec,) = report_specs(store, config)
    data = model_data(store, config, spec, Profile(config, store=store).rank().get(GROUP))
    drawn = {rc.variant_name: plots.points(plots.GPU_MEM_V_LATENCY, data.ok_results(rc.variant_name))
             for rc in data.top}
    assert drawn == {name: sorted(zip(d["x_data"], d["y_data"], strict=True)) for name, d in expected.items()}


# --- three models, built here --------------------------------------------------------------------------------------
GPU = "GPU-1111"
MODELS = ("a", "b", "c")
#: variant → (max batch size, instance count, kind, dynamic batching)
VARIANTS = {
    "a_config_default": (8, 1, "KIND_GPU", False), "a_config_0": (8, 2, "KIND_GPU", True),
    "a_config_1": (4, 1, "KIND_GPU", True),
    "b_config_default": (4, 1, "KIND_GPU", False), "b_config_0": (4, 2, "KIND_GPU", False),
    "b_config_1": (2, 1, "KIND_GPU", True),
    "c_config_default": (0, 1, "KIND_CPU", False), "c_config_0": (0, 2, "KIND_CPU", False),
}
#: combination → measurements: [(request rate, throughput, p99 latency) per model]
COMBOS: dict[tuple[str, ...], list[list[tuple[int, float, float]]]] = {
    ("a_config_default", "b_config_default", "c_config_default"): [
        [(8, 100.0, 5.0), (8, 50.0, 4.0), (8, 20.0, 2.0)]],                        # M0
    ("a_config_0", "b_config_1", "c_config_default"): [
        [(16, 150.0, 12.0), (8, 60.0, 3.0), (8, 20.0, 2.0)],                        # M1: a's p99 > 10
        [(8, 120.0, 8.0), (8, 55.0, 3.5), (8, 22.0, 2.0)]],                         # M2
    ("a_config_1", "b_config_0", "c_config_0"): [
        [(16, 140.0, 9.0), (16, 40.0, 4.5), (8, 30.0, 3.0)]],                       # M3
}
#: a: throughput, p99 ≤ 10 ms; b: p99 latency, weighting 3; c: throughput, CPU only (model weights .2, .6, .2)
SETTINGS = {
    "profile_models": {"a": {"constraints": {"perf_latency_p99": {"max": 10}}},
                       "b": {"objectives": {"perf_latency_p99": 10}, "weighting": 3},
                       "c": {"cpu_only": True}},
    "run_config_profile_models_concurrently_enable": True,
}


def model_config(variant: str) -> dict[str, Any]:
    mbs, count, kind, dynamic = VARIANTS[variant]
    config: dict[str, Any] = {"name": variant.split("_config_")[0], "platform": "onnxruntime_onnx", "maxBatchSize": mbs,
                              "input": [{"name": "X", "dataType": "TYPE_FP32", "dims": ["16"]}],
                              "instanceGroup": [{"count": count, "kind": kind}]}
    if dynamic:
        config["dynamicBatching"] = {}
    return config


def three_models() -> dict[str, Any]:
    results: dict[str, Any] = {}
    for combo, measurements in COMBOS.items():
        run_config = {"_triton_env": {}, "_model_run_configs": [{
            "_model_name": model,
            "_model_config_variant": {"model_config": model_config(variant), "variant_name": variant,
                                      "cpu_only": model == "c"},
            "_perf_config": perf_config(model, {"request-rate-range": 8}),
            "_composing_config_variants": [],
        } for model, variant in zip(MODELS, combo, strict=True)]}
        by_key = {}
        for i, loads in enumerate(measurements):
            by_key[f"{','.join(combo)} #{i}"] = {
                "_model_variants_name": ",".join(combo),
                "_gpu_data": {GPU: [["gpu_used_memory", {"_value": 1000.0 + 10 * i, "_timestamp": 0}],
                                    ["gpu_utilization", {"_value": 50.0, "_timestamp": 0}]]},
                "_model_config_measurements": [{
                    "_model_config_name": model,
                    "_model_specific_pa_params": {"batch-size": 1, "concurrency-range": None, "request-rate-range": rate},
                    "_non_gpu_data": [["perf_throughput", {"_value": tput, "_timestamp": 0}],
                                      ["perf_latency_p99", {"_value": p99, "_timestamp": 0}]],
                } for model, (rate, tput, p99) in zip(MODELS, loads, strict=True)],
            }
        results[",".join(combo)] = [run_config, by_key]
    return {"ResultManager.results": {"_results": {",".join(MODELS): results}},
            "ResultManager.server_only_data": {}, "MetricsManager.gpus": {GPU: {"name": "Fake GPU",
                                                                                  "total_memory": 2**34}}}


@pytest.fixture
def three(tmp_path: Path) -> tuple[Store, ProfileConfig, int]:
    store = Store(tmp_path / "r.db")
    summary = import_checkpoint(write_ckpt(tmp_path / "0.ckpt", three_models()), store)
    config = config_from_dict({**SETTINGS, "export_path": str(tmp_path)}, check_paths=False)
    return store, config, summary.run_id


def test_three_models_rank_by_per_model_objectives_constraints_and_weighting(three: Any, tmp_path: Path) -> None:
    """K1 (M2) beats K2 (M3) only because b's latency counts three times (equal weights: K2 first); M1 fails a's
    constraint; rows: each combination's passing measurements, then its failing ones."""
    store, config, run_id = three
    written = {p.name: p.read_text().splitlines() for p in export_csvs(store, run_id, config)}
    inference = written["metrics-model-inference.csv"]
    assert inference[0] == ("Model,Batch,Request Rate,Model Config Path,Instance Group,Max Batch Size,"
                            "Satisfies Constraints,Throughput (infer/sec),p99 Latency (ms)")
    assert inference[1:] == [  # (Model Analyzer's layout: a blank line after the table)
        '"a,b,c","1,1,1","8,8,8","a_config_0,b_config_1,c_config_default","2:GPU,1:GPU,1:CPU","8,2,0",Yes,'
        '"197.0, [120.0,55.0,22.0]","4.5, [8.0,3.5,2.0]"',
        '"a,b,c","1,1,1","16,8,8","a_config_0,b_config_1,c_config_default","2:GPU,1:GPU,1:CPU","8,2,0",No,'
        '"230.0, [150.0,60.0,20.0]","5.7, [12.0,3.0,2.0]"',
        '"a,b,c","1,1,1","16,16,8","a_config_1,b_config_0,c_config_0","1:GPU,2:GPU,2:CPU","4,4,0",Yes,'
        '"210.0, [140.0,40.0,30.0]","5.5, [9.0,4.5,3.0]"',
        '"a,b,c","1,1,1","8,8,8","a_config_default,b_config_default,c_config_default","1:GPU,1:GPU,1:CPU",'
        '"8,4,0",Yes,"170.0, [100.0,50.0,20.0]","3.7, [5.0,4.0,2.0]"',
        "",
    ]
    gpu = written["metrics-model-gpu.csv"]
    assert gpu[1] == ('"a,b,c",GPU-1111,"1,1,1","8,8,8","a_config_0,b_config_1,c_config_default",'
                      '"2:GPU,1:GPU,1:CPU",Yes,1010.0,50.0,')
    equal = config_from_dict({**SETTINGS, "profile_models": {"a": SETTINGS["profile_models"]["a"],  # type: ignore[index]
                                                             "b": {"objectives": {"perf_latency_p99": 10}},
                                                             "c": {"cpu_only": True}},
                              "export_path": str(tmp_path / "equal")}, check_paths=False)
    (spec,) = report_specs(store, equal)
    assert model_data(store, equal, spec).ranked[0].variant_name == "a_config_1,b_config_0,c_config_0"


def test_three_models_summary(three: Any) -> None:
    store, config, _ = three
    (spec,) = report_specs(store, config)
    assert [o.weight for o in spec.objectives] == pytest.approx([0.2, 0.6, 0.2])
    data = model_data(store, config, spec)
    # gain of M2 over M0: .2 · 20% (a's throughput) + .6 · 14.29% (b's latency) + .2 · 10% (c's throughput)
    assert data.gain() == pytest.approx(0.2 * 20 + 0.6 * 0.5 / 3.5 * 100 + 0.2 * 10)
    assert summary_report.headline(data) == (
        "In 4 measurements across 3 configurations, the combination of a_config_0 and b_config_1 and "
        "c_config_default is 15% better than the default configuration at meeting the objectives, under the given "
        "constraints, on GPU(s) 1 x Fake GPU.")
    assert summary_report.constraint_targets(spec.constraints) == "a: Max p99 Latency: 10 ms"
    headers, rows = summary_report.table(data)
    assert headers[4:6] == ["Average p99 Latency (ms)", "Total Throughput (infer/sec)"]
    assert [[str(c) for c in row] for row in rows] == [
        ["a_config_0<br>b_config_1<br>c_config_default", "(8, 2, 0)", "(Enabled, Enabled, Disabled)",
         "(2:GPU, 1:GPU, 1:CPU)", "<strong>4.5</strong> (8.0, 3.5, 2.0)", "<strong>197.0</strong> (120.0, 55.0, 22.0)",
         "1010", "50.0", "(8, 8, 8)", "Yes"],
        ["a_config_1<br>b_config_0<br>c_config_0", "(4, 4, 0)", "(Enabled, Disabled, Disabled)",
         "(1:GPU, 2:GPU, 2:CPU)", "<strong>5.5</strong> (9.0, 4.5, 3.0)", "<strong>210.0</strong> (140.0, 40.0, 30.0)",
         "1000", "50.0", "(16, 16, 8)", "Yes"],
        ["a_config_default<br>b_config_default<br>c_config_default", "(8, 4, 0)", "(Disabled, Disabled, Disabled)",
         "(1:GPU, 1:GPU, 1:CPU)", "<strong>3.7</strong> (5.0, 4.0, 2.0)", "<strong>170.0</strong> (100.0, 50.0, 20.0)",
         "1000", "50.0", "(8, 8, 8)", "Yes"],
    ]
    bullets = summary_report.config_bullets(data.best, data)  # type: ignore[arg-type]
    assert [b.split(", dynamic")[0] for b in bullets] == [
        "a_config_0: 2 GPU instances with a max batch size of 8 on platform onnxruntime_onnx",
        "b_config_1: 1 GPU instance with a max batch size of 2 on platform onnxruntime_onnx",
        "c_config_default: 1 CPU instance with a max batch size of 0 on platform onnxruntime_onnx"]
    assert "best at rate 8: 55.00 infer/sec, p99 latency 3.500 ms" in bullets[1]


def test_three_models_each_variant_under_its_own_model(three: Any) -> None:
    store, _, _ = three
    assert store.models() == ["a,b,c"]
    assert [v.name for v in store.variants("c")] == ["c_config_default", "c_config_0"]
    group = store.variant("a_config_1,b_config_0,c_config_0")
    assert [(m.name, m.instance_group_str()) for m in group.members] == [
        ("a_config_1", "1:GPU"), ("b_config_0", "2:GPU"), ("c_config_0", "2:CPU")]
    assert store.variant("c_config_0").config["_cpu_only"] is True
    assert not group.is_default and ConfigVariant.group(group.members).config_hash == group.config_hash
    assert store.model_spec("a,b,c").members[2].cpu_only
