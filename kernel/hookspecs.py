"""Every hook spec of modelyzer, one docstring each: who calls it, when, and what it must return.

Registry hooks (`register_*`) receive a `register(name, factory)` callback; the kernel records which plugin
registered each name and refuses duplicates (see `kernel.registry`). Event hooks (`<noun>_<pastverb>`) are
broadcasts; their return values are ignored.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("modelyzer")
hookimpl = pluggy.HookimplMarker("modelyzer")


# --- registries ----------------------------------------------------------------------------------
@hookspec
def register_launchers(register: Any) -> None:
    """Called once by the kernel (controller and agent) when launchers are first needed.

    Call `register(name, factory)`; `factory(config, context)` returns a `kernel.interfaces.Launcher`.
    `name` is what users put in `triton_launch_mode` (e.g. `local`, `remote`, `mlserver`).
    """


@hookspec
def register_search_strategies(register: Any) -> None:
    """Called once by the controller. `register(name, factory)`; `factory(spec, base_config, config)` returns a
    `kernel.interfaces.SearchStrategy`. `name` is a `run_config_search_mode` value (`brute`, `quick`, …)."""


@hookspec
def register_load_generators(register: Any) -> None:
    """Called once by whoever executes RunConfigs. `register(name, factory)`; `factory(config, context)` returns a
    `kernel.interfaces.LoadGenerator` (`perf_analyzer`, `genai_perf`, …)."""


@hookspec
def register_metric_collectors(register: Any) -> None:
    """Called once by whoever executes RunConfigs. `register(name, factory)`; `factory(config, context)` returns a
    `kernel.interfaces.MetricCollector`. Every registered collector whose `enabled()` is true runs around each
    measurement window."""


@hookspec
def register_rankers(register: Any) -> None:
    """Called once by the controller. `register(name, factory)`; `factory(config)` returns a `kernel.interfaces.Ranker`."""


@hookspec
def register_reporters(register: Any) -> None:
    """Called once by the controller at the end of `profile` (and by `report`). `register(name, factory)`;
    `factory(config, context)` returns a `kernel.interfaces.Reporter`; all enabled reporters run, in name order."""


@hookspec
def register_model_config_codecs(register: Any) -> None:
    """Called once when a model config is read or written. `register(name, factory)`; `factory()` returns a
    `kernel.interfaces.ModelConfigCodec` (`pbtxt` reads/writes Triton's config.pbtxt)."""


@hookspec
def register_executors(register: Any) -> None:
    """Called once by the controller when a profile starts. `register(name, factory)`; `factory(config, context)`
    returns a `kernel.executor.Executor` that runs RunConfigs somewhere (`local`: this host; `agents`: ZeroMQ
    agents). `name` is what users put in `executor`."""


@hookspec
def register_settings(register: Any) -> None:
    """Called when a config is loaded (controller and agent). `register(name, settings_class)`: an attrs class whose
    attributes are config keys this plugin reads — name = key (unique), annotation = type (str, int, float, bool,
    Path, list[str], list[int]), default = the one default, `metadata={"help": ...}`. Users set them in YAML or as
    `--kebab-case` flags; the plugin reads `config.settings(settings_class)`."""


@hookspec
def register_commands(cli: Any) -> None:
    """Called once by the CLI frontend after its built-in groups exist: add click commands to `cli`."""


# --- per-model contributions --------------------------------------------------------------------------
@hookspec
def model_perf_analyzer_flags(spec: Any, config: Any) -> dict[str, Any] | None:
    """Called by the controller once per profiled model (`kernel.models.ModelSpec`, with the resolved
    `ProfileConfig`) when a profile is prepared, before the first RunConfig is made.

    Return perf_analyzer flags (kebab-case keys, as in `perf_analyzer_flags`) the model needs to be measured at
    all, or None. They are applied over the model's `perf_analyzer_flags`, so an implementation that adds to a
    flag the user set (e.g. `shape`, an additive flag) must return the user's values too. Example: the
    `model_tools` contrib plugin returns `{"shape": ["INPUT0:16"]}` for an ONNX model with a dynamic
    non-batch dimension, and logs one line saying so.
    """


# --- events ----------------------------------------------------------------------------------------
@hookspec
def run_started(run_id: int, config: Any) -> None:
    """Broadcast by the controller after the results DB is open and before the first RunConfig runs."""


@hookspec
def measurement_recorded(run_config: Any, measurement: Any) -> None:
    """Broadcast by the controller right after a measurement was committed to the results DB."""


@hookspec
def run_finished(run_id: int, status: str) -> None:
    """Broadcast by the controller when a profile ends (`status`: finished, interrupted, failed)."""


@hookspec
def agent_joined(agent: Any) -> None:
    """Broadcast by the controller when an agent registers (distributed profiling)."""


@hookspec
def agent_lost(agent: Any) -> None:
    """Broadcast by the controller when an agent missed its liveness window; its work went back to the queue."""
