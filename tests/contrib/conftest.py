"""Shared by the contrib tests: the quick-start ONNX model (add_sub) written into a fresh repository once per module."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("make_model", ROOT / "examples/quick-start/make_model.py")
    assert spec is not None and spec.loader is not None
    make_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_model)
    return Path(make_model.write_repository(tmp_path_factory.mktemp("repo")))
