"""Import of Model Analyzer checkpoints (`<N>.ckpt`, facts §6) into the results store.

A checkpoint becomes one run with status `imported`:

- each variant (`<model>_config_default`, `<model>_config_<N>`) keeps Model Analyzer's name and gets the model
  config its RunConfig served (`_model_config_variant.model_config`, camelCase, int64 as strings; or, in the
  older format of Model Analyzer's experiment data, `_model_config` with `cpu_only` inside and no variant name:
  see `ma_config_shapes`, a file may mix both), normalized by the pbtxt codec; `cpu_only` is kept as the
  private `_cpu_only` annotation (instance-group display);
  `params` are the top-level fields that differ from the default config;
- each measurement becomes a RunConfig (model, variant, the LoadSpec of `_model_specific_pa_params`, the
  perf_analyzer flags the user added — the PA config minus what Model Analyzer/modelyzer generate itself — and
  `_triton_env` as server environment) with its metrics: non-GPU records, and GPU records per UUID;
- LLM checkpoints (genai-perf) have the same shape; their token latencies, which Model Analyzer stores as
  genai-perf's nanoseconds ÷ 1000 labelled ms (so µs), are divided by 1000 into real ms;
- server-only records go to `server_only_metrics`, `MetricsManager.gpus` to `gpus`, and the default config of
  each model to `models.base_config`.

Everything is parsed before anything is written, so a bad file leaves the DB untouched, and the run is found
again by the file's SHA-256: importing the same checkpoint twice changes nothing. Measurements are stored in
checkpoint order (variants in the order of `ResultManager.results`, measurements in each variant's order), the
insertion order Model Analyzer's ranking starts from. An ensemble's or BLS model's composing variants
(`_composing_config_variants`) are kept on the top-level variant (the `_composing` annotation, see
`ConfigVariant.composing`), so its CSVs read like Model Analyzer's (`<variant>: <composing>, …`). Concurrent
multi-model measurements have no place in the single-model RunConfig yet and are refused with a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.models import COMPOSING_KEY, ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.kernel.store import Run, Store
from modelyzer.plugins.codecs.pbtxt import normalize
from modelyzer.plugins.importers.ma_config_shapes import ShapeError, model_config_source, mrc_path

RESULTS_KEY = "ResultManager.results"
COMPOSING = COMPOSING_KEY  # a top-level variant's composing models' variants (ensemble/BLS), in order
STATUS_IMPORTED = "imported"
#: perf_analyzer arguments that modelyzer generates itself (the load, the CSV, the endpoint, metrics collection)
GENERATED_PA_ARGS = frozenset(
    {
        "model-name", "batch-size", "url", "protocol", "latency-report-file", "verbose-csv",
        "concurrency-range", "request-rate-range", "request-intervals", "measurement-request-count",
        "collect-metrics", "metrics-url", "metrics-interval",
    }
)
DEFAULT_PA_VALUES = {"measurement-mode": "count_windows"}


@attrs.frozen
class CheckpointData:
    """A parsed checkpoint: everything the store needs, in checkpoint order."""

    path: Path
    sha256: str
    variants: tuple[ConfigVariant, ...]
    entries: tuple[tuple[RunConfig, Measurement], ...]
    server_only: tuple[Metric, ...]
    gpus: tuple[tuple[str, str, int], ...]
    base_configs: dict[str, dict[str, Any]]
    cpu_only: dict[str, bool]


@attrs.frozen
class ImportSummary:
    """What an import did: the run it created (or found), and how much it stored."""

    run_id: int
    models: tuple[str, ...]
    variants: int
    measurements: int
    existing: int
    gpus: int
    already_imported: bool


class _Bad(Exception):
    """A structural problem of the checkpoint (turned into one ConfigError naming the file)."""


def find_checkpoint(path: Path) -> Path:
    """`path` itself, or for a checkpoint directory its highest-numbered `<N>.ckpt` (what MA loads)."""
    path = Path(path)
    if not path.is_dir():
        return path
    numbered = [(int(p.stem), p) for p in path.glob("*.ckpt") if re.fullmatch(r"\d+", p.stem)]
    if not numbered:
        raise ConfigError(f"{path}: no Model Analyzer checkpoint (<N>.ckpt) in this directory")
    return max(numbered)[1]


def read_checkpoint(path: Path) -> tuple[dict[str, Any], str]:
    """The checkpoint's JSON state and the SHA-256 of its bytes; ConfigError naming the file otherwise."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: checkpoint file does not exist") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read checkpoint: {err.strerror or err}") from None
    try:
        state = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        reason = f"line {err.lineno}: {err.msg}" if isinstance(err, json.JSONDecodeError) else type(err).__name__
        raise ConfigError(f"{path}: not a Model Analyzer checkpoint (invalid JSON, {reason})") from None
    if not isinstance(state, dict) or not isinstance(state.get(RESULTS_KEY), dict):
        raise ConfigError(f"{path}: not a Model Analyzer checkpoint (no {RESULTS_KEY!r} object)")
    return state, hashlib.sha256(raw).hexdigest()


def parse_checkpoint(path: Path) -> CheckpointData:
    """Read and parse a checkpoint file (or directory); one-line ConfigError for anything malformed."""
    path = find_checkpoint(path)
    state, sha = read_checkpoint(path)
    try:
        return _Parser(state).parse(path, sha)
    except _Bad as err:
        raise ConfigError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise ConfigError(f"{path}: malformed Model Analyzer checkpoint ({type(err).__name__}: {err})") from None


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"malformed Model Analyzer checkpoint: {what} is not an object")
    return value


def _records(records: Any, what: str) -> Iterator[tuple[str, float]]:
    """`[[tag, {"_value": v, …}], …]` → (tag, v)."""
    if not isinstance(records, list):
        raise _Bad(f"malformed Model Analyzer checkpoint: {what} is not a list of records")
    for tag, record in records:
        yield str(tag), float(_as_dict(record, f"{what} record {tag!r}")["_value"])


#: Model Analyzer's token latencies: genai-perf's nanoseconds divided by 1000 and labelled ms (facts §4: they are µs)
MA_MICROSECOND_TAGS = ("time_to_first_token_", "inter_token_latency_")


def ma_token_value(tag: str, value: float) -> float:
    """A non-GPU record's value in modelyzer's unit: Model Analyzer's token latencies (µs labelled ms) become ms."""
    return value / 1000.0 if tag.startswith(MA_MICROSECOND_TAGS) else value


def load_spec(params: dict[str, Any]) -> LoadSpec:
    """The LoadSpec of `_model_specific_pa_params` (batch-size and one of the three load kinds)."""
    batch = int(params.get("batch-size") or 1)
    if params.get("request-intervals"):
        return LoadSpec(batch_size=batch, request_intervals=str(params["request-intervals"]))
    if params.get("request-rate-range") is not None:
        return LoadSpec(batch_size=batch, request_rate=int(params["request-rate-range"]))
    if params.get("concurrency-range") is not None:
        return LoadSpec(batch_size=batch, concurrency=int(params["concurrency-range"]))
    raise _Bad("a measurement has no concurrency-range, request-rate-range or request-intervals")


def user_pa_flags(perf_config: dict[str, Any]) -> dict[str, Any]:
    """The perf_analyzer flags a user added, from MA's PA config (`_args`, `_options`, `_verbose`).

    Dropped: what modelyzer generates itself for every measurement (model, batch size, endpoint, protocol, CSV,
    `--verbose-csv`, the load, `--collect-metrics` and its URL/interval, MA's auto-adjusted request count) and
    `measurement-mode` at its default. So `perf_analyzer_args.measurement_key()` of the imported RunConfig is
    Model Analyzer's measurement key again.
    """
    flags: dict[str, Any] = {}
    options = _as_dict(perf_config.get("_options") or {}, "_options")
    names = {v: k for k, v in (perf_config.get("_input_to_options") or {}).items()}
    for option, value in options.items():
        key = names.get(option, option.lstrip("-"))
        if value is not None and key not in GENERATED_PA_ARGS:
            flags[key] = value
    verbose = {v: k for k, v in (perf_config.get("_input_to_verbose") or {}).items()}
    for option, value in (perf_config.get("_verbose") or {}).items():
        key = verbose.get(option, option.lstrip("-"))
        if value and key not in GENERATED_PA_ARGS:
            flags[key] = True
    for key, value in _as_dict(perf_config.get("_args") or {}, "_args").items():
        if value is None or key in GENERATED_PA_ARGS or DEFAULT_PA_VALUES.get(key) == value:
            continue
        flags[key] = value
    return flags


class _Parser:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        manager = state.get("ModelManager.model_variant_name_manager") or {}
        self.name_manager_configs = _as_dict(manager.get("_model_config_dicts") or {}, "_model_config_dicts")

    def parse(self, path: Path, sha: str) -> CheckpointData:
        results = _as_dict(_as_dict(self.state[RESULTS_KEY], RESULTS_KEY).get("_results") or {}, "_results")
        variants: dict[str, ConfigVariant] = {}
        entries: list[tuple[RunConfig, Measurement]] = []
        cpu_only: dict[str, bool] = {}
        for models_name, by_variant in results.items():
            if "," in models_name:
                raise _Bad(f"concurrent multi-model results ({models_name}) cannot be imported yet; "
                           "import checkpoints of single-model profiles")
            for variant_name, pair in _as_dict(by_variant, f"results of {models_name}").items():
                run_config, measurements = pair
                mrc = self._model_run_config(run_config, variant_name)
                variant = self._variant(models_name, variant_name, mrc)
                variants.setdefault(variant_name, variant)
                cpu_only[models_name] = cpu_only.get(models_name, False) or bool(variant.config.get("_cpu_only"))
                flags = user_pa_flags(_as_dict(mrc.get("_perf_config") or {}, "_perf_config"))
                env = {str(k): str(v) for k, v in (run_config.get("_triton_env") or {}).items()}
                for rcm in _as_dict(measurements, f"measurements of {variant_name}").values():
                    entries.append(self._entry(models_name, variant, flags, env, _as_dict(rcm, "measurement")))
        base_configs = self._base_configs(variants.values())
        named = tuple(attrs.evolve(v, params=_params(v.config, base_configs.get(v.model))) for v in variants.values())
        by_name = {v.name: v for v in named}
        entries = [(attrs.evolve(rc, variant=by_name[rc.variant.name]), m) for rc, m in entries]
        return CheckpointData(
            path=path,
            sha256=sha,
            variants=named,
            entries=tuple(entries),
            server_only=self._server_only(),
            gpus=self._gpus(),
            base_configs=base_configs,
            cpu_only=cpu_only,
        )

    @staticmethod
    def _model_run_config(run_config: Any, variant_name: str) -> dict[str, Any]:
        mrcs = _as_dict(run_config, f"RunConfig of {variant_name}").get("_model_run_configs") or []
        if not mrcs:
            raise _Bad(f"malformed Model Analyzer checkpoint: the RunConfig of {variant_name} has no model")
        if len(mrcs) > 1:
            raise _Bad(f"{variant_name}: a RunConfig of {len(mrcs)} models cannot be imported yet")
        return _as_dict(mrcs[0], f"model RunConfig of {variant_name}")

    def _variant(self, model: str, name: str, mrc: dict[str, Any]) -> ConfigVariant:
        try:
            source = model_config_source(mrc, model, name, mrc_path(model, name), self.name_manager_configs)
        except ShapeError as err:
            raise _Bad(str(err)) from None
        try:
            normal = normalize(source.config)
        except ConfigError as err:
            raise _Bad(f"{name}: {err}") from None
        if source.cpu_only:
            normal["_cpu_only"] = True
        composing = [self._composing(c, name, i) for i, c in enumerate(mrc.get("_composing_config_variants") or [])]
        if composing:
            normal[COMPOSING] = composing
        return ConfigVariant(model=model, config=normal, is_default=name.endswith("_config_default"), name=name)

    @staticmethod
    def _composing(holder: Any, name: str, index: int) -> dict[str, Any]:
        """One composing model's variant of an ensemble/BLS RunConfig: its name, model and normalised config."""
        where = f"{name}: _composing_config_variants[{index}]"
        holder = _as_dict(holder, where)
        config = holder.get("model_config")
        if not isinstance(config, dict):
            raise _Bad(f"{where} has no model_config")
        try:
            normal = normalize(config)
        except ConfigError as err:
            raise _Bad(f"{where}: {err}") from None
        if holder.get("cpu_only"):
            normal["_cpu_only"] = True
        return {"name": str(holder.get("variant_name") or ""), "model": str(normal.get("name") or ""),
                "config": normal}

    def _entry(
        self, model: str, variant: ConfigVariant, flags: dict[str, Any], env: dict[str, str], rcm: dict[str, Any]
    ) -> tuple[RunConfig, Measurement]:
        mcms = rcm.get("_model_config_measurements") or []
        if len(mcms) != 1:
            raise _Bad(f"{variant.name}: a measurement of {len(mcms)} models cannot be imported yet")
        mcm = _as_dict(mcms[0], "model config measurement")
        load = load_spec(_as_dict(mcm.get("_model_specific_pa_params") or {}, "_model_specific_pa_params"))
        metrics = [Metric(tag, ma_token_value(tag, value))
                   for tag, value in _records(mcm.get("_non_gpu_data") or [], "_non_gpu_data")]
        for uuid, records in _as_dict(rcm.get("_gpu_data") or {}, "_gpu_data").items():
            metrics += [Metric(tag, value, str(uuid)) for tag, value in _records(records, f"_gpu_data of {uuid}")]
        rc = RunConfig(model=model, variant=variant, load=load, perf_analyzer_flags=flags, server_env=env)
        return rc, Measurement(rc.key, metrics=tuple(metrics))

    def _server_only(self) -> tuple[Metric, ...]:
        data = _as_dict(self.state.get("ResultManager.server_only_data") or {}, "server_only_data")
        return tuple(
            Metric(tag, value, str(uuid))
            for uuid, records in data.items()
            for tag, value in _records(records, f"server_only_data of {uuid}")
        )

    def _gpus(self) -> tuple[tuple[str, str, int], ...]:
        gpus = _as_dict(self.state.get("MetricsManager.gpus") or {}, "MetricsManager.gpus")
        return tuple(
            (str(uuid), str(_as_dict(info, f"GPU {uuid}").get("name", "")), int(info.get("total_memory") or 0))
            for uuid, info in gpus.items()
        )

    @staticmethod
    def _base_configs(variants: Any) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for v in variants:
            if v.is_default:
                out.setdefault(v.model, {k: x for k, x in v.config.items() if not k.startswith("_")})
        return out


def _params(config: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """The knobs of a variant for reports: top-level fields that differ from the model's default config."""
    if base is None:
        return {}
    return {k: v for k, v in config.items() if not k.startswith("_") and base.get(k) != v}


# --- writing ------------------------------------------------------------------------------------------
def _imported_run(store: Store, sha: str) -> Run | None:
    runs = store.find_runs("ma_checkpoint.sha256", sha)
    return runs[-1] if runs else None


def _check_variants(store: Store, data: CheckpointData) -> None:
    """Refuse (before writing anything) variants whose MA name or config is taken by a different variant."""
    for v in data.variants:
        found = store.find_variant(name=v.name)
        if found is not None and found.config_hash != v.config_hash:
            raise ConfigError(f"{data.path}: variant {v.name} has a different model config in {store.path}; "
                              "import into a new results DB (--results-db)")
        found = store.find_variant(config_hash=v.config_hash)
        if found is not None and found.name != v.name:
            raise ConfigError(f"{data.path}: variant {v.name} has the same model config as {found.name} in "
                              f"{store.path}; import into a new results DB (--results-db)")


def import_checkpoint(path: Path, store: Store) -> ImportSummary:
    """Import a Model Analyzer checkpoint into `store` as one `imported` run (idempotent; see module doc)."""
    return store_checkpoint(parse_checkpoint(path), store)


def store_checkpoint(data: CheckpointData, store: Store) -> ImportSummary:
    """Write a parsed checkpoint into `store` (nothing when this file was imported before)."""
    models = tuple(dict.fromkeys(v.model for v in data.variants))
    found = _imported_run(store, data.sha256)
    if found is not None and found.status == STATUS_IMPORTED:
        return ImportSummary(found.id, models, len(data.variants), 0, 0, len(data.gpus), already_imported=True)
    _check_variants(store, data)
    if found is not None:  # an import that was interrupted: finish it in the same run
        run_id = found.id
    else:
        run_id = store.start_run(
            {"ma_checkpoint": {"path": str(data.path.resolve()), "sha256": data.sha256, "models": list(models)}}
        )
    known = set(store.models())
    for model in models:
        if model not in known:
            spec = {"name": model, "cpu_only": data.cpu_only.get(model, False), "imported_from": str(data.path)}
            store.upsert_model(model, data.base_configs.get(model, {}), spec)
    for variant in data.variants:  # under Model Analyzer's names (Store.name_variant would number them itself)
        store.add_variant(variant)
    stored = existing = 0
    for rc, measurement in data.entries:
        if store.record(run_id, rc, measurement):
            stored += 1
        else:
            existing += 1
    for uuid, name, total in data.gpus:
        store.record_gpu(uuid, name, total)
    store.record_server_only(run_id, data.server_only, once=True)
    store.update_run(run_id, status=STATUS_IMPORTED, finished_at=time.time(), measured=stored, skipped=existing)
    return ImportSummary(run_id, models, len(data.variants), stored, existing, len(data.gpus), already_imported=False)
