"""The `triton_composing` collector's arithmetic on Triton's statistics answers (the real server: see the ensemble
and BLS profiles in tests/plugins/launchers/test_local_triton.py)."""

from __future__ import annotations

from modelyzer.kernel import metrics
from modelyzer.kernel.models import Endpoints
from modelyzer.plugins.collectors.triton_composing import (
    TritonComposingCollector,
    ensemble_steps,
    step_metrics,
    totals,
)
from tests.support.configs import profile_config


def stats(**models: tuple[int, int]) -> dict[str, object]:
    return {"model_stats": [{"name": name, "version": "1", "inference_stats": {"success": {"count": c, "ns": ns}}}
                            for name, (c, ns) in models.items()]}


def test_steps_of_an_ensemble_in_order_each_once() -> None:
    config = {"ensemble_scheduling": {"step": [{"model_name": "a"}, {"model_name": "b"}, {"model_name": "a"}]}}
    assert ensemble_steps(config) == ["a", "b"] and ensemble_steps({"name": "plain"}) == []


def test_window_latency_per_step_and_shares() -> None:
    before = totals(stats(a=(10, 10_000_000), b=(10, 50_000_000)))
    after = totals(stats(a=(110, 110_000_000), b=(110, 350_000_000)))  # a: 1 ms per request, b: 3 ms
    values = {m.tag: m.value for m in step_metrics(["a", "b"], before, after)}
    assert values == {"step_latency/a": 1.0, "step_share/a": 25.0, "step_latency/b": 3.0, "step_share/b": 75.0}
    assert metrics.get("step_share/b") is not None and metrics.get("step_share/b").header == "Step b Share (%)"  # type: ignore[union-attr]
    assert step_metrics(["a"], after, after) == []  # no request in the window: nothing to say


def test_no_triton_server_or_no_model_is_no_metric() -> None:
    collector = TritonComposingCollector(profile_config(), None)  # type: ignore[arg-type]
    collector.start(Endpoints(http="127.0.0.1:1", model_name="m"))  # not Triton's API (triton_metrics False)
    assert collector.stop() == []
    collector.start(Endpoints(http="127.0.0.1:1", model_name="m", triton_metrics=True))  # nothing listens
    assert collector.stop() == []
