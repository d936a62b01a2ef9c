"""Load-time checks that need the installed plugins: run by the loader (`kernel/config.py`) once every key is parsed,
before any server starts, each failing with one line naming the key and the fix.

- `model_config_parameters` of every profiled and composing model, against the schema of the model-config codec
  the model directories hold (`ModelConfigCodec.check_parameters`: field names, nested fields, enum values, types,
  negative counts), with a did-you-mean;
- `plots` and `report_model_configs.<config>.plots`: Model Analyzer's plot specs, axes being metric tags of the
  metric registry (which plugins fill when they are loaded) or a load parameter;
- `inference_output_fields`, `gpu_output_fields`, `server_output_fields`: column names the CSV reporter knows
  (a metric tag, a load or config column, `backend_parameter/<name>`), with a did-you-mean.

`codec_for()` is the kernel's one rule for which codec serves a set of model directories (also used by
`kernel.assembly.codec`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from modelyzer.kernel import metrics, registry
from modelyzer.kernel.config_values import Where, show
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.interfaces import ModelConfigCodec

#: the load parameters a plot axis or a CSV column may name besides metric tags
LOAD_TAGS = ("batch_size", "concurrency", "request_rate")
#: the CSV columns that are not metrics (Model Analyzer's names)
CONFIG_COLUMNS = ("model_name", "model_config_path", "instance_group", "max_batch_size", "satisfies_constraints",
                  "gpu_uuid")
OUTPUT_FIELD_KEYS = ("inference_output_fields", "gpu_output_fields", "server_output_fields")
PLOT_KEYS = ("title", "x_axis", "y_axis", "monotonic")
BACKEND_PARAMETER = "backend_parameter/"


def codec_for(model_dirs: Iterable[Path] = ()) -> ModelConfigCodec:
    """The codec whose config file the model directories hold; with none holding a known file, the codec with the
    highest `preference` (then the first by name), so installing another codec does not change that format."""
    dirs = list(model_dirs)
    codecs: list[ModelConfigCodec] = [e.factory() for _, e in sorted(registry.registry("model_config_codecs").items())]
    codecs.sort(key=lambda c: -c.preference)  # stable: name order among equals
    if not codecs:
        raise ConfigError("no model-config codec is installed; reinstall modelyzer")
    for candidate in codecs:
        if any((d / candidate.filename).is_file() for d in dirs):
            return candidate
    return codecs[0]


def check_model_parameters(models: Iterable[tuple[Mapping[str, Any], Path | None, Where]]) -> None:
    """Each model's `model_config_parameters` (with its directory, if known, and the `Where` of the model entry)."""
    for params, model_dir, where in models:
        if not params:
            continue
        codec = codec_for([model_dir] if model_dir is not None else [])
        problem = codec.check_parameters(params)
        if problem is not None:
            path, text = problem
            where.child("model_config_parameters").child(path).fail(text)


def _metric_names() -> list[str]:
    return sorted(metrics.all_metrics())


def is_output_column(name: str) -> bool:
    """A name a CSV table can show: a metric (or its `_ci`), a load or config column, `backend_parameter/<name>`."""
    if name in LOAD_TAGS or name in CONFIG_COLUMNS or metrics.get(name) is not None:
        return True
    if name.endswith(metrics.CI_SUFFIX) and metrics.get(name[: -len(metrics.CI_SUFFIX)]) is not None:
        return True
    return name.startswith(BACKEND_PARAMETER) and len(name) > len(BACKEND_PARAMETER)


def check_output_fields(values: Mapping[str, Any], user_set: frozenset[str], where_of: Any) -> None:
    """The user-set `*_output_fields`: every name a column the CSV reporter knows."""
    for key in OUTPUT_FIELD_KEYS:
        if key not in user_set:
            continue
        for name in values.get(key) or []:
            if not is_output_column(name):
                match = difflib.get_close_matches(name, [*LOAD_TAGS, *CONFIG_COLUMNS, *_metric_names()], n=1,
                                                  cutoff=0.6)
                hint = (f"did you mean {match[0]!r}?" if match else
                        "use a metric tag (perf_throughput, perf_latency_p99, …), model_name, batch_size, "
                        "concurrency, … or backend_parameter/<name>")
                where_of(key).fail(f"unknown field {show(name)}; {hint}")


def check_plots(tree: Any, where: Where) -> list[tuple[str, dict[str, Any]]]:
    """Model Analyzer's `plots` mapping `{name: {title, x_axis, y_axis, monotonic}}`, checked: [(name, body)]."""
    if tree is None:
        return []
    if not isinstance(tree, Mapping):
        where.fail("must be a mapping of plot name → {title, x_axis, y_axis, monotonic}")
    out = []
    for name, body in tree.items():
        at = where.child(name)
        if not isinstance(body, Mapping):
            at.fail("must be a mapping with title, x_axis, y_axis (and optionally monotonic)")
        for key in body:
            if key not in PLOT_KEYS:
                match = difflib.get_close_matches(str(key), PLOT_KEYS, n=1)
                hint = f"did you mean {match[0]!r}?" if match else "use title, x_axis, y_axis, monotonic"
                at.fail(f"unknown key {show(key)}; {hint}")
        for axis in ("x_axis", "y_axis"):
            tag = body.get(axis)
            if not isinstance(tag, str) or not tag:
                at.child(axis).fail("is required (a metric tag such as perf_latency_p99)")
            if tag not in LOAD_TAGS and not metrics.is_known(tag):
                match = difflib.get_close_matches(tag, [*LOAD_TAGS, *_metric_names()], n=1, cutoff=0.6)
                hint = f"did you mean {match[0]!r}?" if match else (
                    "use a metric tag (perf_throughput, perf_latency_p99, gpu_used_memory, …) or "
                    "batch_size/concurrency/request_rate")
                at.child(axis).fail(f"unknown metric {show(tag)}; {hint}")
        if "monotonic" in body and not isinstance(body["monotonic"], bool):
            at.child("monotonic").fail(f"must be true or false, got {show(body['monotonic'])}")
        if "title" in body and not isinstance(body["title"], str | int | float):
            at.child("title").fail(f"must be a string, got {show(body['title'])}")
        out.append((str(name), dict(body)))
    return out


def check_report_plots(tree: Any, where: Where) -> None:
    """`report_model_configs`: names, or a mapping config name → {plots: …} (also as list items)."""
    if not isinstance(tree, Mapping | list):
        return  # a name (or a comma list of names)
    items: list[tuple[Any, Any]] = list(tree.items()) if isinstance(tree, Mapping) else [
        item for entry in tree for item in (entry.items() if isinstance(entry, Mapping) else [(entry, None)])]
    for name, body in items:
        if body is None:
            continue
        at = where.child(name)
        if not isinstance(body, Mapping):
            at.fail(f"must be a mapping with 'plots', got {show(body)}")
        for key in body:
            if key != "plots":
                at.child(key).fail("is not a key of a reported config; use plots: {name: {x_axis, y_axis, …}}")
        check_plots(body.get("plots"), at.child("plots"))


def check_loaded(values: Mapping[str, Any], user_set: frozenset[str], where_of: Any) -> None:
    """The plugin-dependent checks of the global keys (plots, report plots, output fields)."""
    check_plots(values.get("plots"), where_of("plots"))
    check_report_plots(values.get("report_model_configs"), where_of("report_model_configs"))
    check_output_fields(values, user_set, where_of)
