"""The agents plugin: the `agents` executor (ZeroMQ controller) and the `agent`, `keys`, `agents` commands.

Kept light: ZeroMQ and the protocol modules are imported only when the executor or a command is used.
"""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext


def agents_executor(config: ProfileConfig, context: RunContext) -> Executor:
    """The controller side of `profile --agents URL`: RunConfigs run on `modelyzer agent` daemons."""
    from modelyzer.plugins.agents.controller import AgentsExecutor

    return AgentsExecutor(config, context)


@hookimpl
def register_executors(register: Any) -> None:
    register("agents", agents_executor)


@hookimpl
def register_commands(cli: Any) -> None:
    from modelyzer.plugins.agents.commands import agent, agents, keys

    for command in (agent, keys, agents):
        cli.add_command(command)
