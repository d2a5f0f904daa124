#!/usr/bin/env bash
# The Python package's CUDA-tensor path on the emulated GPU: builds the module _cuebm inside an
# emulated-CUDA build folder (configured with -DCUEBM_CUDA_EMULATION=ON and built; only the
# bindings compile here) and runs python/tests/test_cuda_emulated.py against it, which must not
# skip. nanobind comes from the venv tools/python-test.sh made (default: build/python-venv); without
# one (PyPI unreachable) this exits with 77, like the suite's python.pytest.
# Usage: tools/python-emulated-test.sh [emulated build folder (build-emu)] [venv (build/python-venv)]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath -m "${1:-build-emu}")
venv=$(realpath -m "${2:-build/python-venv}")

if ! grep -q '^CUEBM_CUDA_EMULATION:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "python-emulated-test: $build is not an emulated-CUDA build folder (-DCUEBM_CUDA_EMULATION=ON)"
  exit 2
fi
if ! "$venv/bin/python" -m nanobind --cmake_dir >/dev/null 2>&1; then
  echo "python-emulated-test: SKIPPED - no venv with nanobind at $venv (tools/python-test.sh makes it)"
  exit 77
fi
cmake -S . -B "$build" -DCUEBM_BUILD_PYTHON=ON -DPython_EXECUTABLE="$venv/bin/python" >/dev/null
cmake --build "$build" -j "$(nproc)" --target _cuebm

# The package as installed: the Python sources next to the module just built.
package=$(mktemp -d)
trap 'rm -rf "$package"' EXIT
mkdir "$package/cuebm"
ln -s "$PWD"/python/cuebm/*.py "$package/cuebm/"
module=$(find "$build" -name '_cuebm*.so' -newer "$build/CMakeCache.txt" -print -quit)
[[ -n $module ]] || module=$(find "$build" -name '_cuebm*.so' -print -quit)
ln -s "$module" "$package/cuebm/"
CUEBM_REQUIRE_CUDA=1 PYTHONPATH="$package" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  python/tests/test_cuda_emulated.py
