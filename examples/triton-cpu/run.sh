#!/usr/bin/env bash
# The second quick start: set everything up (idempotent) and profile two Python-backend models on a real
# Triton Inference Server 2.51 (CPU) with the real perf_analyzer. Results land in examples/triton-cpu/output/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/../../.ci/setup"
cd "$HERE"
exec ../../.venv/bin/modelyzer profile -f config.yaml "$@"
