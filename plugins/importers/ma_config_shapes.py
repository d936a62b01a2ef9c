"""Where a Model Analyzer checkpoint keeps a model run config's model config: the two shapes (facts §6).

- current: `_model_config_variant = {model_config, variant_name, cpu_only}`; when `model_config` is missing, the
  variant's snake_case config in `ModelManager.model_variant_name_manager._model_config_dicts` is used;
- older (the shape of Model Analyzer's own experiment data, written before the variant-name manager existed):
  `_model_config` holds the config itself, with a `cpu_only` key inside it and no variant name. The variant
  name is then the model run config's part of the result key (`<model>_config_<N>`, comma-joined for several
  models), else the config's `name` field when it is a variant name; a `name` of the form `<model>_config_…`
  (the config named after its variant) becomes the model's name again, as in the current shape.

Both shapes come out alike — protobuf JSON (camelCase, int64 as strings) or snake_case, `cpu_only` apart — for
the importer to normalise with the pbtxt codec. Each model run config is read on its own, so a file mixing
the shapes imports too.
"""

from __future__ import annotations

from typing import Any

import attrs

CURRENT = "_model_config_variant"
OLDER = "_model_config"


class ShapeError(Exception):
    """A model run config in neither shape (or a broken one); the message names its JSON path."""


@attrs.frozen
class ModelConfigSource:
    """A model run config's model config as the checkpoint has it, `cpu_only` taken out of it."""

    config: dict[str, Any]
    cpu_only: bool
    variant_name: str
    shape: str  # CURRENT or OLDER


def mrc_path(models: str, variants: str, index: int = 0) -> str:
    """The JSON path of a model run config in the checkpoint, for error messages."""
    return f'ResultManager.results._results["{models}"]["{variants}"][0]._model_run_configs[{index}]'


def _variant_part(variants: str, index: int, count: int) -> str | None:
    parts = variants.split(",")
    return parts[index] if len(parts) == count else None


def model_config_source(
    mrc: dict[str, Any],
    model: str,
    variants: str,
    where: str,
    named_configs: dict[str, Any],
    index: int = 0,
    count: int = 1,
) -> ModelConfigSource:
    """The model config of model run config `mrc` (of `model`, number `index` of `count` in the RunConfig whose
    result key is `variants`), in whichever shape it comes; ShapeError naming `where` when in neither."""
    if mrc.get(CURRENT) is not None:
        holder = mrc[CURRENT]
        if not isinstance(holder, dict):
            raise ShapeError(f"{where}.{CURRENT} is not an object")
        name = _variant_part(variants, index, count) or str(holder.get("variant_name") or variants)
        config = holder.get("model_config") or named_configs.get(name)
        if not isinstance(config, dict):
            raise ShapeError(f"{name}: no model config at {where}.{CURRENT}.model_config (nor in "
                             "ModelManager.model_variant_name_manager._model_config_dicts)")
        return ModelConfigSource(dict(config), bool(holder.get("cpu_only")), name, CURRENT)
    if mrc.get(OLDER) is not None:
        raw = mrc[OLDER]
        if not isinstance(raw, dict):
            raise ShapeError(f"{where}.{OLDER} is not an object")
        config = {k: v for k, v in raw.items() if k != "cpu_only"}
        named = str(config.get("name") or "")
        name = _variant_part(variants, index, count) or (named if "_config_" in named else variants)
        if named.startswith(f"{model}_config_"):  # those versions named the config after the variant
            config["name"] = model
        return ModelConfigSource(config, bool(raw.get("cpu_only")), name, OLDER)
    raise ShapeError(f"{_variant_part(variants, index, count) or variants}: no model config at {where} "
                     f"(neither {CURRENT}.model_config, the current shape, nor {OLDER}, the older one)")
