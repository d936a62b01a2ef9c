"""The accuracy guard of OpenVINO variants: OpenVINO must reproduce ONNX Runtime's outputs before it is served.

Before the launcher serves an ONNX model through the `openvino` accelerator it runs the model with ONNX Runtime and
with OpenVINO (compiled with the variant's accelerator parameters, e.g. its INFERENCE_PRECISION_HINT) on the same
random inputs, with `modelyzer_model_tools.compare.accuracy_check` (the `model_tools` contrib plugin, Polygraphy),
within the config's `accuracy_tolerance`. A variant whose outputs disagree is not served: its load fails with the
comparison's one-line verdict, so its measurement is a failed row and the variant is never ranked.

The check runs in the controller's venv, once per (model file, parameters). Without the `model_tools` plugin (or
Polygraphy) installed, variants are served unchecked and the launcher says so once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.models import canonical_json

log = logging.getLogger("modelyzer.mlserver")
DEFAULT_TOLERANCE = 1e-3


class AccuracyGuard:
    """`verdict(model_file, parameters)`: None when OpenVINO agrees (or cannot be checked), else why not."""

    def __init__(self, config: ProfileConfig) -> None:
        self.config = config
        self._verdicts: dict[tuple[str, str], str | None] = {}
        self._noted = False

    def tolerance(self) -> float:
        try:
            from modelyzer_model_tools.settings import ModelToolsSettings

            return float(self.config.settings(ModelToolsSettings).accuracy_tolerance)
        except Exception:  # the plugin (or its settings) is not installed
            return DEFAULT_TOLERANCE

    def verdict(self, model_file: Path, parameters: dict[str, str]) -> str | None:
        key = (str(model_file), canonical_json(parameters))
        if key not in self._verdicts:
            self._verdicts[key] = self._check(model_file, parameters)
        return self._verdicts[key]

    def _check(self, model_file: Path, parameters: dict[str, str]) -> str | None:
        try:
            from modelyzer_model_tools.compare import accuracy_check
        except ImportError as err:
            self._note(f"the model_tools plugin is not installed ({err})")
            return None
        tolerance = self.tolerance()
        try:
            result: Any = accuracy_check(model_file, tolerance=tolerance, openvino_properties=dict(parameters))
        except Exception as err:  # Polygraphy missing, a model it cannot feed: serve, and say so
            self._note(f"the accuracy check could not run: {err}")
            return None
        log.info("mlserver: accuracy of openvino %s on %s: %s", parameters, model_file.name, result.describe())
        return None if result.passed else str(result.describe())

    def _note(self, reason: str) -> None:
        if not self._noted:
            self._noted = True
            log.warning("mlserver: OpenVINO variants are served without comparing their outputs to ONNX Runtime: "
                        "%s (pip install -e contrib/model_tools polygraphy)", reason)
