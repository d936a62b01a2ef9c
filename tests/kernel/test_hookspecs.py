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


def test_every_hook_is_named_in_a_test_or_plugin() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_hookspecs.py")
    sources += "\n".join(p.read_text() for p in (ROOT / "plugins").glob("*.py"))
    sources += "\n".join(p.read_text() for p in (ROOT / "kernel").glob("*.py") if p.name != "hookspecs.py")
    for name in HOOKS:
        assert name in sources, f"hook {name} is never called or implemented"
