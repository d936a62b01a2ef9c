"""The output model repository's preparation: what is reused, what is wiped with override, what is never deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.repository import MARKER, prepare_output_repository


def test_a_file_at_the_path_is_never_deleted_even_with_override(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("precious")
    for override in (False, True):
        with pytest.raises(ConfigError, match="is a file, not a directory; modelyzer will not delete it") as info:
            prepare_output_repository(target, override)
        assert "\n" not in str(info.value)
    assert target.read_text() == "precious"
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="is a file"):
        prepare_output_repository(link, True)
    assert target.read_text() == "precious"


def test_override_wipes_a_directory_but_only_unlinks_a_link_to_one(tmp_path: Path) -> None:
    kept = tmp_path / "elsewhere"
    kept.mkdir()
    (kept / "model.onnx").write_text("weights")
    link = tmp_path / "out"
    link.symlink_to(kept)
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        prepare_output_repository(link, False)
    out = prepare_output_repository(link, True)
    assert out.is_dir() and not out.is_symlink() and (out / MARKER).exists()
    assert (kept / "model.onnx").read_text() == "weights"  # the directory the link pointed to is untouched
    full = tmp_path / "full"
    full.mkdir()
    (full / "old").write_text("x")
    prepare_output_repository(full, True)
    assert sorted(p.name for p in full.iterdir()) == [MARKER]
