#!/usr/bin/env bash
# The CPU backend on a shared machine: times the tutorial's CD-10 iteration
# (CD10/mlp:2-64-64-1_relu/batch:256_CPU: MLP 2-64-64-1 ReLU, batch 256, k = 10, Adam, clipping)
# at 1 and N threads, on the machine as it is ("idle") and with one competing process that spins
# on the CPU ("busy"), and prints one table of milliseconds per iteration. Each measurement is a
# fresh bench_cuebm process (0.5 s of iterations); the rounds interleave every configuration.
# Nothing is asserted: speed is measured, never tested. Run it on an otherwise idle machine.
#
# Usage: bench/busy_machine.sh [--openmp] [--rounds R] [--threads N] [--torchebm]
#                              [--same-session] [--pin CPU] [--nice N]
#   --openmp        also time CUEBM_CPU_RUNTIME=openmp (the OpenMP loops cuEBM used before)
#   --rounds R      rounds of all configurations (default 3); the table shows the median
#   --threads N     the multi-threaded count (default: nproc)
#   --torchebm      also time TorchEBM's tutorial loop (bench/torchebm_tutorial.py) the same way
#   --same-session  start the busy process in this session; by default it gets its own session
#                   (setsid), like another user's program: with the kernel's autogroup
#                   scheduling that decides how the CPUs are shared
#   --pin CPU       pin the busy process to that CPU (taskset); default: the scheduler places it
#   --nice N        run the busy process at nice N (default 0: the same priority as ours)
# Environment: CUEBM_BUILD_DIR (default <repo>/build), CUEBM_PYTHON (default /usr/bin/python3);
# CUEBM_POOL_IDLE_SPIN_US, CUEBM_POOL_JOIN_SPIN_US, CUEBM_POOL_ADAPT=0/1 change the pool's
# policy (host/runtime/thread_pool.hpp) for experiments.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CUEBM_BUILD_DIR:-$root/build}
python=${CUEBM_PYTHON:-/usr/bin/python3}
runtimes=(pool)
pin=
nice_level=0
session=separate
rounds=3
threads=$(nproc)
torchebm=0
while (($#)); do
  case $1 in
    --openmp) runtimes+=(openmp) ;;
    --pin) pin=$2; shift ;;
    --nice) nice_level=$2; shift ;;
    --same-session) session=same ;;
    --rounds) rounds=$2; shift ;;
    --threads) threads=$2; shift ;;
    --torchebm) torchebm=1 ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "busy_machine.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $rounds =~ ^[1-9][0-9]*$ && $threads =~ ^[1-9][0-9]*$ && $nice_level =~ ^-?[0-9]+$ ]] ||
  { echo "busy_machine.sh: --rounds, --threads and --nice take integers" >&2; exit 2; }
[[ -z $pin || $pin =~ ^[0-9]+$ ]] || { echo "busy_machine.sh: --pin takes a CPU number" >&2; exit 2; }

log() { echo "[busy_machine] $*" >&2; }
out=$(mktemp -d /tmp/cuebm-busy.XXXXXX)
results=$out/results.txt
: >"$results"

if ! cmake --build "$build" --target bench_cuebm -j "$(nproc)" >"$out/build.log" 2>&1; then
  log "build failed (see $out/build.log); using the binary already there, if any"
fi
bench=$build/bin/bench_cuebm
[[ -x $bench ]] || { log "no $bench (configure $build with Google Benchmark first)"; exit 1; }
if ((torchebm)) && ! "$python" "$root/bench/torchebm_tutorial.py" --check >/dev/null 2>&1; then
  log "TorchEBM is not importable by $python: skipping it (install: $python -m pip install" \
    "--break-system-packages --no-deps torchebm==0.3.17, torch from apt-get install python3-torch)"
  torchebm=0
fi

# The busy process: a shell loop that never sleeps. exec keeps one process (its pid is $!).
spinner=
stop_spinner() {
  if [[ -n $spinner ]]; then
    kill "$spinner" 2>/dev/null
    wait "$spinner" 2>/dev/null
    spinner=
  fi
}
trap stop_spinner EXIT
start_spinner() {
  local cmd=(nice -n "$nice_level")
  [[ -n $pin ]] && cmd+=(taskset -c "$pin")
  cmd+=(bash -c 'while :; do :; done')
  if [[ $session == separate ]]; then
    setsid "${cmd[@]}" &
  else
    "${cmd[@]}" &
  fi
  spinner=$!
  sleep 0.5
}

# One measurement: appends "impl threads condition ms" to $results.
measure() {
  local impl=$1 t=$2 cond=$3 ms
  if [[ $impl == torchebm ]]; then
    ms=$(OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$python" "$root/bench/torchebm_tutorial.py" \
      --threads "$t" --iterations 100 --no-sample 2>>"$out/torchebm.err" |
      "$python" -c 'import json, sys
for line in sys.stdin:
    o = json.loads(line)
    if "seconds_per_iter" in o: print(1e3 * o["median_seconds_per_iter"])')
  else
    ms=$(CUEBM_CPU_RUNTIME=$impl CUEBM_BENCH_THREADS=$t OMP_NUM_THREADS=$t "$bench" \
      --benchmark_filter='^CD10/mlp:2-64-64-1_relu/batch:256_CPU/' --benchmark_min_time=0.5 \
      --benchmark_format=json 2>>"$out/bench.err" |
      "$python" -c 'import json, sys
b = json.load(sys.stdin)["benchmarks"][0]
print(b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]])')
  fi
  [[ -n $ms ]] || { log "no result for $impl, $t thread(s), $cond (see $out)"; return; }
  echo "$impl $t $cond $ms" >>"$results"
  log "$impl, $t thread(s), $cond: $(printf '%.3f' "$ms") ms per iteration"
}

impls=("${runtimes[@]}")
((torchebm)) && impls+=(torchebm)
counts=(1)
((threads > 1)) && counts+=("$threads")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $load_before; outputs: $out"
for ((r = 1; r <= rounds; ++r)); do
  log "round $r of $rounds"
  for cond in idle busy; do
    [[ $cond == busy ]] && start_spinner
    for impl in "${impls[@]}"; do
      for t in "${counts[@]}"; do measure "$impl" "$t" "$cond"; done
    done
    stop_spinner
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

where="placed by the scheduler"
[[ -n $pin ]] && where="pinned to CPU $pin"
where+=", nice $nice_level, $session session"
"$python" - "$results" "$load_before" "$load_after" "$where" "$(nproc)" <<'EOF'
import statistics
import sys

path, before, after, where, cores = sys.argv[1:6]
data = {}
for line in open(path, encoding="utf-8"):
    impl, t, cond, ms = line.split()
    data.setdefault((impl, int(t), cond), []).append(float(ms))

def cell(key):
    v = data.get(key)
    if not v:
        return "-", None
    m = statistics.median(v)
    return (f"{m:.3f} ({min(v):.3f}-{max(v):.3f})" if len(v) > 1 else f"{m:.3f}"), m

print("CD-10 iteration of the tutorial (MLP 2-64-64-1 ReLU, batch 256), ms per iteration;")
print(f"median of the rounds (min-max). busy: one more process spinning ({where}); {cores} CPUs.")
print(f"load average (1, 5, 15 min) before: {before}; after: {after}")
if float(before.split()[0]) > 0.5:
    print("note: the machine was not idle before the run (1-minute load above 0.5): the 'idle'")
    print("      columns share the CPUs with that other work too.")
print()
rows = [["implementation", "threads", "idle", "busy", "busy / idle"]]
best = {}
for impl in dict.fromkeys(k[0] for k in data):
    for t in sorted({k[1] for k in data if k[0] == impl}):
        idle_text, idle = cell((impl, t, "idle"))
        busy_text, busy = cell((impl, t, "busy"))
        ratio = f"{busy / idle:.2f}x" if idle and busy else "-"
        rows.append([impl, str(t), idle_text, busy_text, ratio])
        best[(impl, t)] = (idle, busy)
widths = [max(len(r[i]) for r in rows) for i in range(5)]
for i, r in enumerate(rows):
    print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    if i == 0:
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
print()
for impl in dict.fromkeys(k[0] for k in best):
    ts = sorted(t for (i, t) in best if i == impl)
    if len(ts) < 2:
        continue
    (i1, b1), (iN, bN) = best[(impl, ts[0])], best[(impl, ts[-1])]
    if b1 and bN:
        print(f"{impl}: busy, {ts[-1]} threads vs 1 thread: {bN:.3f} vs {b1:.3f} ms "
              f"({'no worse' if bN <= b1 * 1.02 else 'WORSE'} than 1 thread)")
    if i1 and iN:
        print(f"{impl}: idle, {ts[-1]} threads vs 1 thread: {iN:.3f} vs {i1:.3f} ms ({i1 / iN:.2f}x)")
if ("pool", int(cores)) in best and ("openmp", int(cores)) in best:
    p, o = best[("pool", int(cores))][0], best[("openmp", int(cores))][0]
    if p and o:
        print(f"idle, {cores} threads: pool {p:.3f} ms vs openmp {o:.3f} ms ({100 * (p / o - 1):+.1f}%)")
EOF
