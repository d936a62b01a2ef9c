"""The config keys of the `transformers_serve` launcher, and finding the `transformers` CLI they name.

- `transformers_serve_path`: the `transformers` executable (transformers[serving] 5.x) that runs `transformers serve`.
  Empty (the default): `.venv-llm/bin/transformers` in the current directory or above this package (the venv that
  `bash .ci/setup.d/llm-target.sh` makes), else `transformers` on PATH.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import attrs

from modelyzer.kernel.errors import LaunchError

PATH_KEY = "transformers_serve_path"
SETUP_HINT = "bash .ci/setup.d/llm-target.sh"
VENV_CLI = Path(".venv-llm") / "bin" / "transformers"


@attrs.frozen
class TransformersServeSettings:
    """Keys users set in YAML or as `--kebab-case` flags; read with `config.settings(TransformersServeSettings)`."""

    transformers_serve_path: str = attrs.field(
        default="",
        metadata={
            "help": "The `transformers` CLI (transformers[serving] 5.x) the transformers_serve launcher runs as "
            "`transformers serve`; empty: .venv-llm/bin/transformers (made by `bash .ci/setup.d/llm-target.sh`), "
            "else `transformers` on PATH."
        },
    )


def resolve_cli(configured: str) -> Path:
    """The `transformers` executable to run; LaunchError (one line, naming the key and the set-up) if none."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise LaunchError(
                f"{PATH_KEY}={configured!r} is not an executable; point it at the `transformers` CLI of a "
                f"transformers[serving] 5.x venv, or run `{SETUP_HINT}` and leave it empty"
            )
        return Path(found)
    here = Path(__file__).resolve().parents
    for candidate in [Path.cwd() / VENV_CLI, *(parent / VENV_CLI for parent in here)]:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("transformers")
    if found:
        return Path(found)
    raise LaunchError(
        f"`transformers serve` not found: run `{SETUP_HINT}` (creates .venv-llm) or set {PATH_KEY} to the "
        "`transformers` CLI of a transformers[serving] 5.x venv"
    )
