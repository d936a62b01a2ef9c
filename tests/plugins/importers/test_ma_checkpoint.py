"""Model Analyzer checkpoint import: golden CSVs byte for byte, names, keys, idempotency, one-line errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelyzer.frontends.cli.main import cli
from modelyzer.kernel import assembly
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.profile import Profile, make_context
from modelyzer.kernel.store import Store
from modelyzer.plugins.codecs.pbtxt import normalize
from modelyzer.plugins.importers.ma_checkpoint import import_checkpoint, parse_checkpoint, user_pa_flags
from modelyzer.plugins.loadgen.perf_analyzer_args import measurement_key
from modelyzer.plugins.reporters.csv_tables import CsvReporter
from tests.conftest import ROOT

ORACLES = ROOT.parent / "shared" / "oracles" / "ma-checkpoints"
CSV_FILES = ("metrics-model-inference.csv", "metrics-model-gpu.csv", "metrics-server-only.csv")
#: the settings of each oracle checkpoint (from its README); objectives: the default (throughput), no constraints
ORACLE_SETTINGS: dict[str, dict[str, Any]] = {
    "single-model-ckpt": {
        "batch_sizes": "1,2",
        "concurrency": "1,2",
        "run_config_search_max_concurrency": 2,
        "run_config_search_max_instance_count": 2,
        "run_config_search_max_model_batch_size": 2,
    },
    "request-rate-ckpt": {
        "request_rate": "16,32",
        "run_config_search_max_instance_count": 2,
        "run_config_search_max_model_batch_size": 2,
        "request_rate_search_enable": True,
    },
}
UUID = "GPU-0000"


def oracle(name: str) -> Path:
    path = ORACLES / name / "0.ckpt"
    if not path.is_file():
        pytest.skip(f"oracle checkpoint {path} is not present")
    return path


def oracle_config(name: str, export: Path) -> ProfileConfig:
    values = {"profile_models": "add_sub", "export_path": str(export), **ORACLE_SETTINGS.get(name, {})}
    return config_from_dict(values, check_paths=False)


def export_csvs(store: Store, run_id: int, config: ProfileConfig) -> list[Path]:
    ranking = Profile(config, store=store).rank()
    return CsvReporter(config, make_context(config)).write(store, run_id, config, ranking)


#: oracles whose CSVs the import reproduces byte for byte
GOLDEN = (*sorted(ORACLE_SETTINGS), "ensemble-ckpt", "multi-model-ckpt")
ORACLE_SETTINGS["ensemble-ckpt"] = {"profile_models": "ensemble_add_sub"}  # (the Ensemble Quick Start's defaults)
ORACLE_SETTINGS["multi-model-ckpt"] = {"profile_models": "resnet50_libtorch,vgg19_libtorch",
                                       "run_config_profile_models_concurrently_enable": True,
                                       "run_config_search_mode": "quick"}


# --- the oracles ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GOLDEN)
def test_exported_csvs_equal_model_analyzers_golden_csvs(name: str, tmp_path: Path) -> None:
    store = Store(tmp_path / "results.db")
    summary = import_checkpoint(oracle(name), store)
    written = export_csvs(store, summary.run_id, oracle_config(name, tmp_path))
    assert sorted(p.name for p in written) == sorted(CSV_FILES)
    for path in written:
        golden = ORACLES / name / f"golden-{path.name}"
        assert path.read_bytes() == golden.read_bytes(), f"{path.name} differs from {golden}"


@pytest.mark.parametrize("name", ["request-rate-ckpt", "single-model-ckpt"])
def test_names_configs_keys_and_metrics_are_model_analyzers(name: str, tmp_path: Path) -> None:
    path = oracle(name)
    state = json.loads(path.read_text())
    results = state["ResultManager.results"]["_results"]["add_sub"]
    store = Store(tmp_path / "results.db")
    summary = import_checkpoint(path, store)
    assert store.run(summary.run_id).status == "imported"
    assert [v.name for v in store.variants("add_sub")] == list(results)
    named = state["ModelManager.model_variant_name_manager"]["_model_config_dicts"]
    for variant in store.variants("add_sub"):
        if variant.name in named:
            assert variant.config == normalize(named[variant.name])
    assert store.variant("add_sub_config_default").is_default
    assert store.base_config("add_sub")["max_batch_size"] == 8
    # every MA measurement key is the measurement_key() of its imported RunConfig
    config = oracle_config(name, tmp_path)
    imported = store.results("add_sub")
    assert [measurement_key(r.run_config, config) for r in imported] == [k for _, ms in results.values() for k in ms]
    first_key, first = next(iter(results["add_sub_config_default"][1].items()))
    measurement = imported[0].measurement
    non_gpu = first["_model_config_measurements"][0]["_non_gpu_data"]
    assert measurement.values() == {tag: rec["_value"] for tag, rec in non_gpu}
    gpu = {uuid: {tag: rec["_value"] for tag, rec in recs} for uuid, recs in first["_gpu_data"].items()}
    assert measurement.gpu_values() == gpu
    assert [g.uuid for g in store.gpus()] == list(state["MetricsManager.gpus"])
    assert store.gpus()[0].total_memory == 25387401216  # bytes, as Model Analyzer records it
    server_only = store.db["server_only_metrics"].rows_where("run_id = ?", [summary.run_id])
    assert {r["tag"] for r in server_only} == {"gpu_used_memory", "gpu_free_memory", "gpu_utilization", "gpu_power_usage"}


def test_importing_twice_changes_nothing(tmp_path: Path) -> None:
    path = oracle("single-model-ckpt")
    store = Store(tmp_path / "results.db")
    first = import_checkpoint(path, store)
    assert (first.measurements, first.variants, first.already_imported) == (16, 5, False)
    dump = {t: list(store.db[t].rows) for t in store.db.table_names() if not t.startswith("_")}
    again = import_checkpoint(path, store)
    assert again.already_imported and again.run_id == first.run_id and again.measurements == 0
    assert {t: list(store.db[t].rows) for t in dump} == dump


# --- synthetic checkpoints (no oracle needed) ---------------------------------------------------------------
def perf_config(model: str, load: dict[str, Any], args: dict[str, Any] | None = None,
                options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "_args": {"concurrency-range": None, "request-rate-range": None, "measurement-mode": "count_windows",
                  "collect-metrics": "True", "metrics-url": "http://localhost:8002/metrics", "metrics-interval": 1000,
                  **load, **(args or {})},
        "_options": {"-m": model, "-x": None, "-b": 1, "-u": "localhost:8001", "-i": "grpc",
                     "-f": f"{model}-results.csv", "-H": None, **(options or {})},
        "_verbose": {"-v": None, "-v -v": None, "--verbose-csv": "--verbose-csv"},
        "_input_to_options": {"model-name": "-m", "model-version": "-x", "batch-size": "-b", "url": "-u",
                              "protocol": "-i", "latency-report-file": "-f", "http-header": "-H"},
        "_input_to_verbose": {"verbose": "-v", "extra-verbose": "-v -v", "verbose-csv": "--verbose-csv"},
    }


def run_config(model: str, variant: str, config: dict[str, Any], cpu_only: bool = False,
               args: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "_triton_env": {},
        "_model_run_configs": [{
            "_model_name": model,
            "_model_config_variant": {"model_config": config, "variant_name": variant, "cpu_only": cpu_only},
            "_perf_config": perf_config(model, {"concurrency-range": 1}, args, options),
            "_composing_config_variants": [],
        }],
    }


def measurement(model: str, variant: str, params: dict[str, Any], throughput: float, gpu: bool = True) -> dict[str, Any]:
    gpu_data = {UUID: [["gpu_used_memory", {"_value": 100.0, "_timestamp": 0, "_device_uuid": UUID}]]} if gpu else {}
    return {
        "_model_variants_name": variant,
        "_gpu_data": gpu_data,
        "_model_config_measurements": [{
            "_model_config_name": model,
            "_model_specific_pa_params": params,
            "_non_gpu_data": [["perf_throughput", {"_value": throughput, "_timestamp": 0}],
                              ["perf_latency_p99", {"_value": 1.5, "_timestamp": 0}]],
        }],
    }


def synthetic() -> dict[str, Any]:
    base = {"name": "m", "platform": "onnxruntime_onnx", "maxBatchSize": 4,
            "input": [{"name": "X", "dataType": "TYPE_FP32", "dims": ["16"]}]}
    cpu = {**base, "instanceGroup": [{"count": 2, "kind": "KIND_CPU"}]}
    return {
        "ResultManager.results": {"_results": {"m": {
            "m_config_default": [
                run_config("m", "m_config_default", base, args={"percentile": 95}, options={"-H": "X-A:1"}),
                {"k1": measurement("m", "m_config_default", {"batch-size": 1, "concurrency-range": 1}, 10.0),
                 "k2": measurement("m", "m_config_default", {"batch-size": 2, "concurrency-range": 4}, 30.0)},
            ],
            "m_config_7": [
                run_config("m", "m_config_7", cpu, cpu_only=True),
                {"k3": measurement("m", "m_config_7", {"batch-size": 1, "request-intervals": "iv.txt"}, 20.0, gpu=False)},
            ],
        }}},
        "ResultManager.server_only_data": {},
        "MetricsManager.gpus": {UUID: {"name": "Fake GPU", "total_memory": 1000}},
    }


def write_ckpt(path: Path, state: Any) -> Path:
    path.write_text(state if isinstance(state, str) else json.dumps(state))
    return path


def test_synthetic_checkpoint_loads_flags_cpu_only_and_names(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    summary = import_checkpoint(write_ckpt(tmp_path / "3.ckpt", synthetic()), store)
    assert (summary.models, summary.variants, summary.measurements, summary.gpus) == (("m",), 2, 3, 1)
    results = store.results("m")
    assert [r.run_config.variant.name for r in results] == ["m_config_default", "m_config_default", "m_config_7"]
    assert [r.run_config.load.describe() for r in results] == ["concurrency 1", "batch 2, concurrency 4", "intervals iv.txt"]
    assert results[0].run_config.perf_analyzer_flags == {"http-header": "X-A:1", "percentile": 95}
    cpu = store.variant("m_config_7")
    assert cpu.config["_cpu_only"] is True and cpu.instance_group_str() == "2:CPU"
    assert cpu.params == {"instance_group": [{"count": 2, "kind": "KIND_CPU"}]}
    assert cpu.config["input"][0]["dims"] == [16]  # int64 strings normalized
    assert results[2].measurement.gpu_values() == {}


def test_user_pa_flags_drop_what_modelyzer_generates() -> None:
    config = perf_config("m", {"concurrency-range": 4}, {"measurement-mode": "time_windows", "measurement-request-count": 100})
    assert user_pa_flags(config) == {"measurement-mode": "time_windows"}


def test_a_checkpoint_directory_imports_its_latest_file(tmp_path: Path) -> None:
    write_ckpt(tmp_path / "0.ckpt", "not json")
    write_ckpt(tmp_path / "2.ckpt", synthetic())
    assert parse_checkpoint(tmp_path).path.name == "2.ckpt"


def _broken(mutate: Any) -> dict[str, Any]:
    state = copy.deepcopy(synthetic())
    mutate(state)
    return state


def _results(state: dict[str, Any]) -> dict[str, Any]:
    return state["ResultManager.results"]["_results"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps([1, 2]), "no 'ResultManager.results' object"),
        (_broken(lambda s: _results(s)["m"]["m_config_7"][1]["k3"]["_model_config_measurements"][0].update(
            _model_specific_pa_params={"batch-size": 1})), "no concurrency-range"),
        (_broken(lambda s: _results(s).update({"a,b": {"a_config_0,b_config_0": _results(s)["m"]["m_config_7"]}})),
         "its RunConfig has 1 model(s), its result key names 2 (a,b)"),
        (_broken(lambda s: _results(s)["m"]["m_config_7"][0]["_model_run_configs"][0].update(
            _composing_config_variants=[{"variant_name": "x"}])), "_composing_config_variants[0] has no model_config"),
        (_broken(lambda s: _results(s)["m"].update(m_config_1=[{}, {}])), "m_config_1"),
        (_broken(lambda s: _results(s)["m"].update(m_config_2=[5])), "malformed"),
    ],
)
def test_bad_files_are_one_line_errors_and_write_nothing(tmp_path: Path, content: Any, needle: str) -> None:
    path = write_ckpt(tmp_path / "0.ckpt", content)
    with pytest.raises(ConfigError) as info:
        parse_checkpoint(path)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message
    db = tmp_path / "r.db"
    result = CliRunner().invoke(cli, ["import-ma-checkpoint", str(path), "--results-db", str(db)])
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output
    assert not db.exists()


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["import-ma-checkpoint", str(tmp_path / "nope.ckpt"), "--results-db",
                                      str(tmp_path / "r.db")])
    assert result.exit_code == 2 and "checkpoint file does not exist" in result.output


def test_command_imports_once_and_writes_a_model_repository(tmp_path: Path) -> None:
    path = write_ckpt(tmp_path / "0.ckpt", synthetic())
    db, repo = tmp_path / "r.db", tmp_path / "repo"
    args = ["import-ma-checkpoint", str(path), "--results-db", str(db), "--model-repository", str(repo)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "imported 3 measurements of 2 variants (model m, 1 GPU)" in first.output
    assert "as run 1" in first.output and (repo / "m" / "config.pbtxt").is_file()
    assert assembly.codec().read(repo / "m" / "config.pbtxt") == Store(db).base_config("m")
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "already imported" in second.output and "nothing changed" in second.output
    (repo / "m" / "config.pbtxt").write_text('name: "m"\nmax_batch_size: 1\n')
    third = CliRunner().invoke(cli, args)
    assert third.exit_code == 2 and "exists with a different config" in third.output


def test_a_conflicting_variant_name_is_refused_before_writing(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    import_checkpoint(write_ckpt(tmp_path / "0.ckpt", synthetic()), store)
    other = _broken(lambda s: _results(s)["m"]["m_config_7"][0]["_model_run_configs"][0]["_model_config_variant"][
        "model_config"].update(maxBatchSize=2))
    before = store.counts()
    with pytest.raises(ConfigError, match="m_config_7 has a different model config"):
        import_checkpoint(write_ckpt(tmp_path / "1.ckpt", other), store)
    assert store.counts() == before


def test_an_llm_checkpoints_token_latencies_become_real_milliseconds(tmp_path: Path) -> None:
    """Model Analyzer stores genai-perf's nanoseconds ÷ 1000 labelled ms (µs); the import stores real ms."""
    state = synthetic()
    default = state["ResultManager.results"]["_results"]["m"]["m_config_default"][1]["k1"]
    default["_model_config_measurements"][0]["_non_gpu_data"] += [
        ["time_to_first_token_p99", {"_value": 152_000.0, "_timestamp": 0}],  # 152 ms as Model Analyzer stores it
        ["inter_token_latency_avg", {"_value": 3_100.0, "_timestamp": 0}],
        ["output_token_throughput", {"_value": 310.0, "_timestamp": 0}],  # a rate: unchanged
    ]
    store = Store(tmp_path / "r.db")
    import_checkpoint(write_ckpt(tmp_path / "1.ckpt", state), store)
    values = store.results("m")[0].measurement.values()
    assert values["time_to_first_token_p99"] == 152.0 and values["inter_token_latency_avg"] == 3.1
    assert values["output_token_throughput"] == 310.0 and values["perf_throughput"] == 10.0


def test_an_ensembles_composing_variants_are_kept_with_each_combination(tmp_path: Path) -> None:
    """Each ensemble variant carries the composing models' variants it was measured with (names, configs)."""
    store = Store(tmp_path / "results.db")
    import_checkpoint(oracle("ensemble-ckpt"), store)
    variants = {v.name: v for v in store.variants("ensemble_add_sub")}
    combo = variants["ensemble_add_sub_config_1"].composing
    assert [(c.model, c.name, c.instance_group_str()) for c in combo] == [
        ("add", "add_config_0", "1:GPU"), ("sub", "sub_config_1", "2:GPU")]
    assert "_composing" not in variants["ensemble_add_sub_config_default"].params  # private: never a knob
    assert len({r.run_config.key for r in store.results("ensemble_add_sub")}) == len(store.results("ensemble_add_sub"))
