"""Concurrent multi-model groups in reports: which specs are reported, and Model Analyzer's forms of their cells.

A group ("a,b": models profiled at once; `ModelSpec.members`, `RunConfig.members`) is reported as one model,
named "a and b": each metric is the value combined across its models (throughput summed, latencies averaged)
with each model's own value beside it — `"421.0, [184.5,236.5]"` in the CSVs, `<strong>20.7</strong> (23.9,
17.4)` in the summary table — and each per-model setting is listed in the models' order: `"1,2"` in the CSVs,
`(1, 2)` in the summary table. GPU values are the group's (its models share the GPUs). Model Analyzer writes no
detailed report for a group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.models import GROUP_SEP, ConfigVariant, LoadSpec, ModelSpec, RunConfig, group_spec
from modelyzer.kernel.store import Store


def report_specs(store: Store, config: ProfileConfig) -> tuple[ModelSpec, ...]:
    """The models to report, in the config's order: the config's, where the models of a concurrent group stored
    in the DB ("a,b") become that group — `group_spec` of the config's specs of its models, so the config's
    objectives, constraints and weighting rank it. A model of such a group stays reported on its own only when
    the DB holds it on its own too."""
    stored = store.models()
    plain = {s.name: s for s in config.models if not s.members}
    groups = [name.split(GROUP_SEP) for name in stored if GROUP_SEP in name]
    out: list[ModelSpec] = []
    seen: set[str] = set()
    for spec in config.models:
        if spec.members:
            if spec.name not in seen:
                out.append(spec)
                seen.add(spec.name)
            continue
        covered = False
        for names in groups:
            if spec.name in names and all(n in plain for n in names):
                covered = True
                key = GROUP_SEP.join(names)
                if key not in seen:
                    out.append(group_spec(tuple(plain[n] for n in names)))
                    seen.add(key)
        if spec.name in stored or not covered:
            out.append(spec)
    return tuple(out)


def display_name(spec: ModelSpec) -> str:
    """A report's name of a model: "a and b" for a concurrent group (Model Analyzer's), else its name."""
    return " and ".join(m.name for m in spec.members) if spec.members else spec.name


def member_spec(spec: ModelSpec, model: str) -> ModelSpec:
    """The spec of one model of a group (a spec of its own name when the group does not hold it)."""
    return next((m for m in spec.members if m.name == model), ModelSpec(name=model, cpu_only=spec.cpu_only))


def member_loads(run_config: RunConfig) -> list[LoadSpec]:
    """The loads of a RunConfig's models: a group's, one per model; else its own."""
    return [m.load for m in run_config.members] or [run_config.load]


def per_model(values: dict[str, float], tag: str, models: Sequence[str]) -> tuple[float | None, list[float]]:
    """(combined, [each model's]) of `tag` in a group measurement's values: the combined value is the stored one,
    else `metrics.combine` of the models' (None when no model has the tag)."""
    own = [values[key] for key in (metrics.model_tag(tag, m) for m in models) if key in values]
    combined = values.get(tag)
    if combined is None and own:
        combined = metrics.combine(tag, own)
    return combined, own


def _one_decimal(number: float) -> str:
    return str(round(float(number), 1))


def csv_metric_cell(values: dict[str, float], tag: str, models: Sequence[str]) -> Any:
    """A group's metric cell in the CSVs: `<combined>, [<a>,<b>]` rounded to one decimal; a value the models
    share (GPU metrics) alone."""
    combined, own = per_model(values, tag, models)
    if not own:
        return combined
    assert combined is not None
    return f"{_one_decimal(combined)}, [{','.join(_one_decimal(v) for v in own)}]"


def csv_list_cell(run_config: RunConfig, cell: Callable[[RunConfig], Any]) -> str:
    """A per-model setting of a group in the CSVs: each model's, comma-joined (`"1,2"`)."""
    return ",".join("" if (v := cell(m)) is None else str(v) for m in run_config.members)


def table_metric_cell(values: dict[str, float], tag: str, models: Sequence[str]) -> Markup | str:
    """A group's metric cell in the summary table: `<strong>combined</strong> (a, b)`, one decimal."""
    combined, own = per_model(values, tag, models)
    if combined is None:
        return "–"
    if not own:
        return _one_decimal(combined)
    return Markup("<strong>{}</strong> ({})").format(_one_decimal(combined), ", ".join(_one_decimal(v) for v in own))


def table_list_cell(items: Sequence[Any]) -> str:
    """A per-model setting of a group in the summary table: `(1, 2)`."""
    return f"({', '.join(str(i) for i in items)})"


def names_cell(variant: ConfigVariant) -> Markup:
    """A group's config names in the summary table, one per line."""
    return Markup("<br>").join(m.name for m in variant.members)


def metric_header(tag: str, header: str) -> str:
    """A group's column header: "Total …" for values summed across its models, "Average …" otherwise."""
    info = metrics.get(tag)
    return f"{'Total' if info is not None and info.combine == 'sum' else 'Average'} {header}"
