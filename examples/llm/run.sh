#!/usr/bin/env bash
# The LLM quick start: set everything up (idempotent) and profile a real token-generating model on CPU — a tiny
# Llama (random weights, tokenizer trained locally at set-up) served by `transformers serve` with token streaming,
# measured by genai-perf. Results land in examples/llm/output/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/../../.ci/setup"
cd "$HERE"
exec ../../.venv/bin/modelyzer profile -f config.yaml "$@"
