"""Which ONNX models a path names: an .onnx file, a model directory (<model>/config.pbtxt + <model>/<version>/
model.onnx) or a model repository (every model directory in it).

A file that is not an ONNX model, or a directory holding none, is a ConfigError (one line, exit code 2) naming the
path and what is accepted. A repository's models without an ONNX file (a Python or OpenVINO model) are listed as
skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel.errors import ConfigError
from modelyzer_model_tools.runtime import onnx

ACCEPTS = ("an .onnx file, a model directory (<model>/config.pbtxt + <model>/<version>/model.onnx) or a model "
           "repository of such directories")
DEFAULT_FILENAME = "model.onnx"


def not_onnx(path: Path, why: str) -> ConfigError:
    return ConfigError(f"{path}: {why}; modelyzer inspect accepts {ACCEPTS}")


@attrs.frozen
class ModelLocation:
    """One ONNX model: its name (the model directory's, else the file's stem), file, and config.pbtxt if any."""

    name: str
    onnx_path: Path
    config_path: Path | None = None

    def load(self) -> Any:
        """The `onnx.ModelProto` (external weights not loaded: inspection needs the graph only)."""
        try:
            return onnx().load(str(self.onnx_path), load_external_data=False)
        except Exception as err:  # protobuf's DecodeError and friends: not an ONNX file
            raise not_onnx(self.onnx_path, f"not an ONNX model ({type(err).__name__})") from None


@attrs.frozen
class Located:
    """What a path named: the ONNX models found, and the model directories without one."""

    models: tuple[ModelLocation, ...]
    skipped: tuple[str, ...] = ()


def _filename(config: dict[str, Any] | None) -> str:
    return str((config or {}).get("default_model_filename") or DEFAULT_FILENAME)


def model_in_directory(directory: Path, codec: Any) -> ModelLocation | None:
    """The ONNX model of a Triton model directory: the highest numeric version holding the model file."""
    config_path = directory / codec.filename
    config = codec.read(config_path) if config_path.is_file() else None
    filename = _filename(config)
    versions = sorted((p for p in directory.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    for version in reversed(versions):
        if (version / filename).is_file():
            return ModelLocation(directory.name, version / filename, config_path if config is not None else None)
    return None


def is_model_directory(directory: Path, codec: Any) -> bool:
    return (directory / codec.filename).is_file() or any(
        p.is_dir() and p.name.isdigit() for p in directory.iterdir())


def locate(path: Path, codec: Any) -> Located:
    """The models `path` names (see the module docstring)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory; modelyzer inspect accepts {ACCEPTS}")
    if path.is_file():
        if path.suffix.lower() != ".onnx":
            raise not_onnx(path, "not an ONNX model (expected a .onnx file)")
        name = path.parent.parent.name if path.parent.name.isdigit() else path.stem
        return Located((ModelLocation(name, path, _sibling_config(path, codec)),))
    if is_model_directory(path, codec):
        found = model_in_directory(path, codec)
        if found is None:
            raise not_onnx(path, f"a model directory without <version>/{DEFAULT_FILENAME}")
        return Located((found,))
    models: list[ModelLocation] = []
    skipped: list[str] = []
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        if not is_model_directory(child, codec):
            continue
        found = model_in_directory(child, codec)
        if found is None:
            skipped.append(child.name)
        else:
            models.append(found)
    if not models:
        raise not_onnx(path, "no ONNX model in this directory")
    return Located(tuple(models), tuple(skipped))


def _sibling_config(path: Path, codec: Any) -> Path | None:
    """A model file at <model>/<version>/model.onnx has <model>/config.pbtxt."""
    if path.parent.name.isdigit():
        candidate = path.parent.parent / codec.filename
        if candidate.is_file():
            return candidate
    return None
