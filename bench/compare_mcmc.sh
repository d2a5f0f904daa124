#!/usr/bin/env bash
# MALA and HMC: cuEBM (bench_cuebm's MCMC cases) against TorchEBM 0.3.17's HamiltonianMonteCarlo
# (bench/torchebm_hmc.py) and BlackJAX's MALA and HMC on JAX-CPU (bench/blackjax_mcmc.py, run
# by $CUEBM_BLACKJAX_PYTHON, default python3; "-" when it cannot import them) on the tutorial
# MLP and a 2-D Gaussian, 500 chains x 50 steps of 10 leapfrog steps, each side at 1 and N
# threads (BlackJAX pinned to that many CPUs with taskset); prints proposals per second and the
# ratios of each side's best. Refuses to run on a busy machine (load above 0.5) unless --force.
# Usage: bench/compare_mcmc.sh [--force] [build folder]
set -euo pipefail
# shellcheck source=compare_common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/compare_common.sh"
compare_setup compare_mcmc "$@"
for t in 1 "$(nproc)"; do
  compare_cuebm "$t" '^(HMC|MALA)/'
  compare_torchebm "$t" torchebm_hmc.py
  taskset -c "0-$((t - 1))" "${CUEBM_BLACKJAX_PYTHON:-python3}" "$root/bench/blackjax_mcmc.py" \
    >"$out/blackjax.$t.jsonl" 2>/dev/null || true
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$(nproc)" <<'PY'
import json, sys, glob
out, n = sys.argv[1], sys.argv[2]
best = {}
for t in ("1", n):
    for b in json.load(open(f"{out}/cuebm.{t}.json"))["benchmarks"]:
        name = b["name"].split("/real_time")[0].removesuffix("_CPU")
        rate = b["items_per_second"]
        if rate > best.get(("cuebm", name), (0, 0))[0]: best[("cuebm", name)] = (rate, t)
    for impl in ("torchebm", "blackjax"):
        for line in open(f"{out}/{impl}.{t}.jsonl"):
            r = json.loads(line)
            if "error" in r: print(f"{impl}:", r["error"])
            if "name" in r and r["proposals_per_second"] > best.get((impl, r["name"]), (0, 0))[0]:
                best[(impl, r["name"])] = (r["proposals_per_second"], t)
print("| workload | cuEBM (threads) | TorchEBM (threads) | BlackJAX (threads) | vs TorchEBM | vs BlackJAX |")
print("|---|---|---|---|---|---|")
for (impl, name), (rate, t) in sorted(best.items()):
    if impl != "cuebm": continue
    cells, ratios = [], []
    for peer_impl in ("torchebm", "blackjax"):
        peer = best.get((peer_impl, name))
        cells.append(f"{peer[0]:.3g} ({peer[1]})" if peer else "-")
        ratios.append(f"{rate / peer[0]:.1f}x" if peer else "-")
    print(f"| {name} | {rate:.3g} ({t}) | {cells[0]} | {cells[1]} | {ratios[0]} | {ratios[1]} |")
PY
