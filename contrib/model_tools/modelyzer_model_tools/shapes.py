"""`profile`'s automatic `--shape`: perf_analyzer stops at a model input with a dynamic non-batch dimension unless
told a shape, Model Analyzer users' common failure. For each profiled ONNX model whose served dims (config.pbtxt,
else the ones the model implies) have a dynamic entry, the same `--shape NAME:d1,d2` values `modelyzer inspect`
prints are added to its perf_analyzer flags, with one log line saying so. Inputs the user gave a shape for in
`perf_analyzer_flags.shape` keep it. Without polygraphy/onnx installed, or for a model that is not ONNX, nothing
changes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from modelyzer.kernel import assembly
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ModelyzerError
from modelyzer.kernel.models import ModelSpec
from modelyzer_model_tools.settings import ModelToolsSettings

log = logging.getLogger("modelyzer")


def user_shapes(flags: Any) -> list[str]:
    """The user's `shape` flag values as a list (a string or a list in perf_analyzer_flags)."""
    value = flags.get("shape")
    if value in (None, ""):
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def shape_flags_for(spec: ModelSpec, config: ProfileConfig) -> dict[str, Any] | None:
    """The `shape` flag `spec` needs (the user's values first), or None when it needs none or it is not ONNX."""
    directory = Path(spec.model_path) if spec.model_path else None
    if spec.members or directory is None or not directory.is_dir():
        return None
    try:
        from modelyzer_model_tools.inspection import inspect_model, shape_flags
        from modelyzer_model_tools.locate import model_in_directory
        from modelyzer_model_tools.runtime import MissingRuntime
    except ImportError:
        return None
    codec = assembly.codec(config, [directory])
    size = config.settings(ModelToolsSettings).dynamic_dimension_size
    try:
        location = model_in_directory(directory, codec)
        if location is None:
            return None
        info = inspect_model(location, codec, size)
    except MissingRuntime:
        return None
    except ModelyzerError as err:
        log.debug("profile_models.%s: no --shape values, its ONNX model is unreadable: %s", spec.name, err)
        return None
    given = user_shapes(spec.perf_analyzer_flags)
    named = {s.split(":", 1)[0] for s in given}
    added = [flag for name, flag in zip(info.shapes, shape_flags(info.shapes), strict=True) if name not in named]
    if not added:
        return None
    log.info("profile_models.%s: the model has dynamic dimensions, so perf_analyzer gets --shape %s (sizes from "
             "the ONNX model, dynamic_dimension_size=%d; set perf_analyzer_flags.shape to choose others)",
             spec.name, " --shape ".join(added), size)
    return {"shape": [*given, *added]}
