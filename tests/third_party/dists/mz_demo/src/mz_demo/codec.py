"""The `json` model-config codec: model directories holding `config.json` instead of Triton's config.pbtxt.

The kernel uses the codec whose `filename` the profiled models' directories hold, so nothing names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import ModelConfigCodec


class JsonCodec(ModelConfigCodec):
    filename = "config.json"

    def read(self, path: Path) -> dict[str, Any]:
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: not a JSON model config ({err})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a JSON model config is an object")
        return loaded

    def dumps(self, config: dict[str, Any]) -> str:
        return json.dumps(config, indent=2, sort_keys=True) + "\n"

    def write(self, config: dict[str, Any], path: Path) -> None:
        path.write_text(self.dumps(config), encoding="utf-8")


@hookimpl
def register_model_config_codecs(register: Any) -> None:
    register("json", JsonCodec)
