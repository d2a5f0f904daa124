#!/usr/bin/env bash
# GPU check of cuEBM, for a machine with an NVIDIA GPU. It runs, each stage with a time limit
# and all of it within 8 minutes:
#   0. nvidia-smi (the GPU, driver and memory)
#   1. the binaries: from a bundle made by tools/gpu-bundle.sh (preferred: nothing to build;
#      its libraries are checked with ldd first), else a build here for the `native` CUDA
#      architecture (GoogleTest and nlohmann-json from the bundle's src/ when the machine has
#      none; cairo, CLI11 and Google Benchmark are optional)
#   2. every GPU test (cuebm_tests --gtest_filter='*Cuda*': CudaDevice, CudaPhilox, CudaEnergy,
#      CudaLangevin, CudaCD, CudaSmall, StreamApiCuda, CustomEnergyCuda and
#      CliTest.DeviceCudaEvalSampleAndTrain); a test skipped for want of a device counts as a
#      failure here
#   3. the cuebm command: sample / train / eval with --device cuda
#   4. the CUDA examples (cuda_app, custom_energy_cuda, the tutorial trainer with --device cuda)
#   5. compute-sanitizer memcheck, racecheck, synccheck and initcheck on the small cases
#      (CudaSmall.* and the small StreamApiCuda / CustomEnergyCuda tests)
#   6. the benchmarks: bench_cuebm --benchmark_filter=CUDA, then PyTorch eager on the same GPU
#      (bench/torch_langevin.py --device cuda, with the machine's own torch; no torch is
#      "not present", not a failure), and the side-by-side table (bench/compare_table.py)
#   7. the cuebm command's other tests (CliTest.*, mostly on the CPU: last, as time allows)
#   8. a summary table, printed last
# Any failure, time-out, skipped GPU test or missing tool is reported in the table and makes the
# script exit non-zero.
#
# The one call a GPU session makes (device tool `run`, carry ["gpu-bundle"], timeout_s 560),
# after tools/gpu-bundle.sh has made gpu-bundle/ on the build machine:
#
#   bash gpu-bundle/run-gpu-check.sh
#
# Usage: tools/gpu-check.sh [--bundle DIR] [--build] [--out DIR] [--no-gpu]
#   --bundle DIR  run the binaries of this bundle (default: gpu-bundle/ at the repository root
#                 when it exists); gpu-bundle/run-gpu-check.sh passes its own folder
#   --build       build here even when a bundle is present
#   --out DIR     where the table and the logs go (default: $OUT when set, else a new folder
#                 under /tmp). It receives at most 6 files: gpu-check-table.txt,
#                 gpu-check-logs.tar.gz (every log), cuda-tests.log, bench-cuda.json,
#                 torch-cuda.jsonl, bench-compare.txt; they are refreshed after every stage, so
#                 a run cut short still returns what it did.
#   --no-gpu      carry on without a GPU (to try this script on a machine without one: every GPU
#                 stage then fails, and the table says why)
# Environment: CUEBM_PYTHON (the interpreter with torch; default: python3 on PATH, then
# /usr/bin/python3), CUEBM_COMPUTE_SANITIZER (default: compute-sanitizer on PATH or in
# $CUDA_HOME/bin), CUDA_HOME (default /usr/local/cuda), CUEBM_GPU_CHECK_ARCH (the CUDA
# architecture of a build here, default native), CUEBM_GPU_CHECK_BUDGET (seconds for all the
# stages, default 470; each stage gets the smaller of its own limit and what is left).
set -uo pipefail
START=$(date +%s)
DEADLINE=$((START + ${CUEBM_GPU_CHECK_BUDGET:-470}))  # 7 min 50 s unless told otherwise
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}

BUNDLE="" FORCE_BUILD=0 DEST=${OUT:-} NO_GPU=0
while (($#)); do
  case $1 in
    --bundle) BUNDLE=$(cd "$2" 2>/dev/null && pwd) || { echo "gpu-check: no folder $2" >&2; exit 2; }
      shift 2 ;;
    --build) FORCE_BUILD=1; shift ;;
    --out) DEST=$2; shift 2 ;;
    --no-gpu) NO_GPU=1; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# The source tree (for a build here): the repository this script is in, or the one the bundle
# sits in, or the current folder.
ROOT=""
for d in "$SCRIPT_DIR/.." "${BUNDLE:+$BUNDLE/..}" "$PWD"; do
  if [[ -n $d && -f $d/CMakeLists.txt ]] && grep -q "project(cuebm" "$d/CMakeLists.txt"; then
    ROOT=$(cd "$d" && pwd)
    break
  fi
done
if [[ -z $BUNDLE && -n $ROOT && -x $ROOT/gpu-bundle/bin/cuebm_tests ]]; then
  BUNDLE=$ROOT/gpu-bundle
fi

DEST=${DEST:-/tmp/cuebm-gpu-check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
LOGS=$(mktemp -d /tmp/cuebm-gpu-check-logs.XXXXXX)/gpu-check
mkdir -p "$LOGS"
NAMES=() STATUS=() SECONDS_USED=() FAILED=0 BENCH_SUMMARY="" INFO=()

record() {  # name status seconds
  NAMES+=("$1"); STATUS+=("$2"); SECONDS_USED+=("$3")
  case "$2" in ok | "not present"*) ;; *) FAILED=1 ;; esac
}

print_table() {
  echo
  echo "================ cuEBM GPU check ($(($(date +%s) - START)) s) ================"
  printf '%s\n' "${INFO[@]}"
  printf "%-36s %-30s %7s\n" stage result seconds
  for i in "${!NAMES[@]}"; do
    printf "%-36s %-30s %7s\n" "${NAMES[$i]}" "${STATUS[$i]}" "${SECONDS_USED[$i]}"
  done
  [[ -n $BENCH_SUMMARY ]] && printf "\n%s\n" "$BENCH_SUMMARY"
  if ((FAILED)); then echo "RESULT: FAILED (logs in $DEST)"; else echo "RESULT: OK"; fi
}

# The files that come back: refreshed after every stage.
publish() {
  print_table >"$DEST/gpu-check-table.txt" 2>&1
  tar -czf "$DEST/gpu-check-logs.tar.gz" -C "$(dirname "$LOGS")" gpu-check 2>/dev/null
  [[ -f $LOGS/CUDA_tests.log ]] && cp "$LOGS/CUDA_tests.log" "$DEST/cuda-tests.log"
  [[ -f $LOGS/bench-cuda.json ]] && cp "$LOGS/bench-cuda.json" "$DEST/bench-cuda.json"
  [[ -f $LOGS/torch-cuda.jsonl ]] && cp "$LOGS/torch-cuda.jsonl" "$DEST/torch-cuda.jsonl"
  [[ -f $LOGS/bench-compare.txt ]] && cp "$LOGS/bench-compare.txt" "$DEST/bench-compare.txt"
  return 0
}

# run NAME LIMIT_SECONDS CMD...: runs with the smaller of LIMIT and the time left; the output
# goes to $LOGS/NAME.log, of which the last lines are shown. CMD may be a shell function of this
# script (it then runs in a child bash, seeing the exported variables).
run() {
  local name=$1 limit=$2
  shift 2
  local now left t0 rc log
  now=$(date +%s)
  left=$((DEADLINE - now))
  ((left < limit)) && limit=$left
  log="$LOGS/$(echo "$name" | tr ' /()*:' '______').log"
  LAST_LOG=$log
  if ((limit < 5)); then
    echo "=== $name: NOT RUN, the 8-minute budget is spent" | tee "$log"
    record "$name" "not run (time budget)" 0
    publish
    return 1
  fi
  echo "=== $name (limit ${limit}s)"
  echo "=== $name (limit ${limit}s): $*" >"$log"
  t0=$(date +%s)
  if declare -F "$1" >/dev/null; then
    # shellcheck disable=SC2163  # exports the function $1 names
    export -f "$1"
    timeout --kill-after=10 "$limit" bash -c '"$@"' bash "$@" >>"$log" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  fi
  rc=$?
  local dt=$(($(date +%s) - t0))
  tail -n 4 "$log" | cut -c1-160
  if ((rc == 0)); then
    record "$name" ok "$dt"
  elif ((rc == 124 || rc == 137)); then
    echo "=== $name: TIMED OUT after ${limit}s (log: $log)"
    record "$name" "TIMEOUT" "$dt"
  else
    echo "=== $name: FAILED with exit code $rc (log: $log)"
    record "$name" "FAILED (rc $rc)" "$dt"
  fi
  publish
  return $rc
}

# A GPU test stage that passed although its GPU tests skipped for want of a device is a failure.
no_device_skips() {  # name log
  if grep -q "no CUDA device" "$2"; then
    echo "gpu-check: $1: GPU tests skipped for want of a device:"
    grep -m3 "no CUDA device" "$2"
    local i=$((${#STATUS[@]} - 1))
    [[ ${STATUS[$i]} == ok ]] && STATUS[$i]="FAILED (skipped: no device)" && FAILED=1
    publish
  fi
}

finish() {
  publish
  print_table
  echo "gpu-check: results in $DEST (all logs: $LOGS)"
}
trap finish EXIT

# ---- 0. The GPU itself. ----
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >"$LOGS/nvidia-smi.log" 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader \
    >>"$LOGS/nvidia-smi.log" 2>&1
  INFO+=("GPU: $(tail -n 1 "$LOGS/nvidia-smi.log")")
  record "nvidia-smi" ok 0
else
  echo "gpu-check: nvidia-smi does not list a GPU (see $LOGS/nvidia-smi.log)"
  record "nvidia-smi" "FAILED (no GPU)" 0
  ((NO_GPU)) || exit 1
fi
INFO+=("host: $(uname -m), $(nproc) cores, $(ldd --version 2>/dev/null | head -1)")

# ---- 1. The binaries: the bundle, else a build here. ----
MODE=build
RUNENV=(env)
if [[ -n $BUNDLE && $FORCE_BUILD == 0 ]]; then
  MODE=bundle
  BIN=$BUNDLE/bin
  INFO+=("bundle: $BUNDLE ($(sed -n 's/^commit: //p' "$BUNDLE/MANIFEST.txt" 2>/dev/null))")
  # cudart, cuBLAS and cuRAND come from the machine's CUDA toolkit, the rest from the bundle.
  CUDA_LIBS=""
  for d in "$CUDA_HOME/lib64" "$CUDA_HOME/targets/x86_64-linux/lib"; do
    [[ -d $d ]] && CUDA_LIBS+="$d:"
  done
  BUNDLE_LD="${CUDA_LIBS}$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  RUNENV=(env "LD_LIBRARY_PATH=$BUNDLE_LD" "CUEBM_CLI_PATH=$BIN/cuebm"
          "CUEBM_TEST_DATA_DIR=$BUNDLE")
  # cairo's text needs a font: without a fontconfig configuration here, use the bundle's.
  if [[ ! -f /etc/fonts/fonts.conf && -d $BUNDLE/fonts ]]; then
    cat >"$LOGS/fonts.conf" <<EOF
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig><dir>$BUNDLE/fonts</dir><cachedir>$LOGS/fontconfig-cache</cachedir></fontconfig>
EOF
    RUNENV+=("FONTCONFIG_FILE=$LOGS/fonts.conf")
  fi
  # Every library must resolve in the bundle or be an allowed one (CUDA toolkit, driver, glibc),
  # and the binaries must start (a glibc older than the build machine's would stop them).
  check_bundle() {
    local f name where bad=0
    local allowed='^(linux-vdso|libcuda\.|libcudart\.|libcublas\.|libcublasLt\.|libcurand\.|libc\.|libm\.|libmvec\.|libpthread\.|libdl\.|librt\.|ld-linux)'
    for f in "$BUNDLE"/bin/*; do
      echo "--- $f"
      LD_LIBRARY_PATH=$BUNDLE_LD ldd "$f" 2>&1
      while read -r name _ where _; do
        if [[ $where == not ]]; then
          echo "NOT FOUND: $(basename "$f") needs $name"
          bad=1
        elif [[ $where != "$BUNDLE"/lib/* && ! $name =~ $allowed ]]; then
          echo "OUTSIDE THE BUNDLE: $(basename "$f"): $name => $where"
          bad=1
        fi
      done < <(LD_LIBRARY_PATH=$BUNDLE_LD ldd "$f" 2>&1 | grep '=>')
    done
    echo "--- cuebm_tests --gtest_list_tests"
    LD_LIBRARY_PATH=$BUNDLE_LD "$BUNDLE/bin/cuebm_tests" --gtest_list_tests >/dev/null || bad=1
    ((bad == 0)) && echo "every library resolves in the bundle or is an allowed one"
    return $bad
  }
  export BUNDLE BUNDLE_LD
  if ! run "bundle libraries (ldd)" 30 check_bundle; then
    echo "gpu-check: the bundle does not run here:"
    grep -E "OUTSIDE|NOT FOUND|GLIBC|error" "$LAST_LOG" | head -5
    if [[ -n $ROOT ]]; then
      echo "gpu-check: building here instead"
      MODE=build
    else
      exit 1
    fi
  fi
fi

if [[ $MODE == build ]]; then
  [[ -n $ROOT ]] || { echo "gpu-check: no bundle and no source tree"; record "source tree" "FAILED (missing)" 0; exit 1; }
  BUILD=$ROOT/build-gpu
  BIN=$BUILD/bin
  RUNENV=(env "CUEBM_CLI_PATH=$BIN/cuebm")
  INFO+=("build: $BUILD (CUDA architecture ${CUEBM_GPU_CHECK_ARCH:-native})")
  CONFIG=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCUEBM_ENABLE_CUDA=ON
          "-DCUEBM_CUDA_ARCHITECTURES=${CUEBM_GPU_CHECK_ARCH:-native}")
  [[ -f $BUILD/CMakeCache.txt ]] || ! command -v ninja >/dev/null 2>&1 || CONFIG+=(-G Ninja)
  # What the machine lacks comes from the bundle's sources when there is one.
  for b in "$BUNDLE" "$ROOT/gpu-bundle"; do
    [[ -n $b && -f $b/src/googletest/CMakeLists.txt ]] &&
      CONFIG+=("-DCUEBM_GTEST_SOURCE_DIR=$b/src/googletest") && break
  done
  for b in "$BUNDLE" "$ROOT/gpu-bundle"; do
    [[ -n $b && -f $b/src/nlohmann_json/nlohmann/json.hpp ]] &&
      CONFIG+=("-DCUEBM_NLOHMANN_JSON_INCLUDE_DIR=$b/src/nlohmann_json") && break
  done
  PATH=$PATH:$CUDA_HOME/bin
  run "configure" 90 cmake "${CONFIG[@]}" || exit 1
  if ! grep -q "CUDA backend ON" "$LOGS/configure.log"; then
    echo "gpu-check: CMake did not enable the CUDA backend (nvcc not found?)"
    record "CUDA backend enabled" "FAILED" 0
    exit 1
  fi
  # CMake releases that do not know nvcc's C++20 flag leave it out: add it then.
  if grep -q '\.cu"' "$BUILD/compile_commands.json" 2>/dev/null &&
     ! grep '\.cu"' "$BUILD/compile_commands.json" | grep -q -- '-std=c++20'; then
    run "configure (nvcc -std=c++20)" 60 cmake "${CONFIG[@]}" -DCMAKE_CUDA_FLAGS=-std=c++20 || exit 1
  fi
  run "build" 300 cmake --build "$BUILD" -j "$(nproc)" || exit 1
fi
TESTS=$BIN/cuebm_tests
[[ -x $TESTS ]] || { echo "gpu-check: $TESTS is missing"; record "test binary" "FAILED (missing)" 0; exit 1; }

# ---- 2. GPU tests. ----
run "CUDA tests" 150 "${RUNENV[@]}" "$TESTS" --gtest_filter='*Cuda*'
no_device_skips "CUDA tests" "$LAST_LOG"

# ---- 3. The cuebm command. ----
if [[ -x $BIN/cuebm ]]; then
  cli_cuda() {
    local d=$LOGS/cli
    mkdir -p "$d"
    set -ex
    "$BIN/cuebm" sample --energy harmonic --dim 2 --chains 4096 --steps 500 --step-size 0.01 \
      --device cuda -o "$d/harmonic.npy"
    "$BIN/cuebm" train --device cuda --epochs 20 --figure-every 100 --progress none -o "$d/run"
    "$BIN/cuebm" sample --device cuda --model "$d/run/model.safetensors" --chains 1000 \
      --steps 200 --step-size 0.1 --noise-scale 0.1 -o "$d/samples.npy"
    "$BIN/cuebm" eval --device cuda --model "$d/run/model.safetensors" -i "$d/samples.npy" \
      -e "$d/energies.npy"
  }
  export -f cli_cuda
  export LOGS BIN
  run "cuebm --device cuda" 60 "${RUNENV[@]}" bash -c cli_cuda
else
  record "cuebm --device cuda" "not present (no CLI11)" 0
fi

# ---- 4. The CUDA examples. ----
for ex in cuda_app custom_energy_cuda; do
  if [[ -x $BIN/$ex ]]; then
    run "example $ex" 30 "${RUNENV[@]}" "$BIN/$ex"
    grep -q "no CUDA device" "$LAST_LOG" && STATUS[-1]="FAILED (no device)" && FAILED=1
  else
    record "example $ex" "FAILED (missing)" 0
  fi
done
if [[ -x $BIN/train_gaussian_mixture ]]; then
  run "example tutorial --device cuda" 60 "${RUNENV[@]}" "$BIN/train_gaussian_mixture" \
    --device cuda -o "$LOGS/tutorial"
else
  record "example tutorial --device cuda" "not present (no CLI11)" 0
fi

# ---- 5. compute-sanitizer on the small cases. ----
SMALL='CudaSmall.*:StreamApiCuda.EnergyAndGradientEqualHighLevelBitForBit'
SMALL+=':StreamApiCuda.LangevinEqualsLangevinSampleBitForBit:StreamApiCuda.TwoStreamsEqualTheSerialRun'
SMALL+=':StreamApiCuda.CdIterationGraphReplayEqualsDirectCalls:CustomEnergyCuda.HarmonicChainMatchesCpu'
CS=${CUEBM_COMPUTE_SANITIZER:-$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")}
if [[ -x $CS ]]; then
  for tool in memcheck racecheck synccheck initcheck; do
    extra=()
    [[ $tool == memcheck ]] && extra=(--leak-check full)
    limit=75
    [[ $tool == synccheck || $tool == initcheck ]] && limit=50
    run "$tool (small cases)" $limit "${RUNENV[@]}" "$CS" --tool "$tool" "${extra[@]}" \
      --error-exitcode 99 --print-limit 20 "$TESTS" --gtest_filter="$SMALL"
    no_device_skips "$tool" "$LAST_LOG"
  done
else
  echo "gpu-check: compute-sanitizer not found"
  record "compute-sanitizer" "FAILED (not found)" 0
fi

# ---- 6. Benchmarks: cuEBM, then PyTorch eager on the same GPU. ----
# The workloads compare.sh matches between the two (names as bench_cuebm spells them).
tutorial='mlp:2-64-64-1_relu'
workloads="Langevin/$tutorial/batch:(256/k:100|500/k:500|4096/k:100|65536/k:10)"
workloads+="|CD10/mlp:(2-64-64-1_relu|2-128-128-1_silu|32-128-128-1_silu)/batch:256"
workloads+="|(Energy|Gradient)/$tutorial/rows:(4096|65536)"
if [[ -x $BIN/bench_cuebm ]]; then
  run "bench_cuebm CUDA" 100 "${RUNENV[@]}" "$BIN/bench_cuebm" --benchmark_filter=CUDA \
    --cuebm_langevin=2-64-64-1:500:500 --benchmark_min_time=0.1 \
    --benchmark_out="$LOGS/bench-cuda.json" --benchmark_out_format=json
  if grep -q "Failed to match any benchmarks" "$LAST_LOG"; then
    STATUS[-1]="FAILED (no CUDA benchmarks)" && FAILED=1
  fi
else
  record "bench_cuebm CUDA" "not present (no Google Benchmark)" 0
fi
BENCH_DIR=${BUNDLE:+$BUNDLE/bench}
[[ -n $BENCH_DIR && -f $BENCH_DIR/torch_langevin.py ]] || BENCH_DIR=${ROOT:+$ROOT/bench}
PY=""
for p in ${CUEBM_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1; then PY=$p; break; fi
done
if [[ -z $BENCH_DIR || ! -f $BENCH_DIR/torch_langevin.py ]]; then
  record "torch_langevin.py --device cuda" "not present (no script)" 0
elif [[ -z $PY ]]; then
  record "torch_langevin.py --device cuda" "not present (no torch)" 0
else
  INFO+=("torch: $("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>&1)")
  # Python runs with the machine's own libraries (no bundle LD_LIBRARY_PATH).
  run "torch_langevin.py --device cuda" 100 "$PY" "$BENCH_DIR/torch_langevin.py" --device cuda \
    --filter "^($workloads)\$" --min-time 0.3
  grep '^{' "$LAST_LOG" >"$LOGS/torch-cuda.jsonl"
fi
if [[ -s $LOGS/bench-cuda.json && -f $BENCH_DIR/compare_table.py ]]; then
  TPY=${PY:-python3}
  if "$TPY" "$BENCH_DIR/compare_table.py" --cuebm "$LOGS/bench-cuda.json" --device cuda \
    --torch "$LOGS/torch-cuda.jsonl" >"$LOGS/bench-compare.txt" 2>&1; then
    BENCH_SUMMARY=$(cat "$LOGS/bench-compare.txt")
  else
    BENCH_SUMMARY="compare_table.py failed: $(tail -n 2 "$LOGS/bench-compare.txt")"
  fi
fi

# ---- 7. The cuebm command's tests (mostly CPU). ----
if [[ -x $BIN/cuebm ]]; then
  run "CLI tests" 90 "${RUNENV[@]}" "$TESTS" --gtest_filter='CliTest.*'
else
  record "CLI tests" "not present (no CLI11)" 0
fi
exit $FAILED
