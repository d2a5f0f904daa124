#!/usr/bin/env bash
# Sets up and builds cuEBM, then runs the whole test suite through CTest (the Python package's
# pytest suite included: the test python.pytest runs tools/python-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh "$@"
build=${CUEBM_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
