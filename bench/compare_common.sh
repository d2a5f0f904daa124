# shellcheck shell=bash
# What bench/compare_mcmc.sh and bench/compare_score_matching.sh share; sourced by them after
# `set -euo pipefail`. compare_setup sets root, build, bench and out.

# compare_setup NAME [--force] [build folder]: finds bench_cuebm in the build folder (default
# <repo>/build; exit 2 when it is not built), refuses a busy machine (1-minute load average above
# 0.5; exit 3) unless --force, prints the load and makes $out, a temporary folder removed on exit.
compare_setup() {
  local name=$1 force=0 load
  shift
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  [[ ${1:-} == --force ]] && { force=1; shift; }
  build=${1:-$root/build}
  bench=$build/bin/bench_cuebm
  [[ -x $bench ]] || { echo "$name: $bench not built" >&2; exit 2; }
  load=$(cut -d' ' -f1 /proc/loadavg)
  if ((!force)) && awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    echo "$name: load average $load > 0.5: the machine is busy (--force to run anyway)" >&2
    exit 3
  fi
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
}

# compare_cuebm T FILTER: bench_cuebm's cases matching FILTER at T threads -> $out/cuebm.T.json.
compare_cuebm() {
  CUEBM_BENCH_THREADS=$1 OMP_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$1 "$bench" \
    --benchmark_filter="$2" --benchmark_min_time=0.5 --benchmark_format=json \
    >"$out/cuebm.$1.json" 2>/dev/null
}

# compare_torchebm T SCRIPT: a TorchEBM peer (bench/SCRIPT, run by /usr/bin/python3, where
# TorchEBM is installed) at T threads -> $out/torchebm.T.jsonl; its failure is in that file.
compare_torchebm() {
  OMP_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$1 /usr/bin/python3 "$root/bench/$2" --threads "$1" \
    >"$out/torchebm.$1.jsonl" 2>/dev/null || true
}
