"""Fixtures of the kernel tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A model repository with add_sub and mul (both with config.pbtxt) and bare (no config.pbtxt)."""
    root = tmp_path / "models"
    for name in ("add_sub", "mul"):
        (root / name).mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(f'name: "{name}"\n')
    (root / "bare").mkdir()
    return root
