#!/usr/bin/env bash
# Installs cuEBM from a configured build folder to a temporary prefix, then configures, builds
# and runs tests/consumer against the installed package (find_package(cuebm)).
#   tools/consumer-check.sh [build-dir]   (default: $CUEBM_BUILD_DIR or build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-${CUEBM_BUILD_DIR:-build}}
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  echo "consumer-check: '$build' is not a configured build folder (run tools/setup.sh)" >&2
  exit 2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cuebm-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cmake --build "$build" --target cuebm cuebm_cli -j "$(nproc)"
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S tests/consumer -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/build" -j "$(nproc)"
"$tmp/build/consumer" "$tmp/model.safetensors"
"$tmp/prefix/bin/cuebm" eval --model "$tmp/model.safetensors" --help >/dev/null
echo "consumer-check: OK (installed to a temporary prefix, built and ran tests/consumer)"
