"""The pbtxt codec (Triton config.pbtxt <-> dict) and the output model repository layout."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.repository import MARKER, find_first_variant, prepare_output_repository, write_variant
from modelyzer.plugins.codecs import pbtxt as pbtxt_codec
from modelyzer.plugins.codecs.pbtxt import PbtxtCodec

REALISTIC = """
name: "resnet50"
platform: "onnxruntime_onnx"
max_batch_size: 32
input [
  {
    name: "input"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
  }
]
output [
  {
    name: "probs"
    data_type: TYPE_FP32
    dims: [ -1, 1000 ]
    label_filename: "labels.txt"
  }
]
instance_group [
  { count: 2 kind: KIND_GPU gpus: [ 0, 1 ] },
  { count: 1 kind: KIND_CPU }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
  priority_queue_policy {
    key: 1
    value { timeout_action: DELAY default_timeout_microseconds: 5000 }
  }
}
parameters { key: "intra_op_thread_count" value: { string_value: "2" } }
parameters { key: "cudnn_conv_algo_search" value: { string_value: "HEURISTIC" } }
optimization { execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt" parameters { key: "precision_mode" value: "FP16" } } ] } }
model_warmup [ { name: "w" batch_size: 1 inputs { key: "input" value: { data_type: TYPE_FP32 dims: [ 3, 224, 224 ] zero_data: true } } } ]
"""


@pytest.fixture
def codec() -> PbtxtCodec:
    return PbtxtCodec()


def _message(text: str) -> model_config_pb2.ModelConfig:
    message = model_config_pb2.ModelConfig()
    text_format.Parse(text, message)
    return message


def test_registers_as_pbtxt() -> None:
    registered: dict[str, Any] = {}
    pbtxt_codec.register_model_config_codecs(
        register=lambda name, factory: registered.setdefault(name, factory)
    )
    assert registered == {"pbtxt": PbtxtCodec}


def test_read_gives_snake_case_dict_with_int64_as_ints(tmp_path: Path, codec: PbtxtCodec) -> None:
    path = tmp_path / "config.pbtxt"
    path.write_text(REALISTIC)
    config = codec.read(path)
    assert config["max_batch_size"] == 32
    assert config["input"][0] == {
        "name": "input",
        "data_type": "TYPE_FP32",
        "format": "FORMAT_NCHW",
        "dims": [3, 224, 224],
    }
    assert config["output"][0]["dims"] == [-1, 1000]
    assert config["instance_group"] == [
        {"count": 2, "kind": "KIND_GPU", "gpus": [0, 1]},
        {"count": 1, "kind": "KIND_CPU"},
    ]
    batching = config["dynamic_batching"]
    assert batching["preferred_batch_size"] == [4, 8]
    assert batching["max_queue_delay_microseconds"] == 100
    # map keys stay strings (JSON object keys); their int64 values become ints
    assert batching["priority_queue_policy"] == {
        "1": {"timeout_action": "DELAY", "default_timeout_microseconds": 5000}
    }
    assert config["parameters"]["intra_op_thread_count"] == {"string_value": "2"}
    assert config["model_warmup"][0]["inputs"]["input"]["dims"] == [3, 224, 224]


def test_round_trip_is_faithful(tmp_path: Path, codec: PbtxtCodec) -> None:
    source = tmp_path / "src.pbtxt"
    source.write_text(REALISTIC)
    config = codec.read(source)
    out = tmp_path / "out" / "config.pbtxt"
    codec.write(config, out)
    assert codec.read(out) == config
    assert _message(out.read_text()) == _message(REALISTIC)
    assert codec.loads(codec.dumps(config)) == config
    assert not list(out.parent.glob("*.tmp"))


def test_empty_messages_survive(codec: PbtxtCodec) -> None:
    config = {"name": "m", "max_batch_size": 8, "dynamic_batching": {}}
    text = codec.dumps(config)
    assert "dynamic_batching {" in text
    assert codec.loads(text) == config


def test_private_keys_are_not_written(codec: PbtxtCodec) -> None:
    assert "_cpu_only" not in codec.dumps({"name": "m", "_cpu_only": True})


def test_normalize_accepts_model_analyzer_checkpoint_form(codec: PbtxtCodec) -> None:
    ma = {
        "name": "add_sub",
        "maxBatchSize": 8,
        "input": [{"name": "INPUT0", "dataType": "TYPE_FP32", "dims": ["16"]}],
    }
    assert codec.normalize(ma) == {
        "name": "add_sub",
        "max_batch_size": 8,
        "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [16]}],
    }


def test_parse_error_names_file_and_line(tmp_path: Path, codec: PbtxtCodec) -> None:
    path = tmp_path / "config.pbtxt"
    path.write_text('name: "m"\nmax_batch_size: 8\ninstance_groups [ { count: 1 } ]\n')
    with pytest.raises(ConfigError) as info:
        codec.read(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: invalid model config:")
    assert "instance_groups" in message
    assert "\n" not in message


def test_unreadable_file_is_a_config_error(tmp_path: Path, codec: PbtxtCodec) -> None:
    with pytest.raises(ConfigError, match="cannot read model config"):
        codec.read(tmp_path / "missing" / "config.pbtxt")


def test_writing_an_unknown_field_names_the_model(codec: PbtxtCodec) -> None:
    with pytest.raises(ConfigError, match=r"invalid model config for model 'm': .*instance_groups"):
        codec.dumps({"name": "m", "instance_groups": [{"count": 1}]})


# --- output model repository --------------------------------------------------------------------------------
@pytest.fixture
def source_model(tmp_path: Path) -> Path:
    model = tmp_path / "repo" / "resnet50"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.onnx").write_bytes(b"weights")
    (model / "labels.txt").write_text("cat\ndog\n")
    (model / "config.pbtxt").write_text(REALISTIC)
    return model


def test_first_variant_is_a_copy_later_variants_link(
    tmp_path: Path, codec: PbtxtCodec, source_model: Path
) -> None:
    out = prepare_output_repository(tmp_path / "out", override=False)
    base = codec.read(source_model / "config.pbtxt")
    first = write_variant(codec, source_model, out, "resnet50_config_default", base, full_copy=True)
    second_config = {**base, "max_batch_size": 4, "instance_group": [{"count": 3, "kind": "KIND_GPU"}]}
    second = write_variant(codec, source_model, out, "resnet50_config_0", second_config, full_copy=True)

    assert not (first / "1").is_symlink() and (first / "1" / "model.onnx").read_bytes() == b"weights"
    assert (first / "labels.txt").read_text() == "cat\ndog\n"
    for entry in ("1", "labels.txt"):
        link = second / entry
        assert link.is_symlink()
        assert os.readlink(link) == os.path.join("..", "resnet50_config_default", entry)
    assert (second / "1" / "model.onnx").read_bytes() == b"weights"
    assert not (second / "config.pbtxt").is_symlink()
    assert codec.read(second / "config.pbtxt") == second_config
    assert codec.read(second / "config.pbtxt")["name"] == "resnet50"  # the original model name
    assert codec.read(first / "config.pbtxt") == base
    assert find_first_variant(out, "resnet50") == first

    # writing again (a resumed profile) is idempotent and keeps the links
    write_variant(codec, source_model, out, "resnet50_config_0", second_config, full_copy=True)
    write_variant(codec, source_model, out, "resnet50_config_default", base, full_copy=True)
    assert (second / "1").is_symlink() and not (first / "1").is_symlink()


def test_other_models_do_not_link_to_each_other(
    tmp_path: Path, codec: PbtxtCodec, source_model: Path
) -> None:
    other = source_model.parent / "resnet"
    (other / "1").mkdir(parents=True)
    (other / "1" / "model.onnx").write_bytes(b"other")
    out = prepare_output_repository(tmp_path / "out", override=False)
    write_variant(codec, source_model, out, "resnet50_config_default", {"name": "resnet50"}, full_copy=True)
    variant = write_variant(codec, other, out, "resnet_config_default", {"name": "resnet"}, full_copy=True)
    assert not (variant / "1").is_symlink()
    assert (variant / "1" / "model.onnx").read_bytes() == b"other"


def test_config_only_variants(tmp_path: Path, codec: PbtxtCodec, source_model: Path) -> None:
    out = prepare_output_repository(tmp_path / "out", override=False)
    variant = write_variant(
        codec, source_model, out, "resnet50_config_3", {"name": "resnet50"}, full_copy=False
    )
    assert sorted(p.name for p in variant.iterdir()) == ["config.pbtxt"]


def test_missing_source_dir_is_a_config_error(tmp_path: Path, codec: PbtxtCodec) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        write_variant(codec, tmp_path / "nope", tmp_path / "out", "nope_config_default", {}, full_copy=True)


def test_prepare_refuses_non_empty_repository_without_override(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "old_config_0").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        prepare_output_repository(out, override=False)
    assert "output_model_repository_path" in str(info.value)
    assert "--override-output-model-repository" in str(info.value)
    assert prepare_output_repository(out, override=True) == out
    assert out.is_dir() and [p.name for p in out.iterdir()] == [MARKER]


def test_own_repository_is_reused_when_resuming(tmp_path: Path) -> None:
    out = prepare_output_repository(tmp_path / "out", override=False)
    (out / "m_config_0").mkdir()
    assert prepare_output_repository(out, override=False) == out
    assert (out / "m_config_0").is_dir()  # kept: a resumed profile links to the same copies


def test_prepare_accepts_missing_or_empty_directory(tmp_path: Path) -> None:
    assert prepare_output_repository(tmp_path / "a" / "b", override=False).is_dir()
    (tmp_path / "empty").mkdir()
    assert prepare_output_repository(tmp_path / "empty", override=False).is_dir()
