#!/usr/bin/env bash
# Build the modelyzer agent/controller image (deploy/docker/Dockerfile.agent) with the docker CLI ($DOCKER_HOST).
#
#   deploy/docker/build.sh [-t TAG] [--base IMAGE] [--python PY] [--perf-analyzer PATH] [--online]
#
#   -t TAG                image name (default: modelyzer-agent:<version>)
#   --base IMAGE          the base image (default: python:3.11-slim-bookworm; any image with Python >= 3.11,
#                         `python3 -m venv` and /bin/sh)
#   --python PY           the Python that builds the wheels: same version as the base's (default: python3)
#   --perf-analyzer PATH  put this perf_analyzer binary into the image (/opt/modelyzer-tools/bin, on PATH) with
#                         the libraries it needs beyond glibc and libstdc++ (e.g. libcudart, libb64), found
#                         with ldd here and reached through an $ORIGIN rpath (patchelf)
#   --online              let pip in the build fetch what the wheel directory lacks (the build needs network)
#
# The wheels (modelyzer's and every dependency's, `pip wheel`) are made on this host into a temporary build
# context; the image build itself runs with --network none. Without buildx the classic builder is used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="python3"; base="python:3.11-slim-bookworm"; tag=""; pip_index="--no-index"; network="none"; pa=""
while [ $# -gt 0 ]; do
  case "$1" in
    -t|--tag) tag="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --perf-analyzer) pa="$2"; shift 2 ;;
    --online) pip_index=""; network="default"; shift ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -1)"
tag="${tag:-modelyzer-agent:$version}"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
started=$SECONDS
echo "== wheels ($python)"
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$context/wheels" "$root"
echo "   $(ls "$context/wheels" | wc -l) wheels, $(du -sh "$context/wheels" | cut -f1) in $((SECONDS - started)) s"
mkdir -p "$context/tools/bin" "$context/tools/lib"
if [ -n "$pa" ]; then
  [ -x "$pa" ] || { echo "build.sh: --perf-analyzer $pa is not an executable" >&2; exit 2; }
  command -v patchelf >/dev/null || { echo "build.sh: --perf-analyzer needs patchelf (apt-get install patchelf)" >&2; exit 2; }
  cp "$pa" "$context/tools/bin/perf_analyzer"
  ldd "$pa" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' \
    | { grep -v -E '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s)\.so' || true; } \
    | while read -r lib; do cp -L "$lib" "$context/tools/lib/"; done
  patchelf --set-rpath '$ORIGIN/../lib' "$context/tools/bin/perf_analyzer"
  echo "   perf_analyzer with $(ls "$context/tools/lib" | tr '\n' ' ')"
fi
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi
echo "== image $tag (base $base)"
docker build --file "$root/deploy/docker/Dockerfile.agent" --tag "$tag" --network "$network" \
  --build-arg BASE="$base" --build-arg PIP_INDEX="$pip_index" "$context"
echo "built $tag in $((SECONDS - started)) s: $(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
