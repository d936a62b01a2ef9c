"""Fixtures of the agent tests on real sockets: a replay recording, CURVE keys, agent daemons in threads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyzer.plugins.agents.keys import generate_keys
from tests.integration import bench_agents
from tests.plugins.agents.realnet import Agents


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("replay")
    return bench_agents().make_fixture(root, instances=[1, 2], batch_sizes=[1, 2, 4], concurrency=[1, 2, 4])  # type: ignore[no-any-return]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    generate_keys(tmp_path / "keys", agents=2)
    return tmp_path / "keys"


@pytest.fixture
def agents() -> Iterator[Agents]:
    pool = Agents()
    yield pool
    pool.stop()
