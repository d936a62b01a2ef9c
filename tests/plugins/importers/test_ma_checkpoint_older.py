"""The older Model Analyzer checkpoint format (its experiment data): `_model_run_configs[i]._model_config`.

The checkpoints are built here from the format's description (facts §6 and issue 12): the model config as
protobuf JSON (camelCase, int64 as strings) with `cpu_only` inside it, no `variant_name`, the config's `name`
the variant's, no variant-name manager. The same content in the current shape (`_model_config_variant`) must
give the same store and the same CSVs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.store import Store
from modelyzer.plugins.importers.ma_checkpoint import import_checkpoint, parse_checkpoint
from modelyzer.plugins.importers.ma_config_shapes import model_config_source
from tests.plugins.importers.test_ma_checkpoint import export_csvs, perf_config

MODELS = ("resnet50_libtorch", "vgg19_libtorch")  # the experiment data holds both models in one file
GPU = "GPU-aaaa"


def model_config(model: str, variant: str, mbs: int, count: int, kind: str, dynamic: bool) -> dict[str, Any]:
    """A model config as protobuf's MessageToDict writes it (camelCase, int64 as strings), named as the
    older Model Analyzer named it (the variant)."""
    config: dict[str, Any] = {
        "name": variant,
        "platform": "pytorch_libtorch",
        "maxBatchSize": mbs,
        "input": [{"name": "INPUT__0", "dataType": "TYPE_FP32", "format": "FORMAT_NCHW", "dims": ["3", "224", "224"]}],
        "output": [{"name": "OUTPUT__0", "dataType": "TYPE_FP32", "dims": ["1000"], "labelFilename": "labels.txt"}],
        "instanceGroup": [{"count": count, "kind": kind}],
    }
    if dynamic:
        config["dynamicBatching"] = {"maxQueueDelayMicroseconds": "100"}
    return config


#: (variant, max batch size, instance count, kind, dynamic batching, cpu_only); the default first
VARIANTS = (
    ("config_default", 4, 1, "KIND_GPU", False, False),
    ("config_0", 8, 2, "KIND_GPU", True, False),
    ("config_1", 4, 2, "KIND_CPU", True, True),
)


def records(values: dict[str, float], uuid: str | None = None) -> list[list[Any]]:
    extra = {"_device_uuid": uuid} if uuid else {}
    return [[tag, {"_value": value, "_timestamp": 1700000000, **extra}] for tag, value in values.items()]


def rcm(model: str, variant: str, batch: int, concurrency: int, seed: float, cpu_only: bool) -> dict[str, Any]:
    non_gpu = {"perf_throughput": 100.0 * seed * concurrency, "perf_latency_p99": 5.0 + seed + concurrency,
               "perf_latency_p95": 4.0 + seed, "perf_latency_avg": 3.0 + seed, "perf_client_send_recv": 0.3,
               "perf_server_queue": 0.2 * concurrency, "perf_server_compute_infer": 2.0 + seed,
               "cpu_used_ram": 1500.0 + seed}
    gpu = {} if cpu_only else {GPU: records({"gpu_used_memory": 900.0 + 10 * seed, "gpu_utilization": 40.0 * seed,
                                             "gpu_power_usage": 70.0 + seed}, GPU)}
    return {
        "_model_variants_name": variant,
        "_gpu_data": gpu,
        "_avg_gpu_data": {},
        "_model_config_measurements": [{
            "_model_config_name": variant,
            "_model_specific_pa_params": {"batch-size": batch, "concurrency-range": concurrency,
                                          "request-rate-range": None, "request-intervals": None},
            "_non_gpu_data": records(non_gpu),
        }],
    }


def checkpoint(shapes: dict[str, str] | None = None) -> dict[str, Any]:
    """Both models' results; each model run config in the older shape unless `shapes[variant] == "current"`."""
    results: dict[str, Any] = {}
    for m, model in enumerate(MODELS):
        by_variant: dict[str, Any] = {}
        for v, (suffix, mbs, count, kind, dynamic, cpu_only) in enumerate(VARIANTS):
            variant = f"{model}_{suffix}"
            config = model_config(model, variant, mbs, count, kind, dynamic)
            mrc: dict[str, Any] = {"_model_name": model,
                                   "_perf_config": perf_config(model, {"concurrency-range": 1}),
                                   "_composing_config_variants": []}
            if (shapes or {}).get(variant) == "current":
                config["name"] = model  # the current shape names the config after the model
                mrc["_model_config_variant"] = {"model_config": config, "variant_name": variant, "cpu_only": cpu_only}
            else:
                mrc["_model_config"] = {**config, "cpu_only": cpu_only}
            measurements = {
                f"{variant} -m {model} -b {b} -i grpc -f {model}-results.csv --verbose-csv --concurrency-range={c}":
                    rcm(model, variant, b, c, 1.0 + m + v / 2, cpu_only)
                for b in (1, 2) for c in (1, 4)
            }
            by_variant[variant] = [{"_triton_env": {}, "_model_run_configs": [mrc]}, measurements]
        results[model] = by_variant
    return {
        "ResultManager.results": {"_results": results},
        "ResultManager.server_only_data": {GPU: records({"gpu_used_memory": 500.0, "gpu_free_memory": 15000.0,
                                                         "gpu_utilization": 0.0, "gpu_power_usage": 50.0}, GPU)},
        "MetricsManager.gpus": {GPU: {"name": "Fake GPU", "total_memory": 16000000000}},
    }


def current() -> dict[str, Any]:
    return checkpoint({f"{m}_{v[0]}": "current" for m in MODELS for v in VARIANTS})


def write(path: Path, state: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    return path


def imported(tmp_path: Path, name: str, state: dict[str, Any]) -> tuple[Store, int]:
    store = Store(tmp_path / name / "results.db")
    return store, import_checkpoint(write(tmp_path / name / "0.ckpt", state), store).run_id


def content(store: Store) -> dict[str, Any]:
    """What an import puts in the store, run-independent: variants, results, models' base configs and specs."""
    return {
        model: {
            "variants": [(v.name, v.config, v.params, v.is_default, v.config_hash) for v in store.variants(model)],
            "results": [(r.run_config, r.run_config.key, r.measurement) for r in store.results(model)],
            "base": store.base_config(model),
        }
        for model in MODELS
    }


def test_an_older_checkpoint_imports_names_configs_measurements_and_cpu_only(tmp_path: Path) -> None:
    state = checkpoint()
    store, run_id = imported(tmp_path, "older", state)
    assert store.run(run_id).status == "imported"
    for model in MODELS:
        by_variant = state["ResultManager.results"]["_results"][model]
        assert [v.name for v in store.variants(model)] == list(by_variant) == [f"{model}_{v[0]}" for v in VARIANTS]
        default, wide, cpu = (store.variant(f"{model}_{v[0]}") for v in VARIANTS)
        assert default.is_default and not wide.is_default
        # snake_case, int64 as ints, the model's own name, cpu_only an annotation only
        assert store.base_config(model) == {
            "name": model, "platform": "pytorch_libtorch", "max_batch_size": 4,
            "input": [{"name": "INPUT__0", "data_type": "TYPE_FP32", "format": "FORMAT_NCHW", "dims": [3, 224, 224]}],
            "output": [{"name": "OUTPUT__0", "data_type": "TYPE_FP32", "dims": [1000], "label_filename": "labels.txt"}],
            "instance_group": [{"count": 1, "kind": "KIND_GPU"}],
        }
        assert wide.config["dynamic_batching"] == {"max_queue_delay_microseconds": 100}
        assert wide.params == {"max_batch_size": 8, "instance_group": [{"count": 2, "kind": "KIND_GPU"}],
                               "dynamic_batching": {"max_queue_delay_microseconds": 100}}
        for variant in (default, wide, cpu):
            assert "cpu_only" not in variant.config and "cpuOnly" not in variant.config
        assert cpu.config["_cpu_only"] is True and "_cpu_only" not in default.config and "_cpu_only" not in wide.config
        assert cpu.instance_group_str() == "2:CPU" and wide.instance_group_str() == "2:GPU"
        # every measurement, in checkpoint order, with its metrics (GPU ones per GPU; none for the CPU-only variant)
        results = store.results(model)
        expected = [(v, m) for v, (_, ms) in by_variant.items() for m in ms.values()]
        assert len(results) == len(expected) == 12
        for result, (variant, rcm_) in zip(results, expected, strict=True):
            mcm = rcm_["_model_config_measurements"][0]
            assert result.run_config.variant.name == variant
            assert (result.run_config.load.batch_size, result.run_config.load.concurrency) == (
                mcm["_model_specific_pa_params"]["batch-size"], mcm["_model_specific_pa_params"]["concurrency-range"])
            assert result.measurement.values() == {tag: rec["_value"] for tag, rec in mcm["_non_gpu_data"]}
            gpu = {u: {tag: rec["_value"] for tag, rec in rs} for u, rs in rcm_["_gpu_data"].items()}
            assert result.measurement.gpu_values() == gpu
        assert results[-1].measurement.gpu_values() == {}
    assert [g.uuid for g in store.gpus()] == [GPU]


def test_the_older_shape_gives_the_same_store_and_csvs_as_the_current_one(tmp_path: Path) -> None:
    older, older_run = imported(tmp_path, "older", checkpoint())
    newer, newer_run = imported(tmp_path, "current", current())
    mixed, mixed_run = imported(tmp_path, "mixed", checkpoint({"resnet50_libtorch_config_0": "current",
                                                              "vgg19_libtorch_config_default": "current"}))
    assert content(older) == content(newer) == content(mixed)
    for model in MODELS:  # the RunConfigs' variants too (name, config, params)
        assert [r.run_config.variant for r in older.results(model)] == [r.run_config.variant for r in newer.results(model)]
    exports: dict[str, dict[str, bytes]] = {}
    for name, store, run_id in (("older", older, older_run), ("current", newer, newer_run), ("mixed", mixed, mixed_run)):
        config = config_from_dict({"profile_models": ",".join(MODELS), "export_path": str(tmp_path / name / "export")},
                                  check_paths=False)
        exports[name] = {p.name: p.read_bytes() for p in export_csvs(store, run_id, config)}
    assert exports["older"] == exports["current"] == exports["mixed"]
    inference = [line for line in exports["older"]["metrics-model-inference.csv"].decode().splitlines() if line]
    gpu = [line for line in exports["older"]["metrics-model-gpu.csv"].decode().splitlines() if line]
    assert sorted(exports["older"]) == ["metrics-model-gpu.csv", "metrics-model-inference.csv", "metrics-server-only.csv"]
    assert len(inference) == 1 + 2 * 12
    assert inference[0].startswith("Model,Batch,Concurrency,Model Config Path,Instance Group,Max Batch Size")
    rows = [line.split(",") for line in inference[1:]]
    assert {(r[0], r[3]) for r in rows} == {(m, f"{m}_{v[0]}") for m in MODELS for v in VARIANTS}
    assert {r[4] for r in rows if r[3].endswith("config_1")} == {"2:CPU"}
    assert {r[5] for r in rows if r[3].endswith("config_0")} == {"8"}
    assert inference[1] == "resnet50_libtorch,1,4,resnet50_libtorch_config_1,2:CPU,4,Yes,800.0,11.0"  # the best first
    assert inference[13] == "vgg19_libtorch,1,4,vgg19_libtorch_config_1,2:CPU,4,Yes,1200.0,12.0"
    assert not any("config_1" in line for line in gpu[1:])  # CPU-only: no GPU rows
    assert len(gpu) == 1 + 2 * 8


def test_a_model_run_config_in_neither_shape_is_a_one_line_error_naming_its_path(tmp_path: Path) -> None:
    state = copy.deepcopy(checkpoint())
    mrc = state["ResultManager.results"]["_results"]["vgg19_libtorch"]["vgg19_libtorch_config_0"][0][
        "_model_run_configs"][0]
    del mrc["_model_config"]
    path = write(tmp_path / "0.ckpt", state)
    with pytest.raises(ConfigError) as info:
        parse_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert ('ResultManager.results._results["vgg19_libtorch"]["vgg19_libtorch_config_0"][0]._model_run_configs[0]'
            in message)
    assert "_model_config_variant.model_config" in message and "_model_config" in message
    assert "no model config in the checkpoint" not in message
    mrc["_model_config"] = ["not", "an", "object"]
    with pytest.raises(ConfigError, match=r"_model_run_configs\[0\]\._model_config is not an object"):
        parse_checkpoint(write(tmp_path / "1.ckpt", state))


@pytest.mark.parametrize(
    ("variants", "index", "count", "expected"),
    [
        ("m_config_3", 0, 1, "m_config_3"),  # the result key
        ("m_config_3,n_config_1", 1, 2, "n_config_1"),  # its part of a comma-joined key (several models)
        ("m_config_3,n_config_1", 0, 3, "m_config_9"),  # parts and models disagree: the config's name
    ],
)
def test_the_older_shapes_variant_name_comes_from_the_result_key(
    variants: str, index: int, count: int, expected: str
) -> None:
    mrc = {"_model_config": {"name": "m_config_9", "maxBatchSize": 2, "cpu_only": True}}
    source = model_config_source(mrc, "m", variants, "here", {}, index, count)
    assert (source.variant_name, source.cpu_only, source.shape) == (expected, True, "_model_config")
    assert source.config == {"name": "m", "maxBatchSize": 2}  # the model's name again, cpu_only taken out
