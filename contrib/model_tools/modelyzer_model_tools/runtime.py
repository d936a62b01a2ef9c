"""The optional runtimes, imported on first use: a missing one is one line naming what to install.

`profile` must behave as before when they are absent, so nothing imports them at module level.
"""

from __future__ import annotations

import importlib
from typing import Any

from modelyzer.kernel.errors import ModelyzerError

PACKAGE = "modelyzer-model-tools"


class MissingRuntime(ModelyzerError):
    """A package the command needs is not installed (exit code 2: fix the environment, then re-run)."""

    exit_code = 2


def require(module: str, pip_name: str, purpose: str) -> Any:
    """Import `module`, or raise MissingRuntime naming the pip package."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingRuntime(f"{purpose} needs {pip_name}, which is not installed ({err}); run "
                             f"`pip install {pip_name}` (or `pip install -e contrib/model_tools` for all of "
                             f"{PACKAGE}'s dependencies)") from None


def quiet_polygraphy() -> Any:
    """Polygraphy's logger, quiet (its lines would mix with the command's output; its failures still raise)."""
    logger = require("polygraphy.logger", "polygraphy", "reading ONNX models").G_LOGGER
    logger.module_severity = logger.CRITICAL
    return logger


def polygraphy_onnx() -> Any:
    """`polygraphy.backend.onnx.util` (tensor metadata of an ONNX graph)."""
    quiet_polygraphy()
    return require("polygraphy.backend.onnx.util", "polygraphy", "reading ONNX models")


def onnx() -> Any:
    return require("onnx", "onnx", "reading ONNX models")


def openvino() -> Any:
    return require("openvino", "openvino", "running or converting models with OpenVINO")
