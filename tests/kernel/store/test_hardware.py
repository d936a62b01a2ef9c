"""GPUs and server-only metrics."""

from __future__ import annotations

from modelyzer.kernel.models import Metric
from modelyzer.kernel.store import Store, StoredGpu


def test_gpus_are_values_in_recorded_order() -> None:
    store = Store(":memory:")
    store.record_gpu("GPU-b", "B", 2_000)
    store.record_gpu("GPU-a", "A", 1_000)
    store.record_gpu("GPU-b", "B2", 3_000)  # same GPU: updated in place
    assert store.gpus() == [StoredGpu("GPU-b", "B2", 3_000), StoredGpu("GPU-a", "A", 1_000)]


def test_server_only_metrics_record_reuse_and_once() -> None:
    store = Store(":memory:")
    sampled = [Metric("gpu_used_memory", 1.0, "GPU-b"), Metric("gpu_used_memory", 2.0, "GPU-a")]
    store.record_server_only(1, sampled)
    assert store.server_only(1) == sampled
    assert store.previous_server_only(["GPU-a", "GPU-b"]) == 1
    assert store.previous_server_only(["GPU-a", "GPU-b"], exclude_run=1) is None
    assert store.previous_server_only(["GPU-a"]) is None
    store.copy_server_only(1, 2)
    assert store.server_only(2) == sampled and store.previous_server_only(["GPU-b", "GPU-a"]) == 2
    store.record_server_only(2, [Metric("gpu_utilization", 9.0, "GPU-a")], once=True)
    assert store.server_only(2) == sampled
    store.record_server_only(3, [Metric("gpu_utilization", 9.0, "GPU-a")], once=True)
    assert store.server_only(3) == [Metric("gpu_utilization", 9.0, "GPU-a")]


def test_host_server_only_metrics_have_no_gpu_and_do_not_count_as_gpus() -> None:
    store = Store(":memory:")
    host = [Metric("cpu_used_ram", 300.0), Metric("host_cpu_utilization", 4.0)]
    store.record_server_only(1, [Metric("gpu_used_memory", 1.0, "GPU-a"), *host])
    assert store.server_only(1)[1:] == host  # read back without a GPU UUID
    assert store.previous_server_only(["GPU-a"]) == 1  # the host's rows are not a GPU of that run
