"""What the config tests share: a model repository fixture, loading from dicts, one-line error capture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]




def write(tmp_path: Path, data: Any, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def load(data: dict[str, Any], cli: dict[str, Any] | None = None, **kw: Any) -> ProfileConfig:
    """Load from a dict as YAML values, without filesystem checks unless asked."""
    kw.setdefault("check_paths", False)
    return config_from_dict(data, cli or {}, **kw)


def error(data: dict[str, Any], cli: dict[str, Any] | None = None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(data, cli, **kw)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


BASE = {"profile_models": "add_sub"}

