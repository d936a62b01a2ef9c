"""How many slot actors the `ray` executor runs and what each asks of Ray; its one-line errors before Ray runs."""

from __future__ import annotations

import socket
import sys

import pytest

from modelyzer.kernel.errors import ConfigError
from modelyzer.plugins.ray.executor import check_reachable, import_ray, plan_slots
from modelyzer.plugins.ray.settings import RaySettings


@pytest.mark.parametrize(("resources", "settings", "count", "options"), [
    ({"CPU": 8, "GPU": 4, "modelyzer_slot": 2}, RaySettings(), 4, {"num_gpus": 1, "num_cpus": 0}),
    ({"CPU": 8, "modelyzer_slot": 3}, RaySettings(), 3, {"num_cpus": 0, "resources": {"modelyzer_slot": 1}}),
    ({"CPU": 8}, RaySettings(), 1, {"num_cpus": 1}),
    ({"CPU": 8, "edge": 2}, RaySettings(ray_slot_resource="edge", ray_slots=5), 5,
     {"num_cpus": 0, "resources": {"edge": 1}}),
])
def test_one_slot_per_gpu_else_per_slot_resource_else_one(resources: dict[str, float], settings: RaySettings,
                                                          count: int, options: dict[str, object]) -> None:
    plan = plan_slots(resources, settings)
    assert (plan.count, plan.options) == (count, options)


def test_without_ray_installed_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is missing
    with pytest.raises(ConfigError, match=r"pip install 'modelyzer\[ray\]'"):
        import_ray()


def test_an_address_that_is_not_host_port_or_refuses_connections_is_one_line() -> None:
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        check_reachable("localhost")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} cannot be reached .*ray start --head"):
            check_reachable(f"127.0.0.1:{port}")
    check_reachable("auto")  # Ray finds the cluster itself
