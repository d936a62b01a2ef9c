"""Meta-tests: every hook is documented in docs/plugins.md and exercised by at least one test."""

from __future__ import annotations

import inspect
from pathlib import Path

from modelyzer.kernel import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "modelyzer_spec")]


def test_hooks_exist_and_have_docstrings() -> None:
    assert len(HOOKS) >= 13
    for name in HOOKS:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_every_hook_is_documented() -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    for name in HOOKS:
        assert f"### {name}(" in doc, f"docs/plugins.md lacks a section for {name}"


def test_every_hook_is_exercised_by_a_test() -> None:
    """Each hook is implemented or called by test code (the throw-away plugins of the tests included)."""
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != "test_hookspecs.py")
    for name in HOOKS:
        assert name in sources, f"hook {name} is never implemented or called by a test"
