#!/usr/bin/env bash
# Idempotent set-up of the two LLM load generators (issue 11), each in its own venv (their pins clash with ours:
# genai-perf pins optuna 3.6.1):
#   .venv-genai-perf/      genai-perf 0.0.16 (runs the perf_analyzer binary as a subprocess)
#   .venv-aiperf/          aiperf 0.13 (pure Python)
#   .tools/bin/genai-perf  a shim: perf_analyzer 2.51 (.tools/bin) on PATH, its libcudart dir (.tools/lib) on
#                          LD_LIBRARY_PATH
#   .tools/bin/aiperf      a shim running the venv's aiperf
# Run from anywhere as `bash .ci/setup.d/llm-loadgens.sh`; re-running installs nothing. perf_analyzer itself is
# installed by .ci/setup.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
log() { printf '[setup llm-loadgens] %s\n' "$*"; }

# venv <dir> <requirement> <command>: create the venv and install <requirement> (which must bring bin/<command>)
# unless the venv's marker file already names that requirement
venv() {
  local dir="$1" requirement="$2" command="$3"
  if [ "$(cat "$dir/.modelyzer-installed" 2>/dev/null)" != "$requirement" ]; then
    log "creating $dir ($requirement)"
    [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$requirement"
    [ -x "$dir/bin/$command" ] || { log "install of $requirement into $dir failed: no bin/$command"; exit 1; }
    printf '%s\n' "$requirement" > "$dir/.modelyzer-installed"
  fi
}

venv .venv-genai-perf "genai-perf==0.0.16" genai-perf
venv .venv-aiperf "aiperf==0.13.*" aiperf

mkdir -p .tools/bin
cat > .tools/bin/genai-perf <<SHIM
#!/bin/sh
# genai-perf 0.0.16 of .venv-genai-perf (written by .ci/setup.d/llm-loadgens.sh). It runs perf_analyzer as a
# subprocess: the setup's perf_analyzer 2.51 comes first on PATH, its libcudart directory on LD_LIBRARY_PATH.
export PATH="$ROOT/.tools/bin:\$PATH"
export LD_LIBRARY_PATH="$ROOT/.tools/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$ROOT/.venv-genai-perf/bin/genai-perf" "\$@"
SHIM
cat > .tools/bin/aiperf <<SHIM
#!/bin/sh
# aiperf 0.13 of .venv-aiperf (written by .ci/setup.d/llm-loadgens.sh).
exec "$ROOT/.venv-aiperf/bin/aiperf" "\$@"
SHIM
chmod +x .tools/bin/genai-perf .tools/bin/aiperf

.tools/bin/genai-perf --version >/dev/null 2>&1 || .tools/bin/genai-perf --help >/dev/null 2>&1 \
  || { log "genai-perf does not run: $(.tools/bin/genai-perf --help 2>&1 | tail -3)"; exit 1; }
.tools/bin/aiperf --version >/dev/null 2>&1 || .tools/bin/aiperf --help >/dev/null 2>&1 \
  || { log "aiperf does not run: $(.tools/bin/aiperf --help 2>&1 | tail -3)"; exit 1; }
log "ready: .tools/bin/genai-perf, .tools/bin/aiperf"
