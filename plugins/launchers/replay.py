"""The `replay` launcher and load generator: answer RunConfigs from a recorded results DB, offline, in seconds.

`triton_launch_mode: replay` with `replay_results_db: <db>` (a profile's results DB, or a Model Analyzer
checkpoint imported with `modelyzer import-ma-checkpoint`) runs any search strategy without a server:

- the `replay` load generator looks each RunConfig up by its model, its variant's *config* (normalized by the
  pbtxt codec, private `_` annotations and `name` left out — never the variant's name, which depends on the
  order a search created it) and its load (client batch size and concurrency / request rate / intervals).
  When no recorded variant has exactly that config, the *knobs* decide (`Recording.match`): a recorded variant
  of the model with the same instance groups (count, kind) and max_batch_size, with dynamic batching or not
  as the wanted config when the recording has any variant of the model with it, and whose config agrees on
  every value both configs set — so a Model Analyzer checkpoint whose variants lack the `dynamic_batching`
  block every strategy adds (or set fields the strategy leaves out) answers with no extra option; of several,
  the closest (fewest values set on one side only, then the first recorded), said once in the log.
  Found: the recorded metrics (GPU metrics per recorded UUID), after sleeping `replay_duration` seconds to
  simulate the measurement; a recorded failure is replayed as a failure with its recorded error. Not found:
  a LoadGeneratorError with status `not_recorded`, which the executor records as a `not_recorded`
  Measurement: not ok, so ranking and reports ignore it like a failed one and strategies see a missing point.
  perf_analyzer flags and server flags are not compared: the recording answers for its own server.
  It declares the loads it can answer (`LoadGenerator.recorded_loads`): the engine hands them to the search
  strategies, which snap the loads they make up (brute's and the sweeps' bisection) onto recorded ones.
- the `replay` launcher starts nothing: it checks the recorded DB and builds its index in `start()` (so an
  agent slot is warm before its first RunConfig; the index is built once per process and file version,
  `recording_for`, and shared by the slots), counts model loads (variant changes) as a real server would,
  and needs only `config.pbtxt` in the output repository.
- the launcher declares what it is: it brings its own load generator (`Launcher.load_generator()`, so no live
  collector runs), its GPUs are the recorded ones (`Launcher.devices()`, so a GPU recording is replayed with
  KIND_GPU variants and a CPU-only one with KIND_CPU variants), and nothing can be sampled with no model loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, LoadGeneratorError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher, LoadGenerator, RunContext
from modelyzer.kernel.models import (
    STATUS_NOT_RECORDED,
    STATUS_OK,
    ConfigVariant,
    Endpoints,
    GpuDevice,
    Measurement,
    Metric,
    RunConfig,
    canonical_json,
    converter,
)
from modelyzer.kernel.store import NotAResultsDB, Store
from modelyzer.plugins.codecs.pbtxt import normalize

log = logging.getLogger("modelyzer")

MODE = "replay"
BYTES_PER_MB = 1e6

Key = tuple[str, str, str]


class NotRecorded(LoadGeneratorError):
    """The replayed results DB has no measurement for this RunConfig."""

    status = STATUS_NOT_RECORDED


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """A variant config normalized, without `name` and private `_` keys."""
    public = {k: v for k, v in config.items() if not str(k).startswith("_")}
    try:
        public = normalize(public)
    except ConfigError:
        pass  # not a Triton config (another codec's): compare it as it is
    public.pop("name", None)
    return public


def config_identity(config: dict[str, Any]) -> str:
    """The comparable form of a variant config: normalized, without `name` and private `_` keys."""
    return canonical_json(public_config(config))


def knobs(config: dict[str, Any]) -> str:
    """What a search varies in every variant (the knob match's key): instance groups (count, kind) and
    max_batch_size; a config with private parts (a group's members, composing models) has no knob match."""
    if any(str(k).startswith("_") for k in config):
        return ""
    public = public_config(config)
    groups = public.get("instance_group") or []
    shape = sorted((int(g.get("count", 1) or 1), str(g.get("kind", ""))) for g in groups if isinstance(g, dict))
    return canonical_json({"instance_group": shape, "max_batch_size": int(public.get("max_batch_size", 0) or 0)})


def distance(wanted: Any, recorded: Any, top: bool = True) -> int | None:
    """How far a recorded config is from a wanted one: the number of values set on one side only (recursively);
    None when a value both set differs (instance groups and max_batch_size are compared by `knobs`)."""
    if isinstance(wanted, dict) and isinstance(recorded, dict):
        total = 0
        for key in wanted.keys() | recorded.keys():
            if top and key in ("instance_group", "max_batch_size"):
                continue
            if key not in recorded or key not in wanted:
                total += _leaves(wanted.get(key, recorded.get(key)))
                continue
            inner = distance(wanted[key], recorded[key], top=False)
            if inner is None:
                return None
            total += inner
        return total
    return 0 if wanted == recorded else None


def _leaves(value: Any) -> int:
    """The number of values in a config subtree (an empty block counts as one)."""
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values()) or 1
    return 1


def replay_key(run_config: RunConfig) -> Key:
    """What a replay matches on: model, variant config identity, load."""
    load = canonical_json(converter.unstructure(run_config.load))
    return run_config.model, config_identity(run_config.variant.config), load


def _path(config: ProfileConfig) -> Path:
    value = config.replay_results_db
    if not value:
        raise ConfigError("replay_results_db: required with triton_launch_mode replay; pass --replay-results-db "
                          "with a results DB (a profile's results.db or an imported checkpoint)")
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"replay_results_db: {path} does not exist; record a profile or import a Model Analyzer "
                          "checkpoint (modelyzer import-ma-checkpoint) first")
    return path


def _duration(config: ProfileConfig) -> float:
    duration = config.replay_duration
    if duration < 0:
        raise ConfigError(f"replay_duration: must be ≥ 0 seconds, got {duration:g}")
    return duration


def open_recording(path: Path) -> Store:
    """The recorded results DB; a one-line ConfigError when it is not a modelyzer results DB."""
    try:
        return Store.open_existing(path)
    except NotAResultsDB as err:
        raise ConfigError(f"replay_results_db: {path} is not a modelyzer results DB ({err})") from None


class Recording:
    """The measurements of one recorded results DB, indexed by `replay_key` (first successful one wins); a
    variant recorded with another config is found by its knobs (`match`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        store = open_recording(path)
        try:
            self.index: dict[Key, Measurement] = {}
            # (model, identity) → {(client batch size, load mode): recorded load values}
            self._loads: dict[tuple[str, str], dict[tuple[int, str], set[int]]] = {}
            # (model, knobs) → [(identity, public config)] in recorded order
            self._by_knobs: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
            self._batching: set[str] = set()  # models with a variant recorded with dynamic batching
            for result in store.results():
                status = result.measurement.status
                if status in (STATUS_NOT_RECORDED, "skipped"):
                    continue
                rc = result.run_config
                key = replay_key(rc)
                known = self.index.get(key)
                if known is None or (not known.ok and status == STATUS_OK):
                    self.index[key] = result.measurement
                self._note(rc, key[1])
            self.models = set(store.models())
        finally:
            store.close()
        self._aliases: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def _note(self, rc: RunConfig, identity: str) -> None:
        """Remember the variant's knobs and the load values recorded for it."""
        variant = (rc.model, identity)
        if variant not in self._loads:
            self._loads[variant] = {}
            knob = knobs(rc.variant.config)
            if knob:
                public = public_config(rc.variant.config)
                self._by_knobs.setdefault((rc.model, knob), []).append((identity, public))
                if "dynamic_batching" in public:
                    self._batching.add(rc.model)
        value = rc.load.value
        if isinstance(value, int) and not isinstance(value, bool):
            self._loads[variant].setdefault((rc.load.batch_size, rc.load.mode), set()).add(value)

    def match(self, model: str, config: dict[str, Any], identity: str | None = None) -> str | None:
        """The identity of the recorded variant that answers for `config` (whose `config_identity` is `identity`
        when known): the same config, else the closest one with the same knobs that agrees on every field both
        set (module docstring); None: not recorded."""
        identity = identity if identity is not None else config_identity(config)
        if (model, identity) in self._loads:
            return identity
        with self._lock:
            if (model, identity) in self._aliases:
                return self._aliases[(model, identity)]
            found = self._closest(model, config)
            self._aliases[(model, identity)] = found
            return found

    def _closest(self, model: str, config: dict[str, Any]) -> str | None:
        knob = knobs(config)
        if not knob:
            return None
        wanted = public_config(config)
        scored = []
        batching = "dynamic_batching" in wanted
        for order, (identity, recorded) in enumerate(self._by_knobs.get((model, knob), [])):
            if model in self._batching and ("dynamic_batching" in recorded) != batching:
                continue  # the recording varies dynamic batching: on or off is a knob
            d = distance(wanted, recorded)
            if d is not None:
                scored.append((d, order, identity))
        if not scored:
            return None
        scored.sort()
        if len(scored) > 1 and scored[1][0] == scored[0][0]:
            log.info("replay: %d recorded variants of %s match %s by its knobs equally well; answering with the "
                     "first recorded", sum(s[0] == scored[0][0] for s in scored), model, knob)
        return scored[0][2]

    def lookup(self, run_config: RunConfig) -> Measurement | None:
        model, identity, load = replay_key(run_config)
        found = self.index.get((model, identity, load))
        if found is not None:
            return found
        recorded = self.match(model, run_config.variant.config, identity)
        return None if recorded is None or recorded == identity else self.index.get((model, recorded, load))

    def recorded_loads(self, run_config: RunConfig) -> tuple[int, ...] | None:
        """The load values (ascending) recorded for `run_config`'s variant (exact or by its knobs), client batch
        size and load mode; () when the variant is not recorded; None for loads that are not numbers."""
        if run_config.load.mode == "request_intervals":
            return None
        recorded = self.match(run_config.model, run_config.variant.config)
        if recorded is None:
            return ()
        values = self._loads[(run_config.model, recorded)].get((run_config.load.batch_size, run_config.load.mode))
        return tuple(sorted(values or ()))


_RECORDINGS: dict[tuple[Any, ...], Recording] = {}
_RECORDINGS_LOCK = threading.Lock()


def recording_for(path: Path) -> Recording:
    """The indexed recording at `path`, built once per process (and again when the file changes).

    Slots of one agent share it: the index is read-only once built, and building it is the costly part.
    """
    try:
        st = path.stat()
        wal = path.with_name(path.name + "-wal")
        wst = wal.stat() if wal.exists() else None
        # SQLite WAL: writes land there before a checkpoint. An empty one comes and goes as readers (other
        # slots, other agents) open and close the file: it must not count as a change.
        wal_key = (wst.st_mtime_ns, wst.st_size) if wst is not None and wst.st_size > 0 else (0, 0)
        cache_key: tuple[Any, ...] | None = (str(path.resolve()), st.st_mtime_ns, st.st_size, *wal_key)
    except OSError:
        cache_key = None  # missing: Recording raises the usual error
    if cache_key is None:
        return Recording(path)
    with _RECORDINGS_LOCK:
        found = _RECORDINGS.get(cache_key)
        if found is None:
            for stale in [k for k in _RECORDINGS if k[0] == cache_key[0]]:
                del _RECORDINGS[stale]
            found = _RECORDINGS[cache_key] = Recording(path)
        return found


class ReplayLoadGenerator(LoadGenerator):
    """Answers each RunConfig with its recorded metrics (see the module docstring); brought by the replay
    launcher, never chosen for a model type."""

    model_types = frozenset()

    def __init__(self, config: ProfileConfig, context: RunContext,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.context = context
        self.sleep = sleep
        self.duration = _duration(config)
        self.last_window_seconds: float | None = None
        self._recording: Recording | None = None

    @property
    def recording(self) -> Recording:
        if self._recording is None:
            self._recording = recording_for(_path(self.config))
        return self._recording

    def command(self, run_config: RunConfig, endpoints: Endpoints) -> list[str]:
        return [MODE, str(self.recording.path), run_config.describe()]

    def recorded_loads(self, run_config: RunConfig) -> tuple[int, ...] | None:
        """The loads the recording answers for this RunConfig's variant and client batch size (None: the recording
        is not on this host — a controller whose agents replay it — so any load may be asked)."""
        try:
            recording = self.recording
        except ConfigError:
            return None
        return recording.recorded_loads(run_config)

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        recorded = self.recording.lookup(run_config)
        self.last_window_seconds = None
        if recorded is None:
            raise NotRecorded(f"not recorded in {self.recording.path}: {run_config.describe()}")
        if self.duration:
            self.sleep(self.duration)
        if not recorded.ok:
            raise LoadGeneratorError(f"recorded {recorded.status}: {recorded.error or 'no error text'}")
        self.last_window_seconds = recorded.window_seconds or self.duration or None
        return list(recorded.metrics)


class ReplayLauncher(Launcher):
    """Starts no server: checks the recording, counts model loads, serves every variant under its model name.

    It brings its own load generator (the recording answers), so nothing live is sampled, and its GPUs are the
    recorded ones.
    """

    serves_metrics = False
    server_only_window = False
    starts_server = False

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.server_starts = 0
        self.model_loads = 0
        self._loaded: dict[str, str] = {}
        self._load_generator: ReplayLoadGenerator | None = None

    def load_generator(self) -> LoadGenerator:
        if self._load_generator is None:
            self._load_generator = ReplayLoadGenerator(self.config, self.context)
        return self._load_generator

    def devices(self) -> list[GpuDevice]:
        """The recorded GPUs: a GPU recording is replayed with KIND_GPU variants, a CPU-only one with KIND_CPU."""
        store = open_recording(_path(self.config))
        try:
            rows = store.gpus()
        finally:
            store.close()
        return [
            GpuDevice(uuid=gpu.uuid, name=gpu.name, index=i, total_memory_mb=_mb(gpu.total_memory))
            for i, gpu in enumerate(rows)
        ]

    def start(self) -> None:
        """Check the settings and build the recording's index now (warm), not at the first measurement."""
        _duration(self.config)
        recording_for(_path(self.config))

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        identity = config_identity(variant.config)
        if self._loaded.get(variant.model) != identity:
            self._loaded[variant.model] = identity
            self.model_loads += 1
        return Endpoints(model_name=variant.model, protocol=self.config.client_protocol)

    def stop(self) -> None:
        self._loaded.clear()

    def writes_full_variant_dirs(self) -> bool:
        return False


def _mb(total_memory: Any) -> int:
    """MB of a `gpus.total_memory` value (the store keeps bytes)."""
    return int(int(total_memory or 0) / BYTES_PER_MB)


@hookimpl
def register_launchers(register: Any) -> None:
    register(MODE, ReplayLauncher)


@hookimpl
def register_load_generators(register: Any) -> None:
    register(MODE, ReplayLoadGenerator)

