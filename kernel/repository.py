"""The output model repository: one directory per config variant, laid out as Model Analyzer does.

- The first variant written for a model is a full copy of the source model directory with its config file
  rewritten.
- Later variants of the same model hold relative symlinks to the first variant's entries (version
  directories, labels, …) plus their own config file, so weights are stored once.
- `full_copy=False` (remote servers, which only need the config) writes the config file alone.

The "first variant" of a model is found on disk, not remembered, so a resumed profile keeps linking to the
copy it made before: it is the directory named `<model>_config_*` whose entries are real files, not links.
`name` inside the config is whatever the caller passes (Model Analyzer keeps the original model name).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.interfaces import ModelConfigCodec

VARIANT_INFIX = "_config_"
MARKER = ".modelyzer-output-repository"


def prepare_output_repository(path: Path, override: bool) -> Path:
    """Create the output repository; refuse to reuse a non-empty one unless `override` (then wipe it).

    A repository that modelyzer wrote itself (it holds a marker file) is reused as is, so re-running a profile
    to resume it needs no extra flag.
    """
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not path.is_dir():  # a file (or a link to one) is never deleted
        raise ConfigError(f"output_model_repository_path {path} is a file, not a directory; modelyzer will not "
                          "delete it, even with --override-output-model-repository: move it or choose another path")
    if (path / MARKER).exists() and not override:
        return path
    if path.exists() or path.is_symlink():
        empty = path.is_dir() and not path.is_symlink() and not any(path.iterdir())
        if not empty:
            if not override:
                raise ConfigError(
                    f"output_model_repository_path {path} already exists and is not empty; remove it, choose "
                    "another path, or pass --override-output-model-repository"
                )
            if path.is_symlink():
                path.unlink()  # the link goes; the directory it points to is left alone
            else:
                shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / MARKER).write_text("written by modelyzer; variants of the profiled models\n")
    except OSError as err:
        raise ConfigError(f"output_model_repository_path: cannot write {path} ({err.strerror}); give "
                          "--output-model-repository-path a writable directory") from None
    return path


def _is_full_copy(directory: Path, config_filename: str) -> bool:
    entries = [e for e in directory.iterdir() if e.name != config_filename]
    return bool(entries) and not any(e.is_symlink() for e in entries)


def find_first_variant(output_repo: Path, model_name: str, config_filename: str = "config.pbtxt") -> Path | None:
    """The variant directory of `model_name` that holds the real copy of the model's files, if any."""
    output_repo = Path(output_repo)
    if not output_repo.is_dir():
        return None
    prefix = model_name + VARIANT_INFIX
    for candidate in sorted(output_repo.iterdir()):
        if (
            candidate.name.startswith(prefix)
            and candidate.is_dir()
            and not candidate.is_symlink()
            and _is_full_copy(candidate, config_filename)
        ):
            return candidate
    return None


def write_variant(
    codec: ModelConfigCodec,
    source_model_dir: Path,
    output_repo: Path,
    variant_name: str,
    config: dict[str, Any],
    *,
    full_copy: bool,
    model_name: str | None = None,
) -> Path:
    """Write one variant directory `<output_repo>/<variant_name>` and return it (idempotent).

    `model_name` (default: the source directory's name) is the base model the variant belongs to; it is used
    to find the first variant whose files later variants link to.
    """
    source_model_dir = Path(source_model_dir)
    output_repo = Path(output_repo)
    variant_dir = output_repo / variant_name
    config_name = codec.filename
    model = model_name or source_model_dir.name
    if full_copy:
        if not source_model_dir.is_dir():
            raise ConfigError(f"model directory {source_model_dir} does not exist (model_repository)")
        first = find_first_variant(output_repo, model, config_name)
        if first is None or first == variant_dir:
            if not variant_dir.exists():
                shutil.copytree(source_model_dir, variant_dir)
        else:
            _link_entries(first, variant_dir, config_name)
    variant_dir.mkdir(parents=True, exist_ok=True)
    codec.write(config, variant_dir / config_name)
    return variant_dir


def _link_entries(first: Path, variant_dir: Path, config_name: str) -> None:
    variant_dir.mkdir(parents=True, exist_ok=True)
    for entry in sorted(first.iterdir()):
        if entry.name == config_name:
            continue
        link = variant_dir / entry.name
        if link.is_symlink() or link.exists():
            continue
        os.symlink(os.path.relpath(entry, variant_dir), link)
