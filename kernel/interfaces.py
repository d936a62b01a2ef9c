"""The contracts of each plugin kind, as abstract base classes the plugins subclass.

A plugin registers a *factory* (usually the class itself) through its `register_*` hook; the kernel builds
instances with the arguments documented on each class. Everything passed in is a kernel value type
(`kernel.models`) or the resolved `ProfileConfig`; nothing concrete crosses back into the kernel.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from modelyzer.kernel.models import (
    ConfigVariant,
    Endpoints,
    GpuDevice,
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
)

if TYPE_CHECKING:  # pragma: no cover
    from modelyzer.kernel.config import ProfileConfig
    from modelyzer.kernel.store import Store


@attrs.define
class RunContext:
    """What executing plugins share for one profile: where to write files, how to log, which GPUs to use.

    `gpus` are the devices selected by the `gpus` option (`kernel.gpus.discover_gpus`), empty when the host has
    none or the user chose none; launchers use `gpu_uuids` for `CUDA_VISIBLE_DEVICES` / device requests.
    `server_on_this_host` is the chosen launcher's `on_this_host` capability (collectors that read this host's
    hardware skip a server that runs elsewhere). `cpu_only_server`: the launcher declared that its server runs on
    the CPU only (`Launcher.devices() == []`, set by GPU discovery). `status` shows a transient line while a long
    step runs (e.g. a load generator's current pass); frontends replace the default, which logs at debug level.
    `command` is the command running (`profile`, `report`), for reporters.
    """

    export_path: Path
    output_model_repository: Path
    gpus: list[GpuDevice] = attrs.field(factory=list)
    log: logging.Logger = attrs.field(factory=lambda: logging.getLogger("modelyzer"))
    server_on_this_host: bool = True
    cpu_only_server: bool = False
    command: str = "profile"
    status: Callable[[str], None] = attrs.field(factory=lambda: logging.getLogger("modelyzer").debug)

    @property
    def gpu_uuids(self) -> list[str]:
        """UUIDs of the selected GPUs, in selection order."""
        return [g.uuid for g in self.gpus]


class Launcher(abc.ABC):
    """Owns one inference server: start/stop/health, and making a ConfigVariant the served model.

    Built as `factory(config: ProfileConfig, context: RunContext)` (building must start nothing). `ensure(variant)`
    must return endpoints where `variant` answers under `Endpoints.model_name`; it loads through the repository
    API when it can and restarts the server only when it must. `server_starts` and `model_loads` count what it
    did. The class attributes below are its capabilities: the kernel reads them to choose collectors, the
    server-only window and GPU discovery, and never looks at a launcher's name.
    """

    #: the server exposes server-side metrics (statistics, Prometheus `/metrics`): collectors that scrape it apply
    serves_metrics: ClassVar[bool] = True
    #: the server can be sampled with no model loaded (Model Analyzer's server-only GPU window)
    server_only_window: ClassVar[bool] = True
    #: the server runs on this host, so this host's GPUs are its GPUs (False: a remote server this host cannot see)
    on_this_host: ClassVar[bool] = True
    #: starts a server process of its own on this host (several on one host need their own ports and logs)
    starts_server: ClassVar[bool] = True
    #: the server runs inside the load generator's process (no server process to watch or sample)
    in_process: ClassVar[bool] = False
    #: the model-config fields the automatic search may vary for this server (`instance_group`, `max_batch_size`,
    #: `dynamic_batching`); None: all of them (Triton). A server that ignores them (one process serving an LLM)
    #: declares () and is searched only over `model_config_parameters` and the load.
    tuned_fields: ClassVar[tuple[str, ...] | None] = None
    #: serves several models at once, each loaded by `ensure(member variant, …, group RunConfig)` without
    #: unloading the group's other models (`run_config_profile_models_concurrently_enable`)
    serves_models_together: ClassVar[bool] = False
    #: the CPU execution accelerators the server runs for ONNX models, by the `name` of Triton's
    #: `optimization.execution_accelerators.cpu_execution_accelerator` entry: the automatic
    #: search offers each as a choice of its `accelerator` dimension; () (the default): no such dimension
    cpu_accelerators: ClassVar[tuple[str, ...]] = ()

    server_starts: int = 0
    model_loads: int = 0

    def load_generator(self) -> LoadGenerator | None:
        """A load generator this launcher brings with it (one answering from recorded results); None: the kernel
        chooses one by the model type. With its own load generator no metric collector runs (nothing live)."""
        return None

    def devices(self) -> list[GpuDevice] | None:
        """The GPUs this launcher's server uses when it knows them itself (recorded ones); None: discover them.

        `[]` declares a CPU-only server: every model is profiled CPU-only and a KIND_GPU instance group runs as
        KIND_CPU, said in one line and reported as CPU (`kernel.gpus`, device truth)."""
        return None

    def server_endpoints(self) -> Endpoints | None:
        """Where the started server answers before any model is loaded: the server-only window samples its host
        metrics (RAM, Triton's CPU gauges) there. None: no running server of its own to sample."""
        return None

    @abc.abstractmethod
    def start(self) -> None:
        """Start (or connect to) the server; raise LaunchError with the reason if it cannot answer."""

    @abc.abstractmethod
    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        """Make `variant` (written to `variant_dir` by the codec) served; return where it answers."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop whatever this launcher started (idempotent; safe from signal handlers and `finally`)."""

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise a ModelyzerError with one line naming the fix when it cannot serve on this host (server binary
        missing, docker engine unreachable, …); starts nothing. Called by `modelyzer check` / `profile --dry-run`."""

    def writes_full_variant_dirs(self) -> bool:
        """False when only config.pbtxt is needed in the output repository (remote servers)."""
        return True

    def variant_config(self, variant: ConfigVariant) -> dict[str, Any]:
        """The model config written to the variant's directory; by default the variant's config as is (its
        `name` stays the model's). A launcher whose server loads variants by directory name renames it."""
        return dict(variant.config)


#: the load values (ascending) a load generator can answer for a RunConfig's variant, client batch size and load
#: mode when it answers only some (`LoadGenerator.recorded_loads`); None: any load
RecordedLoads = Callable[[RunConfig], "tuple[int, ...] | None"]


class SearchStrategy(abc.ABC):
    """Proposes experiments for one model and learns from their results.

    Built as `factory(spec: ModelSpec, base_config: dict, config: ProfileConfig)`. `propose()` returns a
    batch of *independent* RunConfigs (empty when done); the engine measures all of them and calls
    `observe()` with their results (already-measured ones included, so resume replays the same path).
    `searches_groups`: it also searches a concurrent group (`ModelSpec.members`: one variant per model in each
    `RunConfig.group`); the kernel refuses concurrent profiling with a strategy that does not declare it.
    `recorded_loads`: set by the kernel right after building the strategy when the load generator answers only
    some loads (a recording, `LoadGenerator.recorded_loads`); a strategy snaps the loads it makes up (bisection
    between two measured loads) onto them instead of spending a measurement on an answer that cannot come.
    """

    searches_groups: ClassVar[bool] = False
    recorded_loads: RecordedLoads | None = None

    @abc.abstractmethod
    def propose(self, slots: int = 1) -> list[RunConfig]:
        """The next batch of independent RunConfigs; `[]` means the search is over.

        `slots` is how many the executor can run at once: with 1 slot a strategy should return one RunConfig
        in its natural order (variant-major, so servers are reused); with N it should spread over up to N
        independent lines of search. Returning fewer is fine; returning more is allowed.
        """

    @abc.abstractmethod
    def observe(self, results: list[Result]) -> None:
        """Results of the last batch, in the order proposed."""

    def total_estimate(self) -> int | None:
        """Upper bound of RunConfigs still to come, for the progress ETA (None if unknown)."""
        return None

    def space_size(self) -> int | None:
        """How many model-config variants the search may try, for the plan `modelyzer check` prints (None if
        unknown)."""
        return None


class LoadGenerator(abc.ABC):
    """Drives load at a served model for one RunConfig. Built as `factory(config, context)`.

    Capabilities: `model_types` are the `model_type` values (lower case) it serves — with no `load_generator`
    key the kernel picks one that serves the profiled model type (highest `preference`, then name); `produces`
    the metric tags it measures.
    """

    model_types: ClassVar[frozenset[str]] = frozenset({"generic"})
    produces: ClassVar[tuple[str, ...]] = ()
    preference: ClassVar[int] = 0
    #: seconds of measurement windows the last `measure()` kept (None: the executor times the whole call)
    last_window_seconds: float | None = None
    #: seconds of the last `measure()`'s runs whose windows were thrown away (unstable attempts, failed runs)
    last_retry_seconds: float = 0.0

    @classmethod
    def workloads(cls, config: ProfileConfig) -> list[dict[str, Any]]:
        """The workloads every RunConfig is measured under (e.g. LLM input/output lengths), from its settings; the
        first is the reference the search and the ranking use, the others are measured and reported beside it
        (never optimised away). [{}]: no workload dimension."""
        return [{}]

    @abc.abstractmethod
    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        """Run one measurement; return client/server metrics; raise LoadGeneratorError on failure."""

    def command(self, run_config: RunConfig, endpoints: Endpoints) -> list[str]:
        """The command line this generator would run (shown in logs and errors)."""
        return []

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise a ModelyzerError with one line naming the fix when it cannot run on this host (its binary is
        missing, say). Called before any server starts, when measurements run on this host."""

    def recorded_loads(self, run_config: RunConfig) -> tuple[int, ...] | None:
        """The load values (ascending) it can answer for `run_config`'s variant, client batch size and load mode
        when it answers only some (a recording: () for a variant it never saw); None (the default): any load.
        The kernel hands this to the search strategies (`SearchStrategy.recorded_loads`)."""
        return None

    def together(self, run_config: RunConfig) -> RunConfig:
        """`run_config` as measured while the other models of a concurrent group are measured by their own
        instances at the same moment: the generator fixes its measurement windows (same length and number for
        every model) so that the windows of all models line up. Default: unchanged."""
        return run_config


class MetricCollector(abc.ABC):
    """Samples metrics around a measurement window. Built as `factory(config, context)`.

    Capabilities: `tags` it can produce; when two enabled collectors cover the same tags only the one with the
    higher `precedence` runs (reading a GPU directly beats reading it through the server);
    `needs_server_metrics` collectors run only when the launcher's server `serves_metrics`.
    """

    tags: tuple[str, ...] = ()
    precedence: ClassVar[int] = 0
    needs_server_metrics: ClassVar[bool] = False

    def enabled(self) -> bool:
        """Whether this collector should run for the current config (e.g. collect_cpu_metrics)."""
        return True

    def devices(self) -> list[GpuDevice]:
        """GPUs this collector can see on this host, for GPU discovery (`session.discover_gpus`).

        Called once per profile before the executor is built (so `context.gpus` is still empty); must not raise
        when the hardware or driver is missing — return `[]`. Collectors that do not enumerate GPUs keep this.
        """
        return []

    @abc.abstractmethod
    def start(self, endpoints: Endpoints) -> None:
        """Begin sampling (return quickly; sample in a thread)."""

    @abc.abstractmethod
    def stop(self) -> list[Metric]:
        """Stop sampling and return the window's metrics, aggregated as the metric registry says."""


class Ranker(abc.ABC):
    """Scores and orders results of one model. Built as `factory(config)`; chosen by the `ranker` key."""

    @abc.abstractmethod
    def rank(self, spec: ModelSpec, results: list[Result], top_n: int) -> list[RankedConfig]:
        """Best-first list of configs, at most `top_n` plus the default config."""


@attrs.frozen
class RankedConfig:
    """A ranked variant: its best measurement under the constraints, and all of its measurements."""

    variant_name: str
    best: Result
    passing: bool
    results: tuple[Result, ...]
    score: float = 0.0


class Reporter(abc.ABC):
    """Writes files from the results store at the end of profile (or for `report`).

    Built as `factory(config, context)`. Every registered reporter whose `enabled()` is true runs at the end of
    each command in its `commands` (`profile`; `report` regenerates reports from a results DB; `export` writes the
    CSVs, summaries and best configs of any results DB; `context.command` says which), by `order` (lower first; a reporter that reads another's files runs after it), then name.
    """

    commands: ClassVar[frozenset[str]] = frozenset({"profile", "report"})
    order: ClassVar[int] = 100

    def enabled(self) -> bool:
        """Whether this reporter writes anything for the current config (e.g. not when its reports are skipped)."""
        return True

    @abc.abstractmethod
    def write(self, store: Store, run_id: int, config: ProfileConfig, ranking: dict[str, list[RankedConfig]]) -> list[Path]:
        """Write outputs; return the paths written."""


class ModelConfigCodec(abc.ABC):
    """Reads and writes one model-config file format. Built as `factory()`.

    The kernel uses the codec whose `filename` the profiled models' directories hold; when no model directory
    tells (reports, imports), the one with the highest `preference`, then the first by name.
    """

    filename: str = "config.pbtxt"
    preference: ClassVar[int] = 0

    @abc.abstractmethod
    def read(self, path: Path) -> dict[str, Any]:
        """Parse the file into a snake_case dict of the model config."""

    @abc.abstractmethod
    def write(self, config: dict[str, Any], path: Path) -> None:
        """Write the dict faithfully in the file format."""

    def dumps(self, config: dict[str, Any]) -> str:
        raise NotImplementedError

    def check_parameters(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """Check a model's `model_config_parameters` (Model Analyzer's sweep form: lists are choices) when the config
        is loaded, before any server starts: the first problem as (dotted key below `model_config_parameters`,
        one-line problem with the fix), or None. The default checks nothing."""
        return None


__all__ = [
    "ConfigVariant",
    "Endpoints",
    "GpuDevice",
    "Launcher",
    "LoadGenerator",
    "Measurement",
    "MetricCollector",
    "ModelConfigCodec",
    "ModelSpec",
    "RankedConfig",
    "Ranker",
    "RecordedLoads",
    "Reporter",
    "Result",
    "RunConfig",
    "RunContext",
    "SearchStrategy",
]
