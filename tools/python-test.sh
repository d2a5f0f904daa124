#!/usr/bin/env bash
# Builds the Python package (python/, `pip install .`) into a virtual environment under the build
# folder and runs its pytest suite against the cuebm command built there. Debian's python3 (with
# python3-numpy, python3-torch and python3-pytest) is the interpreter; pip fetches nanobind and
# scikit-build-core from PyPI; when PyPI is unreachable it says so and exits with 77, which CTest
# (the test python.pytest of tests/CMakeLists.txt, which runs this script) reports as skipped.
# The module is built CPU-only unless CUEBM_PYTHON_CUDA=ON: its CUDA path needs a GPU to run, and
# nvcc would add minutes to every CI run (tools/python-emulated-test.sh runs the CUDA-tensor path
# on the emulated GPU). Usage: tools/python-test.sh [build folder] [pytest arguments (default:
# python/tests)]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath -m "${1:-${CUEBM_BUILD_DIR:-build}}")
python=/usr/bin/python3
venv=$build/python-venv

probe=$(mktemp -d)
if ! timeout 60 "$python" -m pip download --no-deps -q -d "$probe" nanobind >/dev/null 2>&1; then
  rm -rf "$probe"
  echo "python: SKIPPED - pip cannot reach PyPI for nanobind and scikit-build-core"
  exit 77
fi
rm -rf "$probe"

[[ -x $venv/bin/python ]] || "$python" -m venv --system-site-packages "$venv"
# nanobind in the venv too: python/tests/test_stubs.py reruns its stubgen on the installed module
# and compares with the stubs the install wrote (pip's isolated build fetches the same version).
"$venv/bin/pip" install -q --disable-pip-version-check nanobind
"$venv/bin/pip" install -q --disable-pip-version-check \
  --config-settings=build-dir="$build/python-build" \
  --config-settings=cmake.define.CUEBM_ENABLE_CUDA="${CUEBM_PYTHON_CUDA:-OFF}" \
  --config-settings=cmake.define.CUEBM_WERROR="${CUEBM_WERROR:-OFF}" .
pytest_args=("${@:2}")
[[ ${#pytest_args[@]} -gt 0 ]] || pytest_args=(python/tests)
CUEBM_CLI=${CUEBM_CLI:-$build/bin/cuebm} "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  "${pytest_args[@]}"
