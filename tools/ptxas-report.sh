#!/usr/bin/env bash
# Compiles the hot CUDA kernels with `ptxas -v` for sm_80 and sm_90 and prints, per kernel, the
# registers, stack frame and spills. Exits non-zero when a fused (supported-width) MLP kernel
# spills, or when compilation fails. Usage: [PTXAS_EXTRA="a.cu b.cu"] tools/ptxas-report.sh [nvcc]
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${1:-${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}}
[[ -x "$NVCC" ]] || { echo "ptxas-report: nvcc not found (pass its path)" >&2; exit 2; }
FILT=$(dirname "$NVCC")/cu++filt
[[ -x "$FILT" ]] || FILT=c++filt
command -v "$FILT" >/dev/null 2>&1 || FILT=cat
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
FILES=(kernels/sampling/mlp_fused_w*.cu kernels/models/mlp_kernels.cu kernels/sampling/langevin_kernels.cu
       kernels/sampling/mcmc_kernels.cu kernels/sampling/tempering_kernels.cu kernels/sampling/ais_kernels.cu
       kernels/training/cd_kernels.cu)
# More files on request, e.g. PTXAS_EXTRA=kernels/training/score_matching_kernels.cu (about two
# more minutes on 2 cores, which CI's 45-minute budget leaves out).
read -r -a extra <<<"${PTXAS_EXTRA:-}"
FILES+=("${extra[@]}")
status=0
# One nvcc call per file builds both architectures (the front end runs once); two files compile
# at a time.
compile() {
  local f=$1 log="$OUT/$(basename "$1" .cu).log"
  if ! "$NVCC" -std=c++20 --expt-relaxed-constexpr -O3 -I include -I . -lineinfo \
      -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -Xptxas -v \
      -c "$f" -o "$OUT/$(basename "$f" .cu).o" >"$log" 2>&1; then
    echo "ptxas-report: compiling $f failed:" >&2
    cat "$log" >&2
    return 1
  fi
}
jobs=$(nproc)
pids=()
for f in "${FILES[@]}"; do
  compile "$f" &
  pids+=($!)
  if ((${#pids[@]} >= jobs)); then
    wait "${pids[0]}" || exit 1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || exit 1; done
# ptxas prints: "Compiling entry function 'X' for 'sm_NN'", then "N bytes stack frame, N bytes
# spill stores, N bytes spill loads", then "Used N registers, ...".
for log in "$OUT"/*.log; do
  python3 - "$log" >>"$OUT/table.tsv" <<'PY'
import re, sys
name, arch, stack, spill = None, None, 0, 0
for line in open(sys.argv[1]):
    m = re.search(r"Compiling entry function '([^']+)' for '(sm_\d+)'", line)
    if m:
        name, arch, stack, spill = m.group(1), m.group(2), 0, 0
        continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores", line)
    if m:
        stack, spill = int(m.group(1)), int(m.group(2))
        continue
    m = re.search(r"Used (\d+) registers", line)
    if m and name:
        print(f"{arch}\t{m.group(1)}\t{stack}\t{spill}\t{name}")
        name = None
PY
done
printf "%-6s %5s %6s %6s  %s\n" arch regs stack spill kernel
sort -u "$OUT/table.tsv" | while IFS=$'\t' read -r arch regs stack spill name; do
  pretty=$(echo "$name" | "$FILT" | sed -e 's/cuebm::detail:://g' -e 's/(anonymous namespace):://g' \
    -e 's/cuebm::Activation:://g' | cut -c1-110)
  printf "%-6s %5s %6s %6s  %s\n" "$arch" "$regs" "$stack" "$spill" "$pretty"
done
while IFS=$'\t' read -r arch regs stack spill name; do
  pretty=$(echo "$name" | "$FILT")
  if [[ "$pretty" == *fused_* && "$spill" != "0" ]]; then
    echo "ptxas-report: SPILL in $arch $pretty ($spill bytes)" >&2
    status=1
  fi
done <"$OUT/table.tsv"
n=$(wc -l <"$OUT/table.tsv")
if [[ "$n" -eq 0 ]]; then
  echo "ptxas-report: no kernel statistics parsed (ptxas output format changed?)" >&2
  exit 1
fi
[[ $status -eq 0 ]] && echo "ptxas-report: $n kernel builds, no spills in the fused kernels"
exit $status
