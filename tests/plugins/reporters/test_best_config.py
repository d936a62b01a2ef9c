"""The `best_config` reporter: best_config.json checked against the store, and a deployable config.pbtxt."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from modelyzer.kernel import ranking, registry
from modelyzer.kernel.store import Store
from tests.plugins.reporters.test_summary import GAIN, build_store, make_config, write


def test_best_config_json_matches_the_store(tmp_path: Path) -> None:
    store = build_store(tmp_path / "results.db")
    paths = write(store, make_config(tmp_path), "best_config")
    out = tmp_path / "best_configs" / "m"
    assert paths == [out / "best_config.json", out / "config.pbtxt"]
    doc = json.loads((out / "best_config.json").read_text())
    assert doc["model"] == "m" and doc["variant"] == "m_config_0" and doc["is_default"] is False
    assert doc["knobs"] == {"instance_count": 2, "instance_kind": "KIND_GPU", "instance_group": "2:GPU",
                            "max_batch_size": 4, "dynamic_batching": True, "platform": "onnxruntime_onnx",
                            "params": {"instance_group": [{"count": 2, "kind": "KIND_GPU"}], "max_batch_size": 4}}
    assert doc["load"]["concurrency"] == 4 and doc["load"]["batch_size"] == 1
    stored = dict(store.db.execute(
        "select mv.tag, sum(mv.value) from metric_values mv join measurements m on m.id = mv.measurement_id "
        "join run_configs rc on rc.key = m.run_config_key where rc.variant = 'm_config_0' and rc.load like "
        "'%\"concurrency\":4,%' group by mv.tag").fetchall())
    assert doc["metrics"]["perf_throughput"] == stored["perf_throughput"] == 300.0
    assert doc["metrics"]["gpu_used_memory"] == stored["gpu_used_memory"]  # summed over the 2 GPUs
    assert doc["metrics"]["gpu_utilization"] == 40.0  # averaged over the 2 GPUs
    assert "perf_latency" not in doc["metrics"]  # an alias, not a measured tag
    assert doc["constraints"] == [{"tag": "perf_latency_p99", "min": None, "max": 20.0, "value": 15.0, "met": True}]
    assert doc["constraints_met"] is True
    assert round(doc["gain_over_default_percent"]) == GAIN
    assert (doc["measurements"], doc["configurations"], doc["failed_measurements"]) == (16, 4, 1)
    assert doc["results_db"] == str((tmp_path / "results.db").resolve())
    assert doc["run_status"] == "finished"


def test_config_pbtxt_is_deployable(tmp_path: Path) -> None:
    store = build_store(tmp_path / "results.db")
    write(store, make_config(tmp_path), "best_config")
    pbtxt = tmp_path / "best_configs" / "m" / "config.pbtxt"
    codec = registry.get("model_config_codecs", "pbtxt").factory()
    config = codec.read(pbtxt)
    assert config["name"] == "m"  # the original model name, not the variant's
    assert config["max_batch_size"] == 4 and config["instance_group"] == [{"count": 2, "kind": "KIND_GPU"}]
    assert "dynamic_batching" in config
    assert "_cpu_only" not in pbtxt.read_text()


def test_nothing_measured_writes_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path / "results.db")
    config = make_config(tmp_path)
    store.start_run(config.to_dict())
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        assert write(store, config, "best_config") == []
    assert "no best config for m" in caplog.text
    assert not (tmp_path / "best_configs").exists()


def test_no_passing_config_is_said(tmp_path: Path) -> None:
    config = make_config(tmp_path, latency_budget=1.0)
    store = build_store(tmp_path / "results.db", config=config)
    write(store, config, "best_config")
    doc = json.loads((tmp_path / "best_configs" / "m" / "best_config.json").read_text())
    assert doc["constraints_met"] is False
    assert doc["constraints"][0]["met"] is False
    assert doc["gain_over_default_percent"] is None  # no default measurement meets the constraints


def test_best_config_json_names_statistically_tied_leaders(tmp_path: Path) -> None:
    write(build_store(tmp_path / "results.db", ci=15.0), make_config(tmp_path), "best_config")
    doc = json.loads((tmp_path / "best_configs" / "m" / "best_config.json").read_text())
    assert doc["variant"] == "m_config_1"  # cheaper than m_config_0, which the measurements cannot tell apart
    assert doc["statistically_tied"] == {"variants": ["m_config_1", "m_config_0"], "within_percent": 15.0,
                                         "tie_break": ranking.TIE_BREAK_RULE}
    write(build_store(tmp_path / "plain" / "results.db"), make_config(tmp_path / "plain"), "best_config")
    plain = json.loads((tmp_path / "plain" / "best_configs" / "m" / "best_config.json").read_text())
    assert plain["statistically_tied"] is None and plain["variant"] == "m_config_0"
