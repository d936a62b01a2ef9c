"""Distributed profiling commands: `agent` (the daemon), `keys generate`, `agents status`.

The controller side is `profile --agents URL` (the `agents` executor, `controller.py`). Everything about the
protocol lives in the other modules of this package; docs/agents.md is the guide.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from modelyzer.kernel.errors import ConfigError

log = logging.getLogger("modelyzer")


def _overrides(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def _agent_keys(keys: Path | None, key_name: str | None, insecure: bool, command: str) -> Any:
    from modelyzer.plugins.agents.controller import insecure_warning
    from modelyzer.plugins.agents.keys import load_agent_keys

    if insecure:
        log.warning("%s", insecure_warning(command))
        return None
    if keys is None:
        raise ConfigError(f"{command}: --keys DIR is required (make keys with `modelyzer keys generate DIR`), "
                          "or --insecure on a trusted network")
    return load_agent_keys(keys, key_name)


@click.command()
@click.option("--controller", required=True, metavar="URL", help="The controller's address, e.g. tcp://host:5555.")
@click.option("--keys", "keys", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Keys directory: controller.key and this agent's key pair.  [default: –]")
@click.option("--key", "key_name", default=None, metavar="NAME",
              help="Which key pair of --keys to use (NAME.key_secret).  [default: agent, or the only one]")
@click.option("--gpus", default="all", show_default=True,
              help="GPUs to offer: all, none, or UUIDs/indices (comma-separated); one slot per GPU.")
@click.option("--slots", type=click.IntRange(min=1), default=None,
              help="CPU slots to offer on a host without (selected) GPUs.  [default: 1]")
@click.option("--name", default="", help="Name shown by the controller.  [default: the key name or host name]")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where slots keep their output repositories and logs.  [default: ./modelyzer-agent]")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Override a config key on this host (e.g. model_repository=/data/models); repeatable.")
@click.option("--max-silence", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Exit after this many seconds without the controller.")
@click.option("--insecure", is_flag=True, help="Plaintext, unauthenticated (trusted networks only).")
def agent(controller: str, keys: Path | None, key_name: str | None, gpus: str, slots: int | None, name: str,
          workdir: Path | None, settings: tuple[str, ...], max_silence: float, insecure: bool) -> None:
    """Run RunConfigs for a controller (`profile --agents`) on this host's GPUs or CPU slots."""
    from modelyzer.plugins.agents.agent import AgentDaemon, install_signal_handlers
    from modelyzer.plugins.agents.slots import discover_slots

    agent_keys = _agent_keys(keys, key_name, insecure, "agent")
    daemon = AgentDaemon(controller, agent_keys, discover_slots(gpus, slots), name=name, workdir=workdir,
                         overrides=_overrides(settings), max_silence=max_silence)
    install_signal_handlers(daemon)
    sys.exit(daemon.run())


@click.group()
def keys() -> None:
    """CURVE keys for the controller and its agents."""


@keys.command("generate")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--agents", "count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Agent key pairs to make (agent, or agent-1 … agent-N).")
def keys_generate(directory: Path, count: int) -> None:
    """Write controller and agent key pairs and the authorized_keys directory (existing files are kept)."""
    from modelyzer.plugins.agents.keys import generate_keys

    written = generate_keys(directory, count)
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo(f"{directory}: every key already exists")
    click.echo(f"controller: --agent-keys {directory}; agents: copy controller.key and one agent key pair "
               f"(NAME.key, NAME.key_secret) to each host and run `modelyzer agent --keys DIR --key NAME`")


@click.group()
def agents() -> None:
    """Look at the agents of a running controller."""


@agents.command("status")
@click.option("--controller", required=True, metavar="URL", help="The controller's address, e.g. tcp://host:5555.")
@click.option("--keys", "keys_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Keys directory with controller.key and an authorized key pair.  [default: –]")
@click.option("--key", "key_name", default=None, metavar="NAME", help="Which key pair of --keys to use.")
@click.option("--insecure", is_flag=True, help="The controller runs with --insecure.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for the answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def agents_status(controller: str, keys_dir: Path | None, key_name: str | None, insecure: bool, timeout: float,
                  as_json: bool) -> None:
    """Agents, slots, in flight, done and lost, as the controller sees them now."""
    from modelyzer.kernel.models import converter
    from modelyzer.plugins.agents.status import format_status, query_status

    report = query_status(controller, _agent_keys(keys_dir, key_name, insecure, "agents status"), timeout)
    click.echo(json.dumps(converter.unstructure(report), indent=2) if as_json else format_status(report))


__all__ = ["agent", "agents", "keys"]
