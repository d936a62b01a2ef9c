"""docs/cli.md is the rendered `--help` of every command, and it is up to date."""

from __future__ import annotations

import click
import pytest

from modelyzer.frontends.cli.main import cli
from modelyzer.frontends.cli.reference import render_cli_reference
from tests.conftest import ROOT


def test_reference_has_a_section_per_command() -> None:
    text = render_cli_reference()
    assert "## `modelyzer`\n" in text
    for name in ("profile", "plugins"):
        assert name in cli.commands
        assert f"## `modelyzer {name}`\n" in text
        assert f"Usage: modelyzer {name} [OPTIONS]" in text
    assert "--profile-models" in text and "--json" in text


def test_reference_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = render_cli_reference()
    monkeypatch.setenv("COLUMNS", "300")
    assert render_cli_reference() == narrow


def test_reference_does_not_depend_on_commands_invoked_before() -> None:
    """click caches a command's help option from the first context that asks: invoked on its own (as a test may)
    it has `--help` only; the reference still shows the group's `-h, --help`."""
    from click.testing import CliRunner

    before = render_cli_reference()
    agent = cli.get_command(click.Context(cli), "agent")
    assert agent is not None
    assert "  --help " in CliRunner().invoke(agent, ["--help"]).output
    assert render_cli_reference() == before


def test_docs_cli_md_is_up_to_date() -> None:
    path = ROOT / "docs" / "cli.md"
    assert path.read_text(encoding="utf-8") == render_cli_reference(), (
        "docs/cli.md is stale; regenerate with `.venv/bin/python -m modelyzer.frontends.cli.reference > docs/cli.md`"
    )
