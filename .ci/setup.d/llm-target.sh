#!/usr/bin/env bash
# Idempotent set-up of the real token-generating LLM target on CPU (issue 11):
#   .venv-llm/                          torch 2.13.0 (CPU wheel) + transformers[serving] 5.25 + tokenizers
#   .tools/bin/transformers-llm         a shim running that venv's `transformers` CLI (e.g. `transformers-llm serve`)
#   examples/llm/model_repository/tiny_llama/
#                                       a tiny random-weight Llama + a byte-level BPE tokenizer trained here on the
#                                       repo's own docs (examples/llm/make_model.py; no model hub download),
#                                       rebuilt when the script or the docs change
# Run from anywhere as `bash .ci/setup.d/llm-target.sh`; re-running installs and rebuilds nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
log() { printf '[setup llm-target] %s\n' "$*"; }

# --- the venv: torch==2.13.0 takes the CPU wheel on this machine's disk (plain `torch` pulls a CUDA build) ---
if [ ! -f .venv-llm/.llm-installed ]; then
  log "creating .venv-llm (torch 2.13.0 CPU, transformers[serving] 5.25, tokenizers)"
  [ -x .venv-llm/bin/python ] || "$PY" -m venv .venv-llm
  .venv-llm/bin/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv-llm/bin/pip install -q "torch==2.13.0" "transformers[serving]==5.25.*" tokenizers 2>&1 | grep -v "^WARNING: Location" || true
  .venv-llm/bin/python -c "import torch, transformers, tokenizers" || { log "install of .venv-llm failed"; exit 1; }
  touch .venv-llm/.llm-installed
fi

# --- the shim: the venv's `transformers` CLI, offline (no hub lookups) ---
mkdir -p .tools/bin
cat > .tools/bin/transformers-llm <<SHIM
#!/bin/sh
# The \`transformers\` CLI of .venv-llm (written by .ci/setup.d/llm-target.sh), offline: nothing comes from a hub.
export HF_HUB_OFFLINE=1
exec "$ROOT/.venv-llm/bin/transformers" "\$@"
SHIM
chmod +x .tools/bin/transformers-llm

# --- the model: deterministic; rebuilt only when its inputs (the script, docs/*.md, README.md) change ---
MODEL_DIR=examples/llm/model_repository/tiny_llama
WANT="$("$PY" examples/llm/make_model.py --digest)"
if [ "$(cat "$MODEL_DIR/.made" 2>/dev/null)" != "$WANT" ]; then
  log "making $MODEL_DIR (tiny Llama, tokenizer trained on docs/*.md)"
  HF_HUB_OFFLINE=1 .venv-llm/bin/python examples/llm/make_model.py --out "$MODEL_DIR"
  echo "$WANT" > "$MODEL_DIR/.made"
fi
log "ready: .tools/bin/transformers-llm serve $MODEL_DIR --device cpu"
