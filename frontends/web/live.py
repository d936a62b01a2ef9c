"""The live panel: the latest run's progress (count and ETA), its latest measurements, and its agents and slots.

Progress comes from the DB alone: the measurements the run stored and what the engine last said it still expects
(`Store.progress`); the ETA is the CLI's (`kernel.progress`): the mean interval between the run's last finished
measurements times the RunConfigs still expected. Agents come from the controller itself, asked the way
`modelyzer agents status` asks (`plugins.agents.status.query_status`), at the address and with the keys the run
stored (`agents`, `agent_keys`, `insecure`), at most every `AgentsProbe.interval` seconds and only while the run
is running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyzer.frontends.web.snapshot import Snapshot
from modelyzer.kernel import ranking
from modelyzer.kernel.models import converter
from modelyzer.kernel.progress import RATE_WINDOW, format_duration
from modelyzer.kernel.store import Run

log = logging.getLogger("modelyzer")
LATEST = 8  # measurements shown in the live panel

StatusQuery = Callable[[str, Any, float], Any]  # (controller URL, keys or None, timeout) → StatusReport


def controller_address(bind: str) -> str:
    """Where to reach a controller bound to `bind` from this host (a wildcard bind is reached on loopback)."""
    for wildcard in ("0.0.0.0", "*", "[::]"):
        bind = bind.replace(f"//{wildcard}:", "//127.0.0.1:")
    return bind


class AgentsProbe:
    """Asks a run's controller for its agents; the answer (or the reason there is none) is cached `interval` s."""

    def __init__(self, query: StatusQuery | None = None, interval: float = 2.0, timeout: float = 1.0) -> None:
        self.query = query
        self.interval = interval
        self.timeout = timeout
        self._lock = threading.Lock()
        self._at = 0.0
        self._key: tuple[Any, ...] = ()
        self._value: dict[str, Any] | None = None

    def _ask(self, run: Run) -> dict[str, Any]:
        query = self.query
        if query is None:
            from modelyzer.plugins.agents.status import query_status
            query = query_status
        keys = None
        if not run.config.get("insecure"):
            from modelyzer.plugins.agents.keys import CONTROLLER, load_agent_keys
            directory = Path(str(run.config.get("agent_keys") or ""))
            pairs = sorted(p.name.removesuffix(".key_secret") for p in directory.glob("*.key_secret"))
            # the controller answers any authorized agent key: the first agent pair beside the controller's
            keys = load_agent_keys(directory, next((n for n in pairs if n != CONTROLLER), None))
        report = query(controller_address(str(run.config["agents"])), keys, self.timeout)
        value: dict[str, Any] = converter.unstructure(report)
        return value

    def status(self, run: Run | None) -> dict[str, Any] | None:
        """The controller's status as a dict (with `error` when it did not answer); None without agents."""
        if run is None or not run.config.get("agents") or run.status != "running":
            return None
        key = (run.id, run.config.get("agents"))
        with self._lock:
            if key == self._key and time.monotonic() - self._at < self.interval:
                return self._value
            try:
                value = self._ask(run)
            except Exception as err:  # noqa: BLE001 - shown in the panel; the page keeps updating
                value = {"error": str(err), "agents": []}
            self._key, self._at, self._value = key, time.monotonic(), value
            return value


def eta(finished: list[float], remaining: int) -> str:
    """The CLI's ETA: the mean of the last `RATE_WINDOW` intervals between finished measurements × remaining."""
    recent = sorted(finished)[-(RATE_WINDOW + 1):]
    if remaining <= 0:
        return "0s"
    if len(recent) < 2:
        return "?"
    per = (recent[-1] - recent[0]) / (len(recent) - 1)
    return format_duration(per * remaining)


def live_state(snapshot: Snapshot, agents: AgentsProbe) -> dict[str, Any]:
    """The live panel's content as JSON-ready values (what the page's SSE handler renders)."""
    run = snapshot.latest
    state: dict[str, Any] = {"version": list(snapshot.version), "run": None, "latest": [], "agents": None,
                             "measurements": sum(r.measured for r in snapshot.runs)}
    if run is None:
        return state
    results = snapshot.results(run_id=run.id)
    done = len(results)
    expected = snapshot.store.progress(run.id)
    running = run.status == "running"
    remaining = expected.remaining_after(done) if expected is not None and running else 0
    state["run"] = {"id": run.id, "status": run.status, "done": done, "total": done + remaining,
                    "failed": sum(not r.measurement.ok for r in results),
                    "eta": eta([r.measurement.finished_at for r in results if r.measurement.finished_at],
                               remaining) if running and expected is not None else ("" if not running else "?")}
    for r in reversed(results[-LATEST:]):
        values = ranking.measurement_values(r.measurement)
        state["latest"].append({
            "model": r.run_config.model, "variant": r.run_config.variant.name, "load": r.run_config.load.describe(),
            "ok": r.measurement.ok, "error": r.measurement.error or "",
            "throughput": values.get("perf_throughput"), "p99": values.get("perf_latency_p99"),
            "where": " ".join(x for x in (r.measurement.agent, r.measurement.gpu) if x) or r.measurement.host,
            "finished_at": r.measurement.finished_at,
            "finished": time.strftime("%H:%M:%S", time.localtime(r.measurement.finished_at))
            if r.measurement.finished_at else "",
        })
    state["agents"] = agents.status(run)
    return state
