#!/usr/bin/env bash
# Set up everything (idempotent) and run lint, type checks and the whole test suite, real servers included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/setup
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy kernel plugins frontends contrib/mlserver/modelyzer_mlserver
echo "== pytest"; .venv/bin/python -m pytest -q -ra -p no:cacheprovider "$@"
