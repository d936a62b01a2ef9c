"""Models and variants: stable names, variants stored under their own names, stored specs."""

from __future__ import annotations

import pytest

from modelyzer.kernel.models import ConfigVariant, Constraint, ModelSpec
from modelyzer.kernel.store import Store


def test_variant_names_are_stable_and_in_creation_order() -> None:
    store = Store(":memory:")
    store.upsert_model("m", {}, {})
    d = store.name_variant(ConfigVariant("m", {"max_batch_size": 8}, is_default=True))
    a = store.name_variant(ConfigVariant("m", {"max_batch_size": 1}))
    b = store.name_variant(ConfigVariant("m", {"max_batch_size": 2}))
    a2 = store.name_variant(ConfigVariant("m", {"max_batch_size": 1}))
    assert (d.name, a.name, b.name, a2.name) == ("m_config_default", "m_config_0", "m_config_1", "m_config_0")
    assert [v.name for v in store.variants("m")] == ["m_config_default", "m_config_0", "m_config_1"]


def test_add_variant_keeps_its_name_and_is_idempotent() -> None:
    store = Store(":memory:")
    store.upsert_model("m", {}, {})
    ma = ConfigVariant("m", {"max_batch_size": 4}, params={"max_batch_size": 4}, name="m_config_7")
    store.add_variant(ma)
    store.add_variant(ma)
    assert store.variants() == [ma]
    assert store.name_variant(ConfigVariant("m", {"max_batch_size": 4})).name == "m_config_7"
    assert store.name_variant(ConfigVariant("m", {"max_batch_size": 5})).name == "m_config_1"  # seq 1: the next free
    with pytest.raises(ValueError, match="named variant"):
        store.add_variant(ConfigVariant("m", {}))


def test_find_variant_by_name_or_config_hash() -> None:
    store = Store(":memory:")
    store.upsert_model("m", {}, {})
    v = store.name_variant(ConfigVariant("m", {"max_batch_size": 2}))
    assert store.find_variant(name=v.name) == v
    assert store.find_variant(config_hash=v.config_hash) == v
    assert store.find_variant(name="nope") is None and store.find_variant(config_hash="0") is None


def test_model_spec_reads_back_or_falls_back_to_defaults() -> None:
    store = Store(":memory:")
    spec = ModelSpec("m", cpu_only=True, constraints=(Constraint("perf_latency_p99", max=5.0),))
    store.upsert_model("m", {"max_batch_size": 8}, {"name": "m", "cpu_only": True,
                                                     "constraints": [{"tag": "perf_latency_p99", "max": 5.0}]})
    store.upsert_model("foreign", {}, {"objectives": "not a list"})
    assert store.model_spec("m") == spec
    assert store.model_spec("foreign") == ModelSpec("foreign")
    assert store.model_spec("unknown") == ModelSpec("unknown")
    assert store.base_config("m") == {"max_batch_size": 8} and store.models() == ["m", "foreign"]
