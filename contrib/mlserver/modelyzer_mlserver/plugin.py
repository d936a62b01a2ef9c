"""Entry point of the `modelyzer_mlserver` distribution: registers the `mlserver` launcher and the `openvino`
metric collector."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.hookspecs import hookimpl


@hookimpl
def register_launchers(register: Any) -> None:
    from modelyzer_mlserver.launcher import MLServerLauncher

    register("mlserver", MLServerLauncher)


@hookimpl
def register_metric_collectors(register: Any) -> None:
    from modelyzer_mlserver.collector import OpenVinoCollector

    register("openvino", OpenVinoCollector)
