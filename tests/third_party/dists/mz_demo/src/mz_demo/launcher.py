"""The `toy` launcher: a server-less "server" living in this process (`triton_launch_mode: toy`).

Its capabilities tell the kernel what it is: no server-side metrics (collectors that scrape a server are skipped),
nothing to sample with no model loaded (no server-only window), no server process of its own (several executor
slots may share a host), and the "server" runs in-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig


class ToyLauncher(Launcher):
    serves_metrics = False
    server_only_window = False
    starts_server = False
    in_process = True

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.server_starts = 0
        self.model_loads = 0
        self._served: dict[str, str] = {}

    def start(self) -> None:
        self.server_starts += 1

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        if self._served.get(variant.model) != variant.config_hash:  # a new config: "load" it
            self._served[variant.model] = variant.config_hash
            self.model_loads += 1
        return Endpoints(model_name=variant.model, protocol="toy")

    def stop(self) -> None:
        self._served.clear()

    def writes_full_variant_dirs(self) -> bool:
        return False  # only the model config is written to the output repository


@hookimpl
def register_launchers(register: Any) -> None:
    register("toy", ToyLauncher)
