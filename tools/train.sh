#!/usr/bin/env bash
# Sets up and builds cuEBM, then trains the TorchEBM tutorial model (on the GPU when one is
# present, else the CPU) and writes its figures to out/tutorial. Arguments go to the trainer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build=${CUEBM_BUILD_DIR:-build}
exec "$build/bin/train_gaussian_mixture" --output out/tutorial "$@"
