#!/usr/bin/env bash
# Score-matching losses: cuEBM (bench_cuebm's ScoreLoss cases) against TorchEBM 0.3.17's
# ScoreMatching, SlicedScoreMatching and DenosingScoreMatching (bench/torchebm_score_matching.py,
# run by /usr/bin/python3): one iteration's loss and parameter gradient at batch 256 on the
# tutorial MLP 2-64-64-1 ReLU and on 2-128-128-1 SiLU, each side at 1 and N threads (N = nproc,
# at least 2); prints milliseconds per iteration at each side's best thread count and the
# ratio (and cuEBM's GPU figure when bench_cuebm found a CUDA device). Refuses to run on a busy
# machine (load above 0.5) unless --force.
# Usage: bench/compare_score_matching.sh [--force] [build folder]
set -euo pipefail
# shellcheck source=compare_common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/compare_common.sh"
compare_setup compare_score_matching "$@"
n=$(nproc)
((n >= 2)) || n=2
for t in 1 "$n"; do
  compare_cuebm "$t" '^ScoreLoss/'
  compare_torchebm "$t" torchebm_score_matching.py
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$n" <<'PY'
import json, sys
out, n = sys.argv[1], sys.argv[2]
best, gpu = {}, {}
unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
for t in ("1", n):
    for b in json.load(open(f"{out}/cuebm.{t}.json"))["benchmarks"]:
        if b.get("error_occurred"): print("cuEBM:", b["name"], b.get("error_message")); continue
        name = b["name"].split("/real_time")[0]
        ms = b["real_time"] * unit[b["time_unit"]]
        if name.endswith("_CUDA"):
            gpu[name.removesuffix("_CUDA")] = ms
        elif ms < best.get(("cuebm", name.removesuffix("_CPU")), (1e300, 0))[0]:
            best[("cuebm", name.removesuffix("_CPU"))] = (ms, t)
    for line in open(f"{out}/torchebm.{t}.jsonl"):
        r = json.loads(line)
        if "error" in r: print("torchebm:", r["error"])
        if "name" in r:
            ms = 1e3 * r["seconds_per_iter"]
            if ms < best.get(("torchebm", r["name"]), (1e300, 0))[0]:
                best[("torchebm", r["name"])] = (ms, t)
print("ms per iteration (loss + parameter gradient), each side at its best thread count")
print("| workload | cuEBM CPU (threads) | TorchEBM (threads) | speed-up | cuEBM GPU |")
print("|---|---|---|---|---|")
for (impl, name), (ms, t) in sorted(best.items()):
    if impl != "cuebm": continue
    peer = best.get(("torchebm", name))
    cell = f"{peer[0]:.3f} ({peer[1]})" if peer else "-"
    ratio = f"{peer[0] / ms:.1f}x" if peer else "-"
    g = f"{gpu[name]:.3f}" if name in gpu else "-"
    print(f"| {name} | {ms:.3f} ({t}) | {cell} | {ratio} | {g} |")
PY
