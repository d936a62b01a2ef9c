#!/usr/bin/env bash
# Idempotent set-up of NVIDIA DALI for the Triton Python backend (issue 13, part 2): nvidia-dali-cuda120 (its CPU
# pipelines run with device_id=None, no GPU needed) and Pillow (the JPEG input data made by the DALI example's
# set-up) go into .venv-triton, the venv whose python3 the Python backend's stub runs (see .ci/setup's Triton
# section), next to its numpy and onnxruntime.
# It also makes the generated files of examples/triton-cpu/dali (the ONNX model, perf_analyzer's JPEG and tensor
# input data). When the install is impossible (no registry), it says so and exits 0: the DALI tests skip.
# Run from anywhere as `bash .ci/setup.d/dali.sh`; re-running installs nothing. .venv-triton is made by .ci/setup.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
log() { printf '[setup dali] %s\n' "$*"; }

REQUIREMENTS="nvidia-dali-cuda120 pillow onnx"
MARKER=.venv-triton/.modelyzer-dali-installed
[ -x .venv-triton/bin/python ] || { log ".venv-triton is missing: run .ci/setup first"; exit 1; }
if [ "$(cat "$MARKER" 2>/dev/null)" != "$REQUIREMENTS" ]; then
  log "installing $REQUIREMENTS into .venv-triton"
  # shellcheck disable=SC2086
  .venv-triton/bin/pip install -q --disable-pip-version-check $REQUIREMENTS \
    || { log "cannot install $REQUIREMENTS: the DALI example and its tests are skipped"; exit 0; }
  printf '%s\n' "$REQUIREMENTS" > "$MARKER"
fi
.venv-triton/bin/python -c "import nvidia.dali, PIL, onnxruntime" \
  || { log "nvidia.dali does not import in .venv-triton"; exit 1; }
# the example's generated files (examples/triton-cpu/dali/make_example.py): the ONNX model, the JPEG/tensor input data
.venv-triton/bin/python examples/triton-cpu/dali/make_example.py
log "ready: nvidia-dali $(.venv-triton/bin/python -c 'import nvidia.dali as d; print(d.__version__)') in .venv-triton"
