#!/usr/bin/env bash
# One command for the side-by-side comparison: builds bench_cuebm and fp32_peak if needed,
# measures the FP32 FMA peak, runs cuEBM's matching benchmarks, plain PyTorch eager and
# TorchEBM on the same workloads at 1 thread and at N threads, and prints one table in which
# each side appears at its fastest thread count (a tiny MLP in PyTorch is often fastest on one
# thread), with every configuration listed below it.
#
# Usage: bench/compare.sh [--force] [-o FILE]
#   --force, CUEBM_BENCH_FORCE=1   measure even when the machine is busy; the table is then
#                                  marked "measured on a busy machine (load X)"
#   -o FILE                        also write the table to FILE (atomically: temp name + rename)
# Environment:
#   CUEBM_BUILD_DIR       build folder (default: <repo>/build; configured here if missing)
#   CUEBM_BENCH_THREADS   thread counts to try, e.g. "1 2" (default: "1 N", N = nproc)
#   CUEBM_BENCH_DEVICE    cpu (default) or cuda
#   CUEBM_PYTHON          the interpreter with torch (default /usr/bin/python3)
#   CUEBM_BENCH_OUT       folder for the raw outputs (default: a new temporary folder)
#   CUEBM_BENCH_MAX_LOAD  the 1-minute load average above which the machine counts as busy (0.5)
#   CUEBM_BENCH_SETTLE    seconds to wait for the load to fall under that after building (120)
# Nothing is installed here: missing PyTorch or TorchEBM is reported (with the command that
# installs it) and their columns stay empty. Exit status: 0 table written, 1 no bench_cuebm,
# 2 bad arguments, 3 the machine was busy (not forced).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CUEBM_BUILD_DIR:-$root/build}
device=${CUEBM_BENCH_DEVICE:-cpu}
python=${CUEBM_PYTHON:-/usr/bin/python3}
max_load=${CUEBM_BENCH_MAX_LOAD:-0.5}
settle=${CUEBM_BENCH_SETTLE:-120}
force=${CUEBM_BENCH_FORCE:-0}
output=
cores=$(nproc)
threads_list=${CUEBM_BENCH_THREADS:-1 $cores}

log() { echo "[compare] $*" >&2; }
usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }

while (($#)); do
  case $1 in
    --force) force=1 ;;
    -o | --output)
      [[ $# -ge 2 ]] || { usage; exit 2; }
      output=$2
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) log "unknown argument '$1'"; usage; exit 2 ;;
  esac
  shift
done
[[ $force == 1 || $force == 0 ]] || force=1

# Thread counts: distinct positive integers, ascending.
threads_list=$(tr ', ' '\n\n' <<<"$threads_list" | grep -v '^$' | sort -n -u | paste -s -d' ')
for t in $threads_list; do
  [[ $t =~ ^[1-9][0-9]*$ ]] || { log "CUEBM_BENCH_THREADS: '$t' is not a thread count"; exit 2; }
done
max_threads=${threads_list##* }

case $device in
  cpu) suffix=CPU ;;
  cuda) suffix=CUDA ;;
  *) log "CUEBM_BENCH_DEVICE must be cpu or cuda, got '$device'"; exit 2 ;;
esac

load1() { cut -d' ' -f1 /proc/loadavg; }
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

out=${CUEBM_BENCH_OUT:-$(mktemp -d /tmp/cuebm-compare.XXXXXX)}
mkdir -p "$out"

# What is missing, said once and up front (nothing is installed here).
missing=()
have_torch=0 have_torchebm=0
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
  missing+=("PyTorch for $python: as root, apt-get update && apt-get install -y python3-torch" \
    "(Debian's torch 1.13 with OpenBLAS; or set CUEBM_PYTHON to an interpreter that has torch)")
else
  have_torch=1
  if "$python" "$root/bench/torchebm_tutorial.py" --check >/dev/null 2>&1; then
    have_torchebm=1
  else
    missing+=("TorchEBM 0.3.17 for $python: $python -m pip install --break-system-packages" \
      "--no-deps torchebm==0.3.17 (--no-deps keeps Debian's torch)")
  fi
  # Debian's torch calls libblas.so.3: the reference BLAS unless OpenBLAS provides it.
  blas=$("$python" -c 'import os, re, torch
torch.mm(torch.ones(64, 64), torch.ones(64, 64))
print(" ".join(sorted({os.path.basename(l.split()[-1]) for l in open("/proc/self/maps")
                       if re.search(r"openblas|mkl|blis", os.path.basename(l.split()[-1]))})))' \
    2>/dev/null)
  if [[ -z $blas ]]; then
    missing+=("OpenBLAS for torch (it loads the reference BLAS now, which makes PyTorch 5 to 20" \
      "times slower): as root, apt-get install -y libopenblas0-pthread")
  fi
fi
if ((${#missing[@]})); then
  log "MISSING (not installed by this script; those columns will be empty):"
  for ((i = 0; i < ${#missing[@]}; i += 2)); do log "  - ${missing[i]} ${missing[i + 1]}"; done
fi

# Build (incremental). A failed build leaves earlier binaries usable: say so and carry on.
if [[ ! -f $build/CMakeCache.txt ]]; then
  log "configuring $build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCUEBM_BUILD_TESTS=OFF \
    -DCUEBM_BUILD_EXAMPLES=OFF >"$out/configure.log" 2>&1 ||
    log "configure failed (see $out/configure.log)"
fi
log "building bench_cuebm and fp32_peak in $build"
if ! cmake --build "$build" --target bench_cuebm fp32_peak -j "$cores" >"$out/build.log" 2>&1; then
  log "build failed (see $out/build.log); using the binaries already there, if any"
fi
bench=$build/bin/bench_cuebm
peak=$build/bin/fp32_peak
if [[ ! -x $bench ]]; then
  log "no $bench: nothing to compare (Google Benchmark missing? as root: apt-get install -y" \
    "libbenchmark-dev; see $out/build.log)"
  exit 1
fi

# An idle machine or nothing: another process on one core slows any multi-threaded run by
# tens of times and no ratio measured that way means anything. A build just finished raises
# the 1-minute average, so wait a little for it to fall.
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (threshold $max_load on the 1-minute figure)"
waited=0
while above "$(load1)" "$max_load" && ((waited < settle)) && [[ $force == 0 ]]; do
  ((waited % 30 == 0)) && log "1-minute load $(load1) > $max_load: waiting (up to ${settle}s) for it to fall"
  sleep 5
  waited=$((waited + 5))
done
load_start=$(load1)
busy=0
if above "$load_start" "$max_load"; then
  if [[ $force == 0 ]]; then
    log "REFUSED: the 1-minute load average is $load_start (> $max_load): the machine is busy,"
    log "and ratios measured now are not idle-machine numbers. Stop the other work and rerun,"
    log "or pass --force (CUEBM_BENCH_FORCE=1) to get a table marked 'measured on a busy machine'."
    log "uptime: $(uptime)"
    exit 3
  fi
  busy=1
  log "forced on a busy machine (load $load_start): the table will say so"
fi

# The workloads every implementation runs (names as bench_cuebm spells them).
tutorial='mlp:2-64-64-1_relu'
workloads="Langevin/$tutorial/batch:(256/k:100|500/k:500|4096/k:100|65536/k:10)"
workloads+="|CD10/mlp:(2-64-64-1_relu|2-128-128-1_silu|32-128-128-1_silu)/batch:256"
workloads+="|(Energy|Gradient)/$tutorial/rows:(4096|65536)"
notes=()
log "threads: $threads_list; device: $device; outputs: $out"

if [[ -x $peak ]]; then
  log "fp32_peak ($max_threads threads)"
  CUEBM_BENCH_THREADS=$max_threads OMP_NUM_THREADS=$max_threads "$peak" --json \
    >"$out/peak.json" 2>"$out/peak.err" || notes+=("fp32_peak failed")
else
  notes+=("no fp32_peak binary: no % of peak")
fi

args=(--device "$device" --peak "$out/peak.json")
for t in $threads_list; do
  # Every library's thread pool follows these; each program also sets its count explicitly.
  export CUEBM_BENCH_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t
  log "bench_cuebm, $t thread(s); load $(load1)"
  if "$bench" --benchmark_filter="^($workloads)_$suffix" --cuebm_langevin=2-64-64-1:500:500 \
    --benchmark_min_time=0.2 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_format=json >"$out/cuebm.t$t.json" 2>"$out/cuebm.t$t.err"; then
    args+=(--cuebm "$t=$out/cuebm.t$t.json")
  else
    log "bench_cuebm failed at $t thread(s):"
    cat "$out/cuebm.t$t.err" >&2
    exit 1
  fi
  if ((have_torch)); then
    log "PyTorch eager, $t thread(s); load $(load1)"
    "$python" "$root/bench/torch_langevin.py" --device "$device" --threads "$t" \
      --filter "^($workloads)\$" --min-time 1.0 >"$out/torch.t$t.jsonl" 2>"$out/torch.t$t.err" ||
      notes+=("torch_langevin.py failed at $t thread(s): $(tail -n 1 "$out/torch.t$t.err")")
    args+=(--torch "$t=$out/torch.t$t.jsonl")
  fi
  if ((have_torchebm)); then
    log "TorchEBM, $t thread(s); load $(load1)"
    "$python" "$root/bench/torchebm_tutorial.py" --device "$device" --threads "$t" \
      >"$out/torchebm.t$t.jsonl" 2>"$out/torchebm.t$t.err" || [[ -s $out/torchebm.t$t.jsonl ]] ||
      notes+=("torchebm_tutorial.py failed at $t thread(s): $(tail -n 1 "$out/torchebm.t$t.err")")
    args+=(--torchebm "$t=$out/torchebm.t$t.jsonl")
  fi
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average after: $load_end"

for ((i = 0; i < ${#missing[@]}; i += 2)); do notes+=("missing: ${missing[i]} ${missing[i + 1]}"); done
for n in "${notes[@]}"; do args+=(--note "$n"); done
args+=(--load-start "$load_start" --note "load average (1, 5, 15 min) at the end: $load_end")
((busy)) && args+=(--busy)

# The table needs only the standard library: any Python 3 will do. Written to a temporary
# name and renamed, so a reader never sees half a table.
table_python=$python
"$table_python" -c 'import json' >/dev/null 2>&1 || table_python=python3
if ! "$table_python" "$root/bench/compare_table.py" "${args[@]}" >"$out/table.md.tmp"; then
  log "compare_table.py failed; raw outputs in $out"
  exit 1
fi
mv -f "$out/table.md.tmp" "$out/table.md"
if [[ -n $output ]]; then
  tmp=$(mktemp "$(dirname -- "$output")/.$(basename -- "$output").XXXXXX") || exit 1
  cp "$out/table.md" "$tmp" && mv -f "$tmp" "$output" || { rm -f "$tmp"; exit 1; }
  log "table written to $output"
fi
cat "$out/table.md"
