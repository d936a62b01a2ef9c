"""Which models an ensemble or a BLS model calls (`kernel.composing`): its steps / bls_composing_models as specs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelyzer.kernel.composing import ensemble_steps, with_composing
from tests.support.configs import profile_config

PIPELINES = Path(__file__).resolve().parents[2] / "examples" / "triton-cpu" / "pipelines"


def test_ensemble_steps_in_order_once() -> None:
    config = {"ensemble_scheduling": {"step": [{"model_name": "pre"}, {"model_name": "net"}, {"model_name": "pre"}]}}
    assert ensemble_steps(config) == ["pre", "net"]
    assert ensemble_steps({"max_batch_size": 8}) == []


def test_an_ensembles_steps_get_their_listed_settings_and_cpu_only(caplog: pytest.LogCaptureFixture) -> None:
    config = profile_config(model_repository=PIPELINES, profile_models="ensemble_scale_add_sub",
                            ensemble_composing_models={"add_sub": {"model_config_parameters": {"max_batch_size": [2, 4]}},
                                                       "not_a_step": {}},
                            cpu_only_composing_models=["scale"])
    caplog.set_level(logging.WARNING, logger="modelyzer")
    (spec,) = with_composing(config).models
    assert [c.name for c in spec.composing] == ["scale", "add_sub"]
    scale, add_sub = spec.composing
    assert scale.cpu_only and scale.model_path == str(PIPELINES / "scale")
    assert add_sub.model_config_parameters == {"max_batch_size": [2, 4]}
    assert "ensemble_composing_models: not_a_step is not a step of ensemble ensemble_scale_add_sub; ignored" in caplog.text


def test_a_bls_models_composing_models_are_bls_composing_models() -> None:
    config = profile_config(model_repository=PIPELINES, profile_models="bls_scale_add_sub",
                            bls_composing_models="scale,add_sub")
    (spec,) = with_composing(config).models
    assert [c.name for c in spec.composing] == ["scale", "add_sub"]
    plain = profile_config(model_repository=PIPELINES, profile_models="scale")
    assert with_composing(plain).models[0].composing == ()
