#!/usr/bin/env bash
# Set up everything (idempotent) and run lint, type checks and the whole test suite, real servers included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/setup
echo "== ruff"; .venv/bin/ruff check .
# mypy sees the project as the `modelyzer` package (through symlinks), so imports across kernel/plugins/frontends
# are type-checked instead of resolving to Any.
mkdir -p .tools/mypy/modelyzer
for d in kernel plugins frontends; do ln -sfn "$PWD/$d" ".tools/mypy/modelyzer/$d"; done
echo "== mypy"
MYPYPATH=.tools/mypy .venv/bin/mypy -p modelyzer.kernel -p modelyzer.plugins -p modelyzer.frontends
MYPYPATH=.tools/mypy .venv/bin/mypy contrib/mlserver/modelyzer_mlserver
MYPYPATH=.tools/mypy .venv/bin/mypy contrib/transformers_serve/modelyzer_transformers_serve
MYPYPATH=.tools/mypy .venv/bin/mypy contrib/model_tools/modelyzer_model_tools
echo "== pytest"; .venv/bin/python -m pytest -q -ra -p no:cacheprovider "$@"
