"""The `pool` executor (`executor: pool`): two in-process slots run side by side on threads.

Each slot is the built-in in-process executor (its own launcher, load generator and collectors, chosen by the
kernel from the config); this executor only decides where and how many run at once, and stamps each
measurement with the slot that made it (`agent` column of the results DB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Measurement, RunConfig
from modelyzer.plugins.executors.local import InProcessExecutor


class PoolExecutor(Executor):
    slots = 2

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self._slots: list[InProcessExecutor] = []
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._pool is None:
            self._slots = [InProcessExecutor(self.config, self.context) for _ in range(self.slots)]
            for slot in self._slots:
                slot.start()
            self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="pool-slot")

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for slot in self._slots:
            slot.stop()

    def counters(self) -> dict[str, int]:
        totals = {"server_starts": 0, "model_loads": 0}
        for slot in self._slots:
            for key, value in slot.counters().items():
                totals[key] = totals.get(key, 0) + value
        return totals

    def execute(self, run_configs: Sequence[RunConfig]) -> Iterator[tuple[RunConfig, Measurement]]:
        self.start()
        assert self._pool is not None
        futures: dict[Future[Measurement], RunConfig] = {}
        for i, rc in enumerate(run_configs):
            futures[self._pool.submit(self._run, i % self.slots, rc)] = rc
        for future in as_completed(futures):
            yield futures[future], future.result()

    def _run(self, slot: int, rc: RunConfig) -> Measurement:
        return attrs.evolve(self._slots[slot].run_one(rc), agent=f"pool/{slot}")


@hookimpl
def register_executors(register: Any) -> None:
    register("pool", PoolExecutor)
