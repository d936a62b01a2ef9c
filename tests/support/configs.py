"""Real `ProfileConfig`s for plugin tests, built the way the CLI builds them (no hand-made namespaces).

`profile_config(**values)` loads `values` as YAML keys through `config_from_dict` (no filesystem checks), with
`profile_models: add_sub` unless given. Keys left at None take their defaults; a key given here counts as set by
the user (`user_set`), as it would in a YAML file.
"""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.config import ProfileConfig, config_from_dict

DEFAULT_MODEL = "add_sub"


def profile_config(**values: Any) -> ProfileConfig:
    """A ProfileConfig of `values` (YAML keys → values; Paths are fine)."""
    values.setdefault("profile_models", DEFAULT_MODEL)
    return config_from_dict(
        {k: str(v) if hasattr(v, "__fspath__") else v for k, v in values.items()}, check_paths=False
    )


__all__ = ["DEFAULT_MODEL", "profile_config"]
