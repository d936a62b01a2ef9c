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
`ConfigVariant.composing`), so its CSVs read like Model Analyzer's (`<variant>: <composing>, …`).

Models profiled concurrently (`--run-config-profile-models-concurrently-enable`: result key "a,b", one model run
config and one model config measurement per model) become one group: the model "a,b" (spec `group_spec` of
Model Analyzer's defaults, base config `_members`), each model's variants under their own names and models, the
group's variant "a_config_5,b_config_4" (`ConfigVariant.group`), and per measurement a `RunConfig.group` of the
models' RunConfigs (each with its own load and flags) whose metrics are each tag combined across the models, each
model's own as `tag@model` (`ma_measurements.group_metrics`), and the GPU records once.
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
from modelyzer.kernel.models import (
    COMPOSING_KEY,
    GROUP_SEP,
    MEMBERS_KEY,
    ConfigVariant,
    Measurement,
    Metric,
    ModelSpec,
    RunConfig,
    group_spec,
)
from modelyzer.kernel.store import Run, Store
from modelyzer.plugins.codecs.pbtxt import normalize
from modelyzer.plugins.importers.ma_config_shapes import ShapeError, model_config_source, mrc_path
from modelyzer.plugins.importers.ma_measurements import (
    BadCheckpoint,
    as_dict,
    group_metrics,
    load_spec,
    ma_token_value,
    user_pa_flags,
)

__all__ = ["CheckpointData", "ImportSummary", "import_checkpoint", "load_spec", "ma_token_value", "parse_checkpoint",
           "store_checkpoint", "user_pa_flags"]

RESULTS_KEY = "ResultManager.results"
COMPOSING = COMPOSING_KEY  # a top-level variant's composing models' variants (ensemble/BLS), in order
STATUS_IMPORTED = "imported"


@attrs.frozen
class CheckpointData:
    """A parsed checkpoint: everything the store needs, in checkpoint order."""

    path: Path
    sha256: str
    models: tuple[str, ...]  # the result keys: a model, or a concurrent group ("a,b")
    variants: tuple[ConfigVariant, ...]  # a group's: its models' variants, then the group's
    entries: tuple[tuple[RunConfig, Measurement], ...]
    server_only: tuple[Metric, ...]
    gpus: tuple[tuple[str, str, int], ...]
    base_configs: dict[str, dict[str, Any]]
    cpu_only: dict[str, bool]

    @property
    def configurations(self) -> int:
        """The variants measured: one model's, or a concurrent group's combinations (not their models')."""
        return sum(1 for v in self.variants if v.model in self.models)


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


_Bad = BadCheckpoint  # a structural problem of the checkpoint (turned into one ConfigError naming the file)


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


def _records(records: Any, what: str) -> Iterator[tuple[str, float]]:
    """`[[tag, {"_value": v, …}], …]` → (tag, v)."""
    if not isinstance(records, list):
        raise _Bad(f"malformed Model Analyzer checkpoint: {what} is not a list of records")
    for tag, record in records:
        yield str(tag), float(as_dict(record, f"{what} record {tag!r}")["_value"])


class _Parser:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        manager = state.get("ModelManager.model_variant_name_manager") or {}
        self.name_manager_configs = as_dict(manager.get("_model_config_dicts") or {}, "_model_config_dicts")

    def parse(self, path: Path, sha: str) -> CheckpointData:
        results = as_dict(as_dict(self.state[RESULTS_KEY], RESULTS_KEY).get("_results") or {}, "_results")
        variants: dict[str, ConfigVariant] = {}
        entries: list[tuple[RunConfig, Measurement]] = []
        cpu_only: dict[str, bool] = {}
        for models_name, by_variant in results.items():
            models = tuple(models_name.split(GROUP_SEP))
            for variant_name, pair in as_dict(by_variant, f"results of {models_name}").items():
                run_config, measurements = pair
                mrcs = self._model_run_configs(run_config, variant_name, models)
                own = tuple(self._variant(models_name, variant_name, mrc, i, models) for i, mrc in enumerate(mrcs))
                for model, variant in zip(models, own, strict=True):
                    variants.setdefault(variant.name, variant)
                    cpu_only[model] = cpu_only.get(model, False) or bool(variant.config.get("_cpu_only"))
                variant = own[0] if len(own) == 1 else ConfigVariant.group(own)
                variants.setdefault(variant.name, variant)
                flags = tuple(user_pa_flags(as_dict(mrc.get("_perf_config") or {}, "_perf_config")) for mrc in mrcs)
                env = {str(k): str(v) for k, v in (run_config.get("_triton_env") or {}).items()}
                for rcm in as_dict(measurements, f"measurements of {variant_name}").values():
                    entries.append(self._entry(own, flags, env, as_dict(rcm, "measurement")))
        base_configs = self._base_configs(variants.values())
        for models_name in results:
            if GROUP_SEP in models_name:
                base_configs[models_name] = {MEMBERS_KEY: [{"model": m, "config": base_configs.get(m, {})}
                                                           for m in models_name.split(GROUP_SEP)]}
        named = {v.name: attrs.evolve(v, params=_params(v.config, base_configs.get(v.model)))
                 for v in variants.values()}
        return CheckpointData(
            path=path,
            sha256=sha,
            models=tuple(results),
            variants=tuple(named.values()),
            entries=tuple((_renamed(rc, named), m) for rc, m in entries),
            server_only=self._server_only(),
            gpus=self._gpus(),
            base_configs=base_configs,
            cpu_only=cpu_only,
        )

    @staticmethod
    def _model_run_configs(run_config: Any, variant_name: str, models: tuple[str, ...]) -> list[dict[str, Any]]:
        """The RunConfig's model run configs, one per model of the result key, in its order."""
        mrcs = as_dict(run_config, f"RunConfig of {variant_name}").get("_model_run_configs") or []
        if not mrcs:
            raise _Bad(f"malformed Model Analyzer checkpoint: the RunConfig of {variant_name} has no model")
        if len(mrcs) != len(models):
            raise _Bad(f"{variant_name}: its RunConfig has {len(mrcs)} model(s), its result key names "
                       f"{len(models)} ({GROUP_SEP.join(models)})")
        out = []
        for i, (model, mrc) in enumerate(zip(models, mrcs, strict=True)):
            mrc = as_dict(mrc, f"model RunConfig {i} of {variant_name}")
            if mrc.get("_model_name") not in (None, model):
                raise _Bad(f"{variant_name}: model RunConfig {i} is of {mrc['_model_name']!r}, the result key "
                           f"names {model!r} there")
            out.append(mrc)
        return out

    def _variant(self, models_name: str, variants_name: str, mrc: dict[str, Any], index: int,
                 models: tuple[str, ...]) -> ConfigVariant:
        """The variant of model run config `index` of a RunConfig (of `models`, result key `variants_name`)."""
        model = models[index]
        where = mrc_path(models_name, variants_name, index)
        try:
            source = model_config_source(mrc, model, variants_name, where, self.name_manager_configs, index,
                                         len(models))
        except ShapeError as err:
            raise _Bad(str(err)) from None
        name = source.variant_name
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
        holder = as_dict(holder, where)
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

    def _entry(self, variants: tuple[ConfigVariant, ...], flags: tuple[dict[str, Any], ...], env: dict[str, str],
               rcm: dict[str, Any]) -> tuple[RunConfig, Measurement]:
        """One measurement: a RunConfig (a concurrent group's of its models' RunConfigs) and its metrics (see
        `group_metrics` for a group's)."""
        where = ",".join(v.name for v in variants)
        mcms = rcm.get("_model_config_measurements") or []
        if len(mcms) != len(variants):
            raise _Bad(f"{where}: a measurement of {len(mcms)} model(s), its RunConfig has {len(variants)}")
        members, own = [], []
        for variant, pa_flags, mcm in zip(variants, flags, mcms, strict=True):
            mcm = as_dict(mcm, "model config measurement")
            load = load_spec(as_dict(mcm.get("_model_specific_pa_params") or {}, "_model_specific_pa_params"))
            members.append(RunConfig(model=variant.model, variant=variant, load=load, perf_analyzer_flags=pa_flags,
                                     server_env=env))
            own.append([(tag, ma_token_value(tag, value))
                        for tag, value in _records(mcm.get("_non_gpu_data") or [], "_non_gpu_data")])
        gpu = [Metric(tag, value, str(uuid))
               for uuid, records in as_dict(rcm.get("_gpu_data") or {}, "_gpu_data").items()
               for tag, value in _records(records, f"_gpu_data of {uuid}")]
        if len(members) == 1:
            rc = members[0]
            non_gpu = [Metric(tag, value) for tag, value in own[0]]
        else:
            rc = RunConfig.group(tuple(members))
            non_gpu = group_metrics([(m.model, values) for m, values in zip(members, own, strict=True)])
        return rc, Measurement(rc.key, metrics=tuple(non_gpu + gpu))

    def _server_only(self) -> tuple[Metric, ...]:
        data = as_dict(self.state.get("ResultManager.server_only_data") or {}, "server_only_data")
        return tuple(
            Metric(tag, value, str(uuid))
            for uuid, records in data.items()
            for tag, value in _records(records, f"server_only_data of {uuid}")
        )

    def _gpus(self) -> tuple[tuple[str, str, int], ...]:
        gpus = as_dict(self.state.get("MetricsManager.gpus") or {}, "MetricsManager.gpus")
        return tuple(
            (str(uuid), str(as_dict(info, f"GPU {uuid}").get("name", "")), int(info.get("total_memory") or 0))
            for uuid, info in gpus.items()
        )

    @staticmethod
    def _base_configs(variants: Any) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for v in variants:
            if v.is_default and not v.members:
                out.setdefault(v.model, {k: x for k, x in v.config.items() if not k.startswith("_")})
        return out


def _renamed(rc: RunConfig, named: dict[str, ConfigVariant]) -> RunConfig:
    """`rc` with its variants (and its members') replaced by their final (`params`-carrying) versions."""
    members = tuple(_renamed(m, named) for m in rc.members)
    return attrs.evolve(rc, variant=named[rc.variant.name], members=members)


def _params(config: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """The knobs of a variant for reports: top-level fields that differ from the model's default config."""
    if base is None:
        return {}
    return {k: v for k, v in config.items() if not k.startswith("_") and base.get(k) != v}


def imported_spec(model: str, cpu_only: dict[str, bool]) -> dict[str, Any]:
    """The stored spec of an imported model: Model Analyzer's defaults (a checkpoint keeps no objectives or
    constraints), CPU-only as measured; a concurrent group's is `group_spec` of its models'."""
    if GROUP_SEP not in model:
        return {"name": model, "cpu_only": cpu_only.get(model, False)}
    members = tuple(ModelSpec(name=m, cpu_only=cpu_only.get(m, False)) for m in model.split(GROUP_SEP))
    return attrs.asdict(group_spec(members))


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
    models = data.models
    found = _imported_run(store, data.sha256)
    if found is not None and found.status == STATUS_IMPORTED:
        return ImportSummary(found.id, models, data.configurations, 0, 0, len(data.gpus), already_imported=True)
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
            store.upsert_model(model, data.base_configs.get(model, {}),
                               {**imported_spec(model, data.cpu_only), "imported_from": str(data.path)})
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
    return ImportSummary(run_id, models, data.configurations, stored, existing, len(data.gpus), already_imported=False)
