#!/usr/bin/env bash
# One command for the side-by-side comparison: builds bench_cuebm and fp32_peak if needed,
# measures the FP32 FMA peak, runs cuEBM's matching benchmarks, plain PyTorch eager and
# TorchEBM on the same workloads with the same thread count, and prints one table.
#
# Environment:
#   CUEBM_BUILD_DIR       build folder (default: <repo>/build; configured here if missing)
#   CUEBM_BENCH_THREADS   threads for every program (default 2)
#   CUEBM_BENCH_DEVICE    cpu (default) or cuda
#   CUEBM_PYTHON          the interpreter with torch (default /usr/bin/python3)
#   CUEBM_BENCH_OUT       folder for the raw outputs (default: a new temporary folder)
# Missing torch or TorchEBM is reported in the table's notes, never a failure.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CUEBM_BUILD_DIR:-$root/build}
threads=${CUEBM_BENCH_THREADS:-2}
device=${CUEBM_BENCH_DEVICE:-cpu}
python=${CUEBM_PYTHON:-/usr/bin/python3}
out=${CUEBM_BENCH_OUT:-$(mktemp -d /tmp/cuebm-compare.XXXXXX)}
mkdir -p "$out"
export CUEBM_BENCH_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

case $device in
  cpu) suffix=CPU ;;
  cuda) suffix=CUDA ;;
  *) echo "compare.sh: CUEBM_BENCH_DEVICE must be cpu or cuda, got '$device'" >&2; exit 2 ;;
esac

log() { echo "[compare] $*" >&2; }

# Build (incremental). A failed build leaves earlier binaries usable: say so and carry on.
if [[ ! -f $build/CMakeCache.txt ]]; then
  log "configuring $build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCUEBM_BUILD_TESTS=OFF \
    -DCUEBM_BUILD_EXAMPLES=OFF >"$out/configure.log" 2>&1 ||
    log "configure failed (see $out/configure.log)"
fi
log "building bench_cuebm and fp32_peak in $build"
if ! cmake --build "$build" --target bench_cuebm fp32_peak -j "$(nproc)" \
  >"$out/build.log" 2>&1; then
  log "build failed (see $out/build.log); using the binaries already there, if any"
fi
bench=$build/bin/bench_cuebm
peak=$build/bin/fp32_peak
if [[ ! -x $bench ]]; then
  log "no $bench: nothing to compare"
  exit 1
fi

# The workloads every implementation runs (names as bench_cuebm spells them).
tutorial='mlp:2-64-64-1_relu'
workloads="Langevin/$tutorial/batch:(256/k:100|500/k:500|4096/k:100|65536/k:10)"
workloads+="|CD10/mlp:(2-64-64-1_relu|2-128-128-1_silu|32-128-128-1_silu)/batch:256"
workloads+="|(Energy|Gradient)/$tutorial/rows:(4096|65536)"
notes=()
log "threads: $threads, device: $device, outputs: $out"
log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -x $peak ]]; then
  log "fp32_peak"
  "$peak" --json >"$out/peak.json" 2>"$out/peak.err" || notes+=("fp32_peak failed")
else
  notes+=("no fp32_peak binary: no % of peak")
fi

log "bench_cuebm"
"$bench" --benchmark_filter="^($workloads)_$suffix" --cuebm_langevin=2-64-64-1:500:500 \
  --benchmark_min_time=0.2 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_format=json >"$out/cuebm.json" 2>"$out/cuebm.err" || {
  log "bench_cuebm failed:"
  cat "$out/cuebm.err" >&2
  exit 1
}

if "$python" -c 'import torch' >/dev/null 2>&1; then
  log "PyTorch eager"
  "$python" "$root/bench/torch_langevin.py" --device "$device" --threads "$threads" \
    --filter "^($workloads)\$" --min-time 1.0 >"$out/torch.jsonl" 2>"$out/torch.err" ||
    notes+=("torch_langevin.py failed: $(tail -n 1 "$out/torch.err")")
  log "TorchEBM"
  "$python" "$root/bench/torchebm_tutorial.py" --device "$device" --threads "$threads" \
    >"$out/torchebm.jsonl" 2>"$out/torchebm.err" || [[ -s $out/torchebm.jsonl ]] ||
    notes+=("torchebm_tutorial.py failed: $(tail -n 1 "$out/torchebm.err")")
else
  notes+=("$python cannot import torch: no PyTorch eager or TorchEBM columns")
fi
log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

args=(--cuebm "$out/cuebm.json" --device "$device" --peak "$out/peak.json"
  --torch "$out/torch.jsonl" --torchebm "$out/torchebm.jsonl")
for n in "${notes[@]}"; do args+=(--note "$n"); done
args+=(--note "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)")
# The table needs only the standard library: any Python 3 will do.
table_python=$python
"$table_python" -c 'import json' >/dev/null 2>&1 || table_python=python3
"$table_python" "$root/bench/compare_table.py" "${args[@]}"
