#!/usr/bin/env bash
# Sets up and builds cuEBM, then runs the whole test suite through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh "$@"
build=${CUEBM_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
# The Python package: pip install . into a venv under the build folder, then its pytest suite.
tools/python-test.sh "$build"
