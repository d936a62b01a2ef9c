"""The `best_config` reporter: the machine-readable decision, and the config to deploy.

For every profiled model with a successful measurement it writes `<export_path>/best_configs/<model>/`:
`best_config.json` (the chosen variant, its knobs, the load and every metric of its best measurement, each
constraint with the measured value and whether it is met, the objectives, the gain over the default config,
the counts behind the summary sentence) and `config.pbtxt` — the chosen variant's model config written by the
model-config codec of the profiled models (`kernel.assembly.codec`: Triton's `config.pbtxt` unless a plugin's
codec reads their directories; the file takes the codec's `filename`) with the original model name, ready to drop
into a model repository as `<model>/config.pbtxt`. For models profiled concurrently (`best_configs/a,b/`) the JSON
holds the combined metrics and, per model, its variant, knobs, load and own metrics; each model's config is
written to `<model>/config.pbtxt` under it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

from modelyzer.kernel import assembly, ranking
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig, Reporter, RunContext
from modelyzer.kernel.metrics import MODEL_TAG_SEP
from modelyzer.kernel.models import converter
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters.data import ModelData, knobs, model_data, run_infos
from modelyzer.plugins.reporters.groups import member_spec, report_specs

log = logging.getLogger("modelyzer")

JSON_NAME = "best_config.json"


def best_config_doc(data: ModelData, results_db: str = "", run_status: str = "",
                    config_file: str = "config.pbtxt") -> dict[str, Any] | None:
    """The content of best_config.json for one model (None when nothing was measured successfully)."""
    best = data.best
    if best is None:
        return None
    variant = best.best.run_config.variant
    values = ranking.measurement_values(best.best.measurement)
    raw_tags = {m.tag for m in best.best.measurement.metrics}  # aliases (perf_latency) only when measured as such
    constraints = []
    for c in data.spec.constraints:
        measured = values.get(ranking.ALIASES.get(c.tag, c.tag), values.get(c.tag))
        met = ranking.passes([c], values)
        constraints.append({"tag": c.tag, "min": c.min, "max": c.max, "value": measured, "met": met})
    if best.best.run_config.members:
        return group_doc(data, values, constraints, results_db, run_status, config_file)
    return {
        "model": data.spec.name,
        "variant": variant.name,
        "is_default": variant.is_default,
        "knobs": knobs(variant, data.spec.cpu_only),
        "load": converter.unstructure(best.best.run_config.load),
        "metrics": {tag: v for tag, v in sorted(values.items()) if tag not in ranking.ALIASES or tag in raw_tags},
        **verdict_fields(data, constraints),
        "config_pbtxt": config_file,
        **({"composing": [{"model": c.model, "variant": c.name, "knobs": knobs(c, data.spec.cpu_only),
                           "config_pbtxt": f"{c.model}/{config_file}"} for c in variant.composing]}
           if variant.composing else {}),
        "results_db": results_db,
        "run_status": run_status,
    }


def verdict_fields(data: ModelData, constraints: list[dict[str, Any]]) -> dict[str, Any]:
    """What best_config.json says of the choice, for one model or a group: constraints, objectives, the gain over
    the default, the counts behind the summary sentence and the hardware."""
    assert data.best is not None
    gain = data.gain()
    tie = data.tie
    return {
        "constraints": constraints,
        "constraints_met": data.best.passing,
        "objectives": [{"tag": o.tag, "weight": o.weight} for o in data.spec.objectives],
        "gain_over_default_percent": round(gain, 2) if gain is not None else None,
        # the leaders the measurements cannot tell apart, in tie-break order (this variant first); null: none
        "statistically_tied": {"variants": list(tie.names), "within_percent": round(tie.within, 2),
                               "tie_break": ranking.TIE_BREAK_RULE} if tie else None,
        "measurements": data.measurements,
        "configurations": data.configurations,
        "failed_measurements": len(data.failed),
        "hardware": data.hardware.phrase,
    }


def group_doc(data: ModelData, values: dict[str, float], constraints: list[dict[str, Any]], results_db: str,
              run_status: str, config_file: str) -> dict[str, Any]:
    """best_config.json of a concurrent group: the combined metrics, and per model its variant, knobs, load, own
    metrics and the config file to deploy (`<model>/<config_file>`)."""
    assert data.best is not None
    best = data.best.best
    members = []
    for member in best.run_config.members:
        suffix = f"{MODEL_TAG_SEP}{member.model}"
        members.append({
            "model": member.model,
            "variant": member.variant.name,
            "is_default": member.variant.is_default,
            "knobs": knobs(member.variant, member_spec(data.spec, member.model).cpu_only),
            "load": converter.unstructure(member.load),
            "metrics": {tag.removesuffix(suffix): v for tag, v in sorted(values.items()) if tag.endswith(suffix)},
            "config_pbtxt": f"{member.model}/{config_file}",
        })
    return {
        "model": data.spec.name,
        "models": [m.name for m in data.spec.members],
        "variant": best.run_config.variant.name,
        "is_default": best.run_config.variant.is_default,
        "members": members,
        "metrics": {tag: v for tag, v in sorted(values.items())
                    if MODEL_TAG_SEP not in tag and tag not in ranking.ALIASES},
        **verdict_fields(data, constraints),
        "results_db": results_db,
        "run_status": run_status,
    }


def deployable_configs(data: ModelData) -> list[tuple[str, dict[str, Any]]]:
    """(model, the best variant's stored model config named like the model, without private keys): one, one per
    model of a concurrent group, or the top model's followed by its composing models' (ensemble, BLS)."""
    assert data.best is not None
    run_config = data.best.best.run_config
    out = []
    for member in run_config.members or (run_config,):
        config = {k: v for k, v in member.variant.config.items() if not str(k).startswith("_")}
        config["name"] = member.model if run_config.members else data.spec.name
        out.append((config["name"], config))
    for composing in run_config.variant.composing:
        config = {k: v for k, v in composing.config.items() if not str(k).startswith("_")}
        out.append((composing.model, {**config, "name": composing.model}))
    return out


def deployable_config(data: ModelData) -> dict[str, Any]:
    """The best variant's stored model config, named like the original model, without private keys."""
    return deployable_configs(data)[0][1]


class BestConfigReporter(Reporter):
    """Writes best_config.json and the deployable config.pbtxt per model, after the reports.

    `report --skip-summary-reports` writes the detailed reports only (Model Analyzer's `report`), so this too is
    skipped there; a profile writes it regardless.
    """

    commands: ClassVar[frozenset[str]] = frozenset({"profile", "report", "export"})
    order: ClassVar[int] = 40

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context

    def enabled(self) -> bool:
        return not (self.context.command == "report" and self.config.skip_summary_reports)

    def write(self, store: Store, run_id: int, config: ProfileConfig,
              ranking_: dict[str, list[RankedConfig]]) -> list[Path]:
        export = Path(config.export_path).resolve()
        runs = run_infos(store)
        status = runs[-1].status if runs else ""
        codec = assembly.codec(config)
        written: list[Path] = []
        for spec in report_specs(store, config):
            data = model_data(store, config, spec, ranking_.get(spec.name))
            results_db = str(Path(store.path).resolve()) if store.path != ":memory:" else ""
            doc = best_config_doc(data, results_db, status, codec.filename)
            if doc is None:
                log.warning("no best config for %s: no successful measurement stored", spec.name)
                continue
            out = export / "best_configs" / spec.name
            out.mkdir(parents=True, exist_ok=True)
            json_path = out / JSON_NAME
            json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            written.append(json_path)
            for model, deployable in deployable_configs(data):
                own = model == data.spec.name and not data.spec.members  # the others: <model>/config.pbtxt under it
                model_config = out / (codec.filename if own else f"{model}/{codec.filename}")
                model_config.parent.mkdir(parents=True, exist_ok=True)
                codec.write(deployable, model_config)
                written.append(model_config)
        return written


@hookimpl
def register_reporters(register: Any) -> None:
    register("best_config", BestConfigReporter)
