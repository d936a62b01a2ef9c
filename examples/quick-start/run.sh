#!/usr/bin/env bash
# The quick start: set everything up (idempotent) and profile the add_sub ONNX model on a real MLServer
# with the real perf_analyzer. Results land in examples/quick-start/output/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/../../.ci/setup"
cd "$HERE"
exec ../../.venv/bin/modelyzer profile -f config.yaml "$@"
