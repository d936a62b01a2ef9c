"""The config keys of the `model_tools` plugin (read with `config.settings(ModelToolsSettings)`).

- `accuracy_tolerance`: how far OpenVINO's outputs may be from ONNX Runtime's (`inspect --compare`, and the
  `compare.accuracy_check` other plugins call before ranking an OpenVINO variant).
- `dynamic_dimension_size`: the size perf_analyzer's `--shape` gives a dynamic non-batch dimension.
"""

from __future__ import annotations

import attrs

DEFAULT_TOLERANCE = 1e-3
DEFAULT_DYNAMIC_SIZE = 16


@attrs.frozen
class ModelToolsSettings:
    """Keys users set in YAML or as `--kebab-case` flags of profile/report."""

    accuracy_tolerance: float = attrs.field(
        default=DEFAULT_TOLERANCE,
        metadata={
            "help": "How far an OpenVINO run's outputs may be from ONNX Runtime's on the same random inputs: an "
            "element disagrees when both its absolute and its relative error exceed this (Polygraphy's rule); a "
            "variant whose outputs disagree is not ranked (`modelyzer inspect --compare`)."
        },
    )
    dynamic_dimension_size: int = attrs.field(
        default=DEFAULT_DYNAMIC_SIZE,
        metadata={
            "help": "The size `profile` gives each dynamic non-batch dimension of an ONNX model in perf_analyzer's "
            "--shape (a dimension the model fixes keeps its size; perf_analyzer_flags.shape overrides)."
        },
    )
