"""`pbtxt_check.check_parameters`: model_config_parameters against Triton's ModelConfig (sweep semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from modelyzer.plugins.codecs.pbtxt import PbtxtCodec
from modelyzer.plugins.codecs.pbtxt_check import check_parameters


@pytest.mark.parametrize(("params", "problem"), [
    ({"max_batch_sizes": 4}, ("max_batch_sizes", "is not a field of Triton's model config; did you mean "
                                                 "'max_batch_size'?")),
    ({"instance_group": [{"kind": "KIND_TPU"}]},
     ("instance_group.kind", "'KIND_TPU' is not one of KIND_AUTO, KIND_GPU, KIND_CPU, KIND_MODEL; did you mean "
                             "'KIND_GPU'?")),
    ({"instance_group": [[{"count": 1}], [{"count": -2}]]}, ("instance_group.count", "must not be negative, got -2")),
    ({"sequence_batching": {"oldest": {"max_candidate_sequences": -1}}},
     ("sequence_batching.oldest.max_candidate_sequences", "must not be negative, got -1")),
    ({"max_batch_size": 2**40}, ("max_batch_size", "must be ≤ 2147483647, got 1099511627776")),
    ({"dynamic_batching": {"default_queue_policy": {"timeout_action": "DROP"}}},
     ("dynamic_batching.default_queue_policy.timeout_action", "'DROP' is not one of REJECT, DELAY; use one of them")),
    ({"parameters": ["x"]}, ("parameters", "must be a mapping (key → ParametersEntry value), got ['x']")),
    ({"model_warmup": [{"batch_size": 1.5}]}, ("model_warmup.batch_size", "must be an integer, got 1.5")),
])
def test_problems(params: dict[str, Any], problem: tuple[str, str]) -> None:
    assert check_parameters(params) == problem
    assert PbtxtCodec().check_parameters(params) == problem


@pytest.mark.parametrize("params", [
    {}, {"_modelyzer_note": "x"}, {"maxBatchSize": "8"}, {"input": [{"name": "I", "dims": [-1, 3]}]},
    {"instance_group": [{"kind": "KIND_CPU", "count": [1, 2, 4]}], "dynamic_batching": {}},
    {"dynamic_batching": {"priority_levels": 2, "default_priority_level": 1}},
])
def test_accepted(params: dict[str, Any]) -> None:
    assert check_parameters(params) is None
