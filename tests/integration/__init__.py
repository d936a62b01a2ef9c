"""Integration tests: real processes and sockets on 127.0.0.1 (and in network namespaces where allowed).

`bench_agents()` loads bench/agents.py, whose `make_fixture()` (a model repository and a synthetic replay
recording) the agent tests share with the benchmark.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


@cache
def bench_agents() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modelyzer_bench_agents", ROOT / "bench" / "agents.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
