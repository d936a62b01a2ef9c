"""Value types that cross module boundaries: what is profiled, what is run, what was measured.

Everything here is an attrs frozen class; `converter` (one cattrs Converter) turns them into JSON-able
structures for the results store and the wire. A RunConfig's `key` is the hash of its canonical JSON, so
the same experiment always has the same key (resume, exactly-once storage).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs
import cattrs

converter = cattrs.Converter()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every stable hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def _frozen_dict(value: dict[str, Any] | None) -> dict[str, Any]:
    return dict(value or {})


@attrs.frozen
class Objective:
    """One weighted ranking objective (metric tag, relative weight)."""

    tag: str
    weight: float = 10.0


@attrs.frozen
class Constraint:
    """A bound on one metric: `min` for higher-is-better metrics, `max` for lower-is-better ones."""

    tag: str
    min: float | None = None
    max: float | None = None


#: Model Analyzer's default objective: maximize throughput
DEFAULT_OBJECTIVES: tuple[Objective, ...] = (Objective("perf_throughput", 10.0),)
#: the default for `model_type: LLM`: output tokens per second (what an LLM deployment is sized by)
LLM_OBJECTIVES: tuple[Objective, ...] = (Objective("output_token_throughput", 10.0),)

@attrs.frozen
class ModelSpec:
    """One model to profile, with every per-model setting already resolved against the global config."""

    name: str
    model_path: str = ""
    cpu_only: bool = False
    batch_sizes: tuple[int, ...] = (1,)
    concurrency: tuple[int, ...] = ()
    request_rate: tuple[int, ...] = ()
    model_config_parameters: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    objectives: tuple[Objective, ...] = DEFAULT_OBJECTIVES
    constraints: tuple[Constraint, ...] = ()
    weighting: float = 1.0
    perf_analyzer_flags: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    genai_perf_flags: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    triton_server_flags: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    triton_server_environment: dict[str, str] = attrs.field(factory=dict, converter=_frozen_dict)
    triton_docker_args: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    #: the model-config fields the automatic search may vary (the launcher's `tuned_fields`); None: all
    tuned_fields: tuple[str, ...] | None = None
    #: the CPU execution accelerators the server runs (the launcher's `cpu_accelerators`): the automatic search's
    #: `accelerator` choices of an ONNX model
    cpu_accelerators: tuple[str, ...] = ()
    #: a concurrent group's models, profiled at once (`run_config_profile_models_concurrently_enable`); its name
    #: is theirs joined by "," and its objectives/constraints are theirs on per-model tags (`group_spec`)
    members: tuple[ModelSpec, ...] = ()
    #: the composing models whose own variants are searched with this one: an ensemble's steps, a BLS model's
    #: `bls_composing_models` (each with its `ensemble_composing_models`/`bls_composing_models` settings)
    composing: tuple[ModelSpec, ...] = ()

    def tunes(self, field: str) -> bool:
        """Whether the automatic search may vary `field` (e.g. "instance_group", "max_batch_size")."""
        return self.tuned_fields is None or field in self.tuned_fields


#: the private config annotation holding a top-level variant's composing variants (see ConfigVariant.composing)
COMPOSING_KEY = "_composing"
#: the private config annotation of a concurrent group's variant: its models' variants (ConfigVariant.members)
MEMBERS_KEY = "_members"
#: joins the model (and variant) names of a concurrent group: "resnet,vgg", as Model Analyzer keys them
GROUP_SEP = ","


def _member_tag(tag: str, model: str) -> str:
    return f"{tag}@{model}"  # kernel.metrics.model_tag (models.py stays free of the registry)


def group_spec(members: tuple[ModelSpec, ...]) -> ModelSpec:
    """The ModelSpec of models profiled concurrently: name "a,b"; each model's objectives and constraints on
    its own per-model values (`tag@model`), objective weights normalised per model and scaled by the model's
    normalised `weighting` — so the weighted score is Model Analyzer's Σ_m mw_m · S_m."""
    total = sum(m.weighting for m in members) or 1.0
    objectives: list[Objective] = []
    constraints: list[Constraint] = []
    for m in members:
        own = sum(o.weight for o in m.objectives) or 1.0
        objectives += [Objective(_member_tag(o.tag, m.name), o.weight / own * m.weighting / total) for o in m.objectives]
        constraints += [attrs.evolve(c, tag=_member_tag(c.tag, m.name)) for c in m.constraints]
    return ModelSpec(name=GROUP_SEP.join(m.name for m in members), cpu_only=all(m.cpu_only for m in members),
                     objectives=tuple(objectives), constraints=tuple(constraints), members=members)


@attrs.frozen
class ConfigVariant:
    """A model config to serve: the full config dict (Triton ModelConfig fields, snake_case) and its name.

    `name` is assigned by the engine/store (`<model>_config_default`, `<model>_config_N`); strategies leave
    it empty. `params` are the knobs that produced it (for reports), `config` is the complete result.
    """

    model: str
    config: dict[str, Any] = attrs.field(converter=_frozen_dict)
    params: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    is_default: bool = False
    name: str = ""

    @property
    def config_hash(self) -> str:
        return stable_hash({"model": self.model, "config": self.config})

    def named(self, name: str) -> ConfigVariant:
        return attrs.evolve(self, name=name)

    # knobs used by strategies, launchers and reports ---------------------------------------------
    @property
    def max_batch_size(self) -> int:
        return int(self.config.get("max_batch_size", 0) or 0)

    @property
    def instance_count(self) -> int:
        groups = self.config.get("instance_group") or []
        return sum(int(g.get("count", 1) or 1) for g in groups) if groups else 1

    @property
    def instance_kind(self) -> str:
        groups = self.config.get("instance_group") or []
        return str(groups[0].get("kind", "KIND_GPU")) if groups else "KIND_AUTO"

    @property
    def dynamic_batching(self) -> bool:
        return "dynamic_batching" in self.config

    @property
    def composing(self) -> tuple[ConfigVariant, ...]:
        """The composing models' variants served with this one (an ensemble's or a BLS model's; private
        `_composing` annotation: `[{name, model, config}]`, in step order); () for a plain model."""
        return tuple(
            ConfigVariant(model=str(c.get("model") or ""), config=dict(c.get("config") or {}), name=str(c.get("name") or ""),
                          is_default=bool(c.get("is_default")) or str(c.get("name") or "").endswith("_config_default"))
            for c in self.config.get(COMPOSING_KEY) or ()
        )

    def with_composing(self, composing: tuple[ConfigVariant, ...]) -> ConfigVariant:
        """This variant serving `composing` (its composing models' variants, in step order); the default when
        it and they all are."""
        entries = [{"model": v.model, "name": v.name, "config": v.config, "is_default": v.is_default} for v in composing]
        return attrs.evolve(self, config={**self.config, COMPOSING_KEY: entries},
                            is_default=self.is_default and all(v.is_default for v in composing))

    @property
    def members(self) -> tuple[ConfigVariant, ...]:
        """A concurrent group's variants, one per model in the group's order (private `_members` annotation:
        `[{name, model, config}]`); () for one model's variant."""
        return tuple(
            ConfigVariant(model=str(c.get("model") or ""), config=dict(c.get("config") or {}), name=str(c.get("name") or ""),
                          is_default=bool(c.get("is_default")))
            for c in self.config.get(MEMBERS_KEY) or ()
        )

    @classmethod
    def group(cls, members: tuple[ConfigVariant, ...]) -> ConfigVariant:
        """The variant of a concurrent group: its models' variants together; named "a_config_1,b_config_default"
        once they all are named."""
        entries = [{"model": v.model, "name": v.name, "config": v.config, "is_default": v.is_default} for v in members]
        return cls(
            model=GROUP_SEP.join(v.model for v in members),
            config={MEMBERS_KEY: entries},
            is_default=all(v.is_default for v in members),
            name=GROUP_SEP.join(v.name for v in members) if all(v.name for v in members) else "",
        )

    def instance_group_str(self, cpu_only: bool = False) -> str:
        """Model Analyzer's CSV form: `<count>:<KIND>` joined by ` + `; a config without groups runs one instance,
        on the CPU for a CPU-only model."""
        groups = self.config.get("instance_group") or []
        if not groups:
            return "1:" + ("CPU" if cpu_only or self.config.get("_cpu_only") else "GPU")
        parts = []
        for g in groups:
            kind = str(g.get("kind", "KIND_GPU")).replace("KIND_", "")
            parts.append(f"{int(g.get('count', 1) or 1)}:{kind}")
        return " + ".join(parts)


@attrs.frozen
class LoadSpec:
    """The load of one measurement: client batch size and exactly one of concurrency / request rate / intervals."""

    batch_size: int = 1
    concurrency: int | None = None
    request_rate: int | None = None
    request_intervals: str | None = None
    #: the load generator's workload of this measurement (e.g. LLM input/output tokens; see
    #: `LoadGenerator.workloads`): each combination is measured and reported on its own; {} for none
    workload: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)

    @property
    def mode(self) -> str:
        if self.request_intervals:
            return "request_intervals"
        if self.request_rate is not None:
            return "request_rate"
        return "concurrency"

    @property
    def value(self) -> int | str | None:
        if self.request_intervals:
            return self.request_intervals
        if self.request_rate is not None:
            return self.request_rate
        return self.concurrency

    def describe(self) -> str:
        name = {"concurrency": "concurrency", "request_rate": "rate", "request_intervals": "intervals"}[self.mode]
        text = f"{name} {self.value}"
        text = text if self.batch_size == 1 else f"batch {self.batch_size}, {text}"
        return text + "".join(f", {k} {v}" for k, v in self.workload.items())


@attrs.frozen
class RunConfig:
    """One experiment: a model config variant under one load, with the server flags/env it needs."""

    model: str
    variant: ConfigVariant
    load: LoadSpec
    perf_analyzer_flags: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    server_flags: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    server_env: dict[str, str] = attrs.field(factory=dict, converter=_frozen_dict)
    #: a concurrent group's RunConfigs, one per model, measured at once (their load generators together);
    #: `variant` is then `ConfigVariant.group` of theirs and `load` carries only the shared workload
    members: tuple[RunConfig, ...] = ()

    @classmethod
    def group(cls, members: tuple[RunConfig, ...]) -> RunConfig:
        """One experiment of models profiled concurrently (server flags/env are the first model's: one server)."""
        first = members[0]
        return cls(
            model=GROUP_SEP.join(m.model for m in members),
            variant=ConfigVariant.group(tuple(m.variant for m in members)),
            load=LoadSpec(workload=first.load.workload),
            server_flags=first.server_flags,
            server_env=first.server_env,
            members=members,
        )

    @property
    def key(self) -> str:
        """Stable identity: hash of the variant's config, the load, flags and env (not the variant name); a
        group's is the hash of its members' keys."""
        if self.members:
            return stable_hash({"members": [m.key for m in self.members]})
        return stable_hash(
            {
                "model": self.model,
                "config": self.variant.config,
                "load": self.load_key(),
                "pa": self.perf_analyzer_flags,
                "flags": self.server_flags,
                "env": self.server_env,
            }
        )

    def load_key(self) -> dict[str, Any]:
        """The load's part of the key (without an empty workload: keys of workload-less loads never change)."""
        load: dict[str, Any] = converter.unstructure(self.load)
        if not load.get("workload"):
            load.pop("workload", None)
        return load

    def describe(self) -> str:
        if self.members:
            return " + ".join(m.describe() for m in self.members)
        return f"{self.variant.name or self.model} @ {self.load.describe()}"


@attrs.frozen
class Metric:
    """One measured value. `gpu_uuid` is set for per-GPU values, None for everything else."""

    tag: str
    value: float
    gpu_uuid: str | None = None


STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"
#: a replay had no recorded measurement for this RunConfig: not ok, ignored by ranking and reports like a
#: failed one, and "missing" (not "bad") for strategies
STATUS_NOT_RECORDED = "not_recorded"
#: stored statuses `retry_failed` does not measure again: ok ones, and `not_recorded` (a replay's answer is its
#: recording's, the same on every rerun) and `skipped` (the RunConfig is not measurable as configured)
NOT_RETRIED = frozenset({STATUS_OK, STATUS_SKIPPED, STATUS_NOT_RECORDED})


def retryable(status: str) -> bool:
    """Whether a stored measurement of this status is measured again with `retry_failed` (failed, timeout, …)."""
    return status not in NOT_RETRIED


@attrs.frozen
class Measurement:
    """The outcome of running one RunConfig: metrics, or a failure with the tool's own error text."""

    run_config_key: str
    status: str = STATUS_OK
    metrics: tuple[Metric, ...] = ()
    error: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    window_seconds: float = 0.0
    #: seconds of load-generator runs whose windows were thrown away (unstable attempts, a failed measurement's)
    retry_seconds: float = 0.0
    host: str = ""
    agent: str = ""
    gpu: str = ""

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def values(self) -> dict[str, float]:
        """Non-GPU metric values by tag (GPU values aggregated by the metric registry elsewhere)."""
        return {m.tag: m.value for m in self.metrics if m.gpu_uuid is None}

    def gpu_values(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for m in self.metrics:
            if m.gpu_uuid is not None:
                out.setdefault(m.gpu_uuid, {})[m.tag] = m.value
        return out


@attrs.frozen
class Result:
    """A RunConfig together with its Measurement, as strategies observe and rankers rank them."""

    run_config: RunConfig
    measurement: Measurement


@attrs.frozen
class Plan:
    """A batch of independent RunConfigs proposed together (an executor may run them in parallel)."""

    run_configs: tuple[RunConfig, ...] = ()

    def __len__(self) -> int:
        return len(self.run_configs)


@attrs.frozen
class GpuDevice:
    """One GPU this host can profile on, as a metric collector discovered it (selected by the `gpus` option).

    `uuid` is the NVML UUID (`GPU-…`, or `MIG-…` for a MIG instance) used in metrics and CSV rows and for
    `CUDA_VISIBLE_DEVICES`; `index` is the CUDA/NVML index of the physical GPU (MIG instances carry their
    parent's index, so selecting an index selects all of its MIG instances); `mig` marks MIG instances and
    MIG-enabled GPUs whose instances could not be enumerated (their utilization/power are not reported).
    """

    uuid: str
    name: str = ""
    index: int = 0
    total_memory_mb: int = 0
    mig: bool = False

    def describe(self) -> str:
        """`<index> <uuid> (<name>)`, as listed in errors and logs."""
        return f"{self.index} {self.uuid}" + (f" ({self.name})" if self.name else "")


@attrs.frozen
class Endpoints:
    """Where a running server answers, as the load generator and collectors need it."""

    http: str = ""
    grpc: str = ""
    metrics_url: str = ""
    protocol: str = "grpc"
    server_pid: int | None = None
    container_id: str | None = None
    model_name: str = ""
    # extra load-generator flags the server needs (e.g. json tensors for a server without Triton's binary
    # tensor extension); applied before the user's perf_analyzer_flags
    loadgen_flags: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    # `metrics_url` serves Triton's Prometheus metrics (per-GPU nv_gpu_* values a load generator may read itself)
    triton_metrics: bool = False
    # environment the load generator needs for this server (e.g. the libraries of a server it embeds), applied
    # over its own environment
    loadgen_env: dict[str, str] = attrs.field(factory=dict, converter=_frozen_dict)
    # the inference API the server speaks at `http`: "kserve" (Triton/KServe v2, incl. generate/generate_stream)
    # or "openai" (/v1/chat/completions and /v1/completions); LLM load generators pick their endpoint kind by it
    api: str = "kserve"
