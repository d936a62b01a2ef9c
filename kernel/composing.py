"""Composing models: which models an ensemble or a BLS model calls, resolved into `ModelSpec.composing`.

An ensemble's composing models are the `model_name`s of its `ensemble_scheduling` steps (in step order); a BLS
model's are `bls_composing_models`. Each gets its `ensemble_composing_models` / `bls_composing_models` settings
when listed there (else the defaults), is CPU-only when the top model is or when it is named in
`cpu_only_composing_models`, and may vary the fields the top model may (`tuned_fields`). Their variants are then
searched together with the top model's (Model Analyzer's composing-model search); names listed in
`ensemble_composing_models` that no step calls are ignored with a warning, as Model Analyzer does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel import assembly
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.models import ModelSpec

log = logging.getLogger("modelyzer")

#: the private base-config key holding the composing models' own base configs (`[{model, config}]`)
COMPOSING_BASES_KEY = "_composing_bases"


def ensemble_steps(base_config: dict[str, Any]) -> list[str]:
    """The models an ensemble's steps call, in step order, each once."""
    steps = (base_config.get("ensemble_scheduling") or {}).get("step") or []
    return list(dict.fromkeys(str(s.get("model_name")) for s in steps if s.get("model_name")))


def with_composing(config: ProfileConfig) -> ProfileConfig:
    """The config with every ensemble's and BLS model's `composing` specs resolved (module docstring)."""
    if config.model_repository is None:
        return config
    codec = assembly.codec(config)
    repo = Path(config.model_repository)
    listed = {s.name: s for s in config.ensemble_composing_models}
    models: list[ModelSpec] = []
    for spec in config.models:
        path = Path(spec.model_path) / codec.filename
        steps = ensemble_steps(codec.read(path)) if not spec.members and path.is_file() else []
        if steps:
            for name in sorted(set(listed) - set(steps)):
                log.warning("ensemble_composing_models: %s is not a step of ensemble %s; ignored", name, spec.name)
            composing = tuple(listed.get(n) or ModelSpec(name=n, model_path=str(repo / n)) for n in steps)
        elif config.bls_composing_models and not spec.members:
            composing = tuple(config.bls_composing_models)
        else:
            models.append(spec)
            continue
        cpu = set(config.cpu_only_composing_models)
        composing = tuple(attrs.evolve(c, cpu_only=c.cpu_only or spec.cpu_only or c.name in cpu,
                                       tuned_fields=spec.tuned_fields,
                                       cpu_accelerators=spec.cpu_accelerators) for c in composing)
        models.append(attrs.evolve(spec, composing=composing))
    return attrs.evolve(config, models=tuple(models))
