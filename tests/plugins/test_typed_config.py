"""Plugins take the typed ProfileConfig: no `config: Any`, no private config-reading helpers, no restated defaults.

Every default lives once, in kernel/config_fields.py; a plugin that reads `getattr(config, key, default)` would
state a second default (and hide a typo in `key`), so this test fails on any of these forms.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "contrib").rglob("*.py"), *(ROOT / "frontends").rglob("*.py")])
FORBIDDEN = {
    "an untyped config parameter": re.compile(r"\bconfig: Any\b"),
    "a private config reader": re.compile(r"def _cfg\("),
    "a restated default": re.compile(r"getattr\((self\.)?(_)?config, "),
}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_read_the_typed_config(path: Path) -> None:
    text = path.read_text()
    found = [f"{what} ({m.group(0)!r}, line {text[:m.start()].count(chr(10)) + 1})"
             for what, pattern in FORBIDDEN.items() for m in pattern.finditer(text)]
    assert not found, f"{path.relative_to(ROOT)}: {'; '.join(found)}"


def test_the_check_is_armed(tmp_path: Path) -> None:
    sample = "def f(config: Any):\n    return getattr(config, 'x', 1)\n"
    assert all(pattern.search(sample) for what, pattern in FORBIDDEN.items() if what != "a private config reader")
