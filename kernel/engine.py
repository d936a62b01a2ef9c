"""The profile loop: ModelSpecs → strategy.propose() → executor → store.record → strategy.observe().

Independent of where RunConfigs execute (in-process or on agents). Every measurement is committed before the
next one starts; RunConfig keys already in the results DB are not measured again (resume) and are counted as
skipped — except, with `retry_failed`, keys whose stored measurement failed (`models.retryable`): they are measured
again, the new measurement replaces the failed one in the store and the strategy observes the new one. Without
the flag the failed keys skipped are counted (`ProfileSummary.skipped_failed`) so the CLI can say how to retry.
Ctrl-C (KeyboardInterrupt) stops the executor's servers, marks the run `interrupted` and keeps every stored
measurement. The executor (its server) starts before the first RunConfig this run measures: a rerun with every
RunConfig stored starts nothing. A store failure (e.g. a full disk) ends the run with its own one-line error.

Server-only metrics (Model Analyzer's step before the first model): when the executor offers GPUs to sample
with no model loaded (`Executor.server_only_gpus`, empty when its server cannot be sampled so, e.g. a remote
or in-process server), the freshly started server is sampled for `duration_seconds` and the per-GPU values are
stored in `server_only_metrics` for the run. A resumed profile on the same GPUs reuses the stored values instead,
as does a run that measures nothing (on the same GPUs and host).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel import hooks, metrics, ranking
from modelyzer.kernel.composing import COMPOSING_BASES_KEY
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ModelyzerError
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.gpus import cpu_instance_groups
from modelyzer.kernel.interfaces import ModelConfigCodec, SearchStrategy
from modelyzer.kernel.models import (
    MEMBERS_KEY,
    STATUS_SKIPPED,
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
    retryable,
)
from modelyzer.kernel.progress import Progress
from modelyzer.kernel.store import Store, StoreError

INVALID_MEASUREMENT_THRESHOLD = 2  # abort a model when its first N measurements all fail

log = logging.getLogger("modelyzer")


@attrs.define
class ProfileSummary:
    run_id: int
    measured: int = 0
    skipped: int = 0
    #: of `skipped`: RunConfigs whose stored measurement failed (measured again with `retry_failed`)
    skipped_failed: int = 0
    #: RunConfigs measured again because their stored measurement failed (`retry_failed`)
    retried: int = 0
    failed: int = 0
    status: str = "running"
    wall_seconds: float = 0.0  # the command's wall time (from `Engine(started=…)`, the profile command's start)
    window_seconds: float = 0.0
    retry_seconds: float = 0.0
    slots: int = 1  # measurements that ran at once (agents' slots): the duty is per slot
    counters: dict[str, int] = attrs.field(factory=dict)

    def duty(self) -> tuple[float, float, float]:
        """The duty figure: (measuring, retries, tool) shares of the wall time per slot — the windows stored
        measurements kept, the load-generator runs thrown away (unstable attempts, failed measurements), and the
        rest (server starts, model loads, modelyzer, the load generator's start-up between runs)."""
        capacity = self.wall_seconds * max(self.slots, 1)
        if capacity <= 0:
            return 0.0, 0.0, 0.0
        measuring = min(self.window_seconds / capacity, 1.0)
        retries = min(self.retry_seconds / capacity, 1.0 - measuring)
        return measuring, retries, 1.0 - measuring - retries

    def duty_text(self) -> str:
        """"measuring 71%, retries 24%, tool 5%"."""
        measuring, retries, tool = self.duty()
        return f"measuring {measuring:.0%}, retries {retries:.0%}, tool {tool:.0%}"


StrategyFactory = Callable[[ModelSpec, dict[str, Any], ProfileConfig], SearchStrategy]


class Engine:
    """Runs one profile: every model of `config.models` through its search strategy and the executor."""

    def __init__(
        self,
        config: ProfileConfig,
        store: Store,
        executor: Executor,
        codec: ModelConfigCodec,
        strategy_factory: StrategyFactory,
        progress: Progress | None = None,
        workloads: Sequence[dict[str, Any]] = ({},),
        started: float | None = None,
    ) -> None:
        """`started`: the `time.monotonic()` the command began (its wall time is the duty figure's base)."""
        self.started = time.monotonic() if started is None else started
        self.workloads = [dict(w) for w in workloads] or [{}]
        self.config = config
        self.store = store
        self.executor = executor
        self.codec = codec
        self.strategy_factory = strategy_factory
        self._begun = False  # the executor started (its server) this run: at the first RunConfig it measures
        self.progress = progress or Progress()

    def base_config(self, spec: ModelSpec) -> dict[str, Any]:
        """The model's config in the repository; a concurrent group's: its models' (`_members`, in order); with
        composing models (ensemble, BLS), theirs too (`_composing_bases`, in step order)."""
        if spec.members:
            return {MEMBERS_KEY: [{"model": m.name, "config": self.base_config(m)} for m in spec.members]}
        path = Path(spec.model_path) / self.codec.filename
        base = cpu_instance_groups(spec, self.codec.read(path), self.codec.filename)  # device truth (kernel.gpus)
        if spec.composing:
            base[COMPOSING_BASES_KEY] = [{"model": c.name, "config": self.base_config(c)} for c in spec.composing]
        return base

    def run(self) -> ProfileSummary:
        run_id = self.store.start_run(self.config.to_dict())
        summary = ProfileSummary(run_id)
        hooks.run_started(run_id, self.config)
        try:
            for spec in self.config.models:
                self._profile_model(run_id, spec, summary)
                self._confirm_top(run_id, spec, summary)
            if not self._begun:  # everything was measured before: no server started; the reports keep the baseline
                self._reuse_server_only(run_id)
            summary.status = "finished"
        except KeyboardInterrupt:
            summary.status = "interrupted"
            raise
        except BaseException:
            summary.status = "failed"
            raise
        finally:
            try:
                self.executor.stop()
            finally:
                summary.wall_seconds = time.monotonic() - self.started
                summary.counters = self.executor.counters()
                self._close_run(run_id, summary)
                hooks.run_finished(run_id, summary.status)
        return summary

    def _close_run(self, run_id: int, summary: ProfileSummary) -> None:
        """Store the run's end; when the run already failed (e.g. on a full disk) and this fails too, the first
        error is the one the user sees: this one is only logged (the next profile marks the row `killed`)."""
        try:
            self.store.update_run(
                run_id,
                status=summary.status,
                finished_at=time.time(),
                measured=summary.measured,
                skipped=summary.skipped,
                failed=summary.failed,
                wall_seconds=summary.wall_seconds,
                window_seconds=summary.window_seconds,
                retry_seconds=summary.retry_seconds,
                **summary.counters,
            )
        except StoreError as err:
            if summary.status == "finished":
                raise
            log.debug("the run's row was not updated: %s", err)

    def _profile_model(self, run_id: int, spec: ModelSpec, summary: ProfileSummary) -> None:
        base = self.base_config(spec)
        self.store.upsert_model(spec.name, base, attrs.asdict(spec))
        strategy = self.strategy_factory(spec, base, self.config)
        attempts = failures = 0
        while True:
            batch = strategy.propose(self.executor.slots)
            if not batch:
                break
            named = [self.store.name_run_config(rc) for rc in batch]
            # every RunConfig under each workload of the load generator; the strategy sees the first (reference)
            under = [self._under(rc, w) for rc in named for w in self.workloads]
            results: dict[str, Result] = {}
            to_run: list[RunConfig] = []
            for rc in under:
                if not self._legal(rc):
                    results[rc.key] = Result(
                        rc, Measurement(rc.key, status=STATUS_SKIPPED, error="client batch size > max_batch_size")
                    )
                    continue
                stored = self.store.measurement(rc.key)
                if stored is not None and self.config.retry_failed and retryable(stored.status):
                    summary.retried += 1
                    to_run.append(rc)
                elif stored is not None:
                    summary.skipped += 1
                    summary.skipped_failed += retryable(stored.status)
                    results[rc.key] = Result(rc, stored)
                    self.progress.skipped(rc)
                else:
                    to_run.append(rc)
            self.progress.expect(len(to_run) + (strategy.total_estimate() or 0))
            self.store.record_progress(run_id, summary.measured, self.progress.remaining)  # readers' ETA (web UI)
            if to_run:
                self._begin(run_id)
            for rc, measurement in self.executor.execute(to_run) if to_run else ():
                if not self.store.record(run_id, rc, measurement, replace_failed=self.config.retry_failed):
                    log.warning("%s: already stored by another process; its measurement is kept", rc.describe())
                    theirs = self.store.measurement(rc.key)  # counted as skipped; the strategy observes the stored one
                    results[rc.key] = Result(rc, theirs if theirs is not None else measurement)
                    summary.skipped += 1
                    self.progress.skipped(rc)
                    continue
                hooks.measurement_recorded(rc, measurement)
                summary.measured += 1
                summary.window_seconds += measurement.window_seconds
                summary.retry_seconds += measurement.retry_seconds
                summary.slots = max(summary.slots, self.executor.slots)
                attempts += 1
                if not measurement.ok:
                    summary.failed += 1
                    failures += 1
                results[rc.key] = Result(rc, measurement)
                self.progress.measured(rc, measurement)
                if attempts == INVALID_MEASUREMENT_THRESHOLD and failures == attempts:
                    raise ModelyzerError(
                        f"the first {attempts} measurements of model {spec.name!r} failed; last error: "
                        f"{measurement.error} (the load generator's error log in the export path has its output); fix "
                        "the cause and rerun with --retry-failed to measure them again"
                    )
            counters = self.executor.counters()
            self.store.update_run(run_id, measured=summary.measured, skipped=summary.skipped, failed=summary.failed, **counters)
            reference = [(rc, self._under(rc, self.workloads[0]).key) for rc in named]
            strategy.observe([Result(rc, results[key].measurement) for rc, key in reference if key in results])

    def _confirm_top(self, run_id: int, spec: ModelSpec, summary: ProfileSummary) -> None:
        """`confirm_top`: measure the statistically tied leaders (`ranking.tied_leaders`, at most `confirm_top`) once
        more at their best RunConfig and store each as both measurements pooled (`metrics.pool`: means, CIs
        narrowed), replacing the stored one — the tie is re-judged on twice the windows. A confirmation that fails
        leaves the stored measurement as it was."""
        n = int(getattr(self.config, "confirm_top", 0) or 0)
        if n <= 0:
            return
        reference = self.workloads[0]
        results = ranking.at_workload(self.store.results(spec.name), reference)
        leaders = ranking.tied_leaders(ranking.rank(results, spec.objectives, spec.constraints), spec.objectives)[:n]
        if any(metrics.CONFIRMATIONS in r.best.measurement.values() for r in leaders):
            log.info("%s: the tied leaders were confirmed in an earlier run", spec.name)
            return
        if not leaders:
            log.info("%s: no statistically tied leaders to confirm", spec.name)
            return
        names = ", ".join(r.variant_name for r in leaders)
        log.info("%s: confirming the statistically tied leaders %s", spec.name, names)
        self.progress.expect(len(leaders))
        self._begin(run_id)
        for rc, measurement in self.executor.execute([r.best.run_config for r in leaders]):
            summary.window_seconds += measurement.window_seconds
            summary.retry_seconds += measurement.retry_seconds
            stored = self.store.measurement(rc.key)
            if measurement.ok and stored is not None and stored.ok:
                again = (*measurement.metrics, Metric(metrics.CONFIRMATIONS, 1.0))
                pooled = attrs.evolve(measurement, metrics=tuple(metrics.pool(stored.metrics, again)),
                                      window_seconds=stored.window_seconds + measurement.window_seconds,
                                      retry_seconds=stored.retry_seconds + measurement.retry_seconds)
                self.store.record(run_id, rc, pooled, replace=True)
                summary.measured += 1
                self.progress.measured(rc, pooled)
            else:
                log.warning("%s: confirmation failed, the stored measurement stays: %s", rc.describe(),
                            measurement.error)
        after = ranking.tie(ranking.rank(ranking.at_workload(self.store.results(spec.name), reference), spec.objectives,
                                         spec.constraints), spec.objectives)
        log.info("%s: after confirmation %s", spec.name,
                 f"still tied: {', '.join(after.names)} within ±{after.within:.1f}%" if after else "the tie is broken")

    def _begin(self, run_id: int) -> None:
        """Before the first RunConfig this run measures (not at all when every one was measured before): start the
        executor (its server) and take the server-only metrics."""
        if not self._begun:
            self._begun = True
            self.executor.start()
            self._server_only(run_id)

    def _reuse_server_only(self, run_id: int) -> None:
        """A run that measured nothing reuses the latest server-only metrics taken on the same GPUs (and host)."""
        uuids = sorted(set(self.executor.server_only_gpus()))
        host = self.executor.server_only_host()
        previous = self.store.previous_server_only(uuids, exclude_run=run_id, host=host) if uuids or host else None
        if previous is not None:
            self.store.copy_server_only(previous, run_id)

    def _server_only(self, run_id: int) -> None:
        """Measure (or, on resume with the same GPUs, reuse) the server-only metrics of this run: per GPU, and of
        the server's host (its RAM, its own CPU gauges) when the executor can sample them (`collect_cpu_metrics`)."""
        uuids = sorted(set(self.executor.server_only_gpus()))
        host = self.executor.server_only_host()
        if not uuids and not host:
            return
        previous = None if host else self.store.previous_server_only(uuids, exclude_run=run_id)
        if previous is not None:
            log.info("server-only metrics: reusing run %d's (same GPUs)", previous)
            self.store.copy_server_only(previous, run_id)
            return
        duration = float(self.config.duration_seconds)
        what = " and ".join(([f"{len(uuids)} GPU(s)"] if uuids else []) + (["the server's host"] if host else []))
        log.info("server-only metrics: sampling %s for %g s with no model loaded", what, duration)
        try:
            sampled = self.executor.server_only_metrics(duration)
        except Exception as err:  # noqa: BLE001 - a missing baseline must not stop the profile
            log.warning("server-only metrics are missing: %s", err)
            return
        self.store.record_server_only(run_id, [m for m in sampled if m.gpu_uuid in uuids or (host and not m.gpu_uuid)])

    @staticmethod
    def _under(rc: RunConfig, workload: dict[str, Any]) -> RunConfig:
        if dict(rc.load.workload) == workload:
            return rc
        members = tuple(Engine._under(m, workload) for m in rc.members)
        return attrs.evolve(rc, load=attrs.evolve(rc.load, workload=workload), members=members)

    @staticmethod
    def _legal(rc: RunConfig) -> bool:
        if rc.members:
            return all(Engine._legal(m) for m in rc.members)
        mbs = rc.variant.max_batch_size
        return not (mbs > 0 and rc.load.batch_size > mbs)

