#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (run from anywhere; works in the repository root):
#   1. configure a Release build for sm_90 in build-gpu and build it
#   2. the CUDA tests (cuebm_tests --gtest_filter='Cuda*'); a skip counts as a failure here
#   3. compute-sanitizer memcheck and racecheck on the small case (CudaSmall.*)
#   4. the GPU benchmarks when bench/ provides them (bench_cuebm --benchmark_filter=CUDA,
#      bench/torch_langevin.py --device cuda)
#   5. a summary table, printed last
# The whole run stays under 8 minutes (each step gets what is left of the budget). Every step's
# output is kept in build-gpu/gpu-check/; any failure, time-out or missing tool is reported in the
# table and makes the script exit non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=$ROOT/build-gpu
LOGS=$BUILD/gpu-check
mkdir -p "$LOGS"
START=$(date +%s)
DEADLINE=$((START + 470))  # 7 min 50 s
JOBS=$(nproc 2>/dev/null || echo 4)
NAMES=() STATUS=() SECONDS_USED=() FAILED=0

record() {  # name status seconds
  NAMES+=("$1"); STATUS+=("$2"); SECONDS_USED+=("$3")
  case "$2" in ok | "not present") ;; *) FAILED=1 ;; esac
}

# run NAME LIMIT_SECONDS CMD...: runs with the smaller of LIMIT and the time left.
run() {
  local name=$1 limit=$2
  shift 2
  local now left t0 rc log
  now=$(date +%s)
  left=$((DEADLINE - now))
  ((left < limit)) && limit=$left
  log="$LOGS/$(echo "$name" | tr ' /' '__').log"
  if ((limit < 5)); then
    echo "=== $name: NOT RUN, the 8-minute budget is spent" | tee "$log"
    record "$name" "not run (time budget)" 0
    return 1
  fi
  echo "=== $name (limit ${limit}s): $*"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  local dt=$(($(date +%s) - t0))
  tail -n 15 "$log"
  if ((rc == 0)); then
    record "$name" ok "$dt"
  elif ((rc == 124 || rc == 137)); then
    echo "=== $name: TIMED OUT after ${limit}s (log: $log)"
    record "$name" "TIMEOUT" "$dt"
  else
    echo "=== $name: FAILED with exit code $rc (log: $log)"
    record "$name" "FAILED (rc $rc)" "$dt"
  fi
  return $rc
}

print_table() {
  echo
  echo "================ cuEBM GPU check ($(($(date +%s) - START)) s) ================"
  printf "%-34s %-24s %8s\n" step result seconds
  for i in "${!NAMES[@]}"; do
    printf "%-34s %-24s %8s\n" "${NAMES[$i]}" "${STATUS[$i]}" "${SECONDS_USED[$i]}"
  done
  [[ -n "${BENCH_SUMMARY:-}" ]] && printf "%s\n" "$BENCH_SUMMARY"
  if ((FAILED)); then echo "RESULT: FAILED (logs in $LOGS)"; else echo "RESULT: OK"; fi
}
trap print_table EXIT

# 0. The GPU itself.
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >"$LOGS/nvidia-smi.log" 2>&1; then
  echo "gpu-check: nvidia-smi does not list a GPU (see $LOGS/nvidia-smi.log)"
  record "nvidia-smi" "FAILED (no GPU)" 0
  exit 1
fi
cat "$LOGS/nvidia-smi.log"
record "nvidia-smi" ok 0

# 1. Configure and build. CMake releases that do not know nvcc's C++20 flag leave it out: add it
#    then (detected from the compile commands).
CONFIG=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCUEBM_ENABLE_CUDA=ON
        -DCUEBM_CUDA_ARCHITECTURES=90)
run "configure" 90 cmake "${CONFIG[@]}" || exit 1
if ! grep -q "CUDA backend ON" "$LOGS/configure.log"; then
  echo "gpu-check: CMake did not enable the CUDA backend (nvcc not found?)"
  record "CUDA backend enabled" "FAILED" 0
  exit 1
fi
if grep -q '\.cu"' "$BUILD/compile_commands.json" 2>/dev/null &&
   ! grep '\.cu"' "$BUILD/compile_commands.json" | grep -q -- '-std=c++20'; then
  run "configure (nvcc -std=c++20)" 60 cmake "${CONFIG[@]}" -DCMAKE_CUDA_FLAGS=-std=c++20 || exit 1
fi
run "build" 300 cmake --build "$BUILD" -j "$JOBS" || exit 1
TESTS=$BUILD/bin/cuebm_tests
[[ -x "$TESTS" ]] || { echo "gpu-check: $TESTS was not built"; record "test binary" "FAILED (missing)" 0; exit 1; }

# 2. GPU tests; on this machine a skip means the device was not seen.
run "CUDA tests" 200 "$TESTS" --gtest_filter='Cuda*'
if grep -q "no CUDA device" "$LOGS/CUDA_tests.log"; then
  echo "gpu-check: the CUDA tests skipped although a GPU is present:"
  grep "no CUDA device" "$LOGS/CUDA_tests.log" | head -3
  record "CUDA tests ran (not skipped)" "FAILED" 0
fi

# 3. Sanitizers on the small case.
if command -v compute-sanitizer >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/compute-sanitizer ]]; then
  CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  run "memcheck (CudaSmall)" 90 "$CS" --tool memcheck --error-exitcode 99 --leak-check full \
    "$TESTS" --gtest_filter='CudaSmall.*'
  run "racecheck (CudaSmall)" 90 "$CS" --tool racecheck --error-exitcode 99 \
    "$TESTS" --gtest_filter='CudaSmall.*'
else
  echo "gpu-check: compute-sanitizer not found"
  record "compute-sanitizer" "FAILED (not found)" 0
fi

# 4. Benchmarks (bench/ is optional).
if [[ -x "$BUILD/bin/bench_cuebm" ]]; then
  run "bench_cuebm CUDA" 100 "$BUILD/bin/bench_cuebm" --benchmark_filter=CUDA
  BENCH_SUMMARY=$(grep -E "^(BM_|[A-Za-z_/]*CUDA)" "$LOGS/bench_cuebm_CUDA.log" | head -20)
else
  record "bench_cuebm CUDA" "not present" 0
fi
if [[ -f bench/torch_langevin.py ]]; then
  if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    run "torch_langevin.py --device cuda" 100 python3 bench/torch_langevin.py --device cuda
  else
    record "torch_langevin.py --device cuda" "FAILED (no torch+CUDA)" 0
  fi
else
  record "torch_langevin.py --device cuda" "not present" 0
fi
exit $FAILED
