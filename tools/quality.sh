#!/usr/bin/env bash
# The quality table of issue 13: trains every dataset of datasets.hpp with each recipe at a fixed
# budget of CD (or score-matching) iterations, measures each model exactly on a grid
# (cuebm metrics: log Z, test NLL, KL where H(data) is known, MMD^2, mode weights) and writes
# docs/quality.md and docs/gallery.png (tools/quality_report.py, tools/quality_gallery.py).
#
#   tools/quality.sh                   # everything on the CPU, 2 runs at a time (~10 min)
#   DEVICE=cuda JOBS=1 tools/quality.sh
#   ITERS=500 DATASETS="two_moons grid" RECIPES="cd10 auto" tools/quality.sh   # a quick look
#
# Environment: CUEBM (the binary; default build-emu/bin/cuebm, else build/bin/cuebm), DEVICE
# (cpu), PYTHON (a python3 with numpy), JOBS (parallel runs, 2), THREADS (per run, 1), ITERS (iterations per run, 2000),
# SEEDS (the seed study: auto on every dataset, the tutorial on its mixture; "0 1 2 3 4";
# empty: skipped), OUT (run
# folders, /tmp/cuebm-quality), DATASETS, RECIPES (subsets), DOCS (docs).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CUEBM=${CUEBM:-}
if [[ -z $CUEBM ]]; then
  for c in "$root/build-emu/bin/cuebm" "$root/build/bin/cuebm"; do
    [[ -x $c ]] && CUEBM=$c && break
  done
fi
[[ -x ${CUEBM:-} ]] || { echo "quality.sh: no cuebm binary (set CUEBM)" >&2; exit 1; }
DEVICE=${DEVICE:-cpu}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
ITERS=${ITERS:-2000}
SEEDS=${SEEDS-0 1 2 3 4}
OUT=${OUT:-/tmp/cuebm-quality}
DOCS=${DOCS:-$root/docs}
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
  for c in python3 /usr/bin/python3; do
    "$c" -c "import numpy" 2> /dev/null && PYTHON=$c && break
  done
fi
[[ -n $PYTHON ]] || { echo "quality.sh: no python3 with numpy (set PYTHON)" >&2; exit 1; }
export PYTHON
ALL_DATASETS="gaussian_mixture eight_gaussians two_moons swiss_roll circle checkerboard pinwheel grid"
DATASETS=${DATASETS:-$ALL_DATASETS}
ALL_RECIPES="cd10 pcd mala hmc tempering reg1 auto dsm ssm sm"
RECIPES=${RECIPES:-$ALL_RECIPES}

# Rows per dataset with its default parameters (datasets.hpp; the tutorial's n = 500 for
# gaussian_mixture, grid has n_per_side^2 = 100), the half-width of the metrics' grid box (it
# must hold the data: checkerboard spans [-4, 4]^2) and the data's finest length scale s (noise
# or mode std after any normalisation, floored at 0.02 for swiss_roll's 0.002: no recipe here
# learns that width). A Langevin chain on a well of width s at temperature T is stable for
# eta T / s^2 < 2; the score-matching recipes (T = 1) draw their samples with eta = 0.2 s^2.
rows_of() { case $1 in gaussian_mixture) echo 500 ;; grid) echo 100 ;; *) echo 2000 ;; esac; }
range_of() { case $1 in checkerboard) echo 4.5 ;; *) echo 2.5 ;; esac; }
scale_of() {
  case $1 in
    gaussian_mixture) echo 0.1 ;; eight_gaussians | swiss_roll) echo 0.02 ;;
    checkerboard | grid) echo 0.01 ;; *) echo 0.05 ;;
  esac
}

# The recipe's flags for a dataset. cd10 is the tutorial (TorchEBM's recipe); auto is the
# per-dataset default this table supports (docs/quality.md, "Proposed --recipe auto").
recipe_flags() {
  local recipe=$1 ds=$2 s sm_eta
  s=$(scale_of "$ds")
  sm_eta=$(awk -v s="$s" 'BEGIN { printf "%.3g", 0.2 * s * s }')
  case $recipe in
    cd10) echo "" ;;
    pcd) echo "--persistent" ;;
    mala) echo "--sampler mala" ;;
    hmc) echo "--sampler hmc" ;;
    tempering) echo "--sampler tempering" ;;
    reg1) echo "--energy-reg 1" ;;
    auto)
      case $ds in
        gaussian_mixture) echo "--energy-reg 1" ;;
        grid) echo "--energy-reg 1 --sampler mala --hidden 128 128" ;;
        *) echo "--energy-reg 1 --sampler mala" ;;
      esac ;;
    dsm) echo "--loss dsm --dsm-noise 0.05 --activation silu --noise-scale 1 --step-size $sm_eta" ;;
    ssm) echo "--loss ssm --activation silu --noise-scale 1 --step-size $sm_eta" ;;
    sm) echo "--loss sm --activation silu --noise-scale 1 --step-size $sm_eta" ;;
    *) echo "quality.sh: unknown recipe $recipe" >&2; return 1 ;;
  esac
}

# One run: train, then the metrics on the dataset's grid box at the run's temperature.
# Writes <dir>/{report.json,log.txt,metrics.txt,wall_seconds,flags}.
run_one() {
  local dir=$1 ds=$2 epochs=$3
  shift 3
  mkdir -p "$dir"
  echo "$*" > "$dir/flags"
  local t0 t1 sigma
  t0=$(date +%s.%N)
  # shellcheck disable=SC2068  # the flags are words
  if ! "$CUEBM" train --device "$DEVICE" --threads "$THREADS" --progress none --no-checkpoint \
      --figure-every 1000000 --log-every 1000000 --dataset "$ds" --epochs "$epochs" \
      -o "$dir" $@ > "$dir/log.txt" 2>&1; then
    echo "FAILED $dir (see $dir/log.txt)" >&2
    return 0
  fi
  sigma=$("$PYTHON" -c 'import json,sys,math; print(math.sqrt(json.load(open(sys.argv[1]))["temperature"]))' \
    "$dir/report.json")
  "$CUEBM" metrics --device "$DEVICE" --threads "$THREADS" --model "$dir/model.safetensors" \
    --samples "$dir/samples.npy" --dataset "$ds" --noise-scale "$sigma" \
    --range "$(range_of "$ds")" > "$dir/metrics.txt" 2>&1 || echo "FAILED metrics $dir" >&2
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' > "$dir/wall_seconds"
  echo "done $dir ($(cat "$dir/wall_seconds") s)"
}

if [[ ${1:-} == --run-one ]]; then
  shift
  run_one "$@"
  exit 0
fi

mkdir -p "$OUT"
jobs_file="$OUT/jobs.txt"
: > "$jobs_file"
for ds in $DATASETS; do
  rows=$(rows_of "$ds")
  batches=$(( rows < 256 ? 1 : rows / 256 ))
  epochs=$(( (ITERS + batches - 1) / batches ))
  for recipe in $RECIPES; do
    echo "$OUT/$ds/$recipe $ds $epochs $(recipe_flags "$recipe" "$ds")" >> "$jobs_file"
  done
done
# The seed study: the auto recipe on every dataset at the table's budget, and the tutorial
# (200 epochs) on its mixture, each on the seeds SEEDS.
for seed in $SEEDS; do
  for ds in $DATASETS; do
    rows=$(rows_of "$ds")
    batches=$(( rows < 256 ? 1 : rows / 256 ))
    echo "$OUT/seeds/$ds/auto_seed$seed $ds $(( (ITERS + batches - 1) / batches )) $(recipe_flags auto "$ds") --seed $seed" >> "$jobs_file"
  done
  echo "$OUT/seeds/gaussian_mixture/tutorial_seed$seed gaussian_mixture 200 --seed $seed" >> "$jobs_file"
done

commit=$(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo unknown)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
# Longest first (HMC, tempering, sliced score matching) so that the last jobs are short ones.
sort -t' ' -k1,1 "$jobs_file" | awk '{ w = ($0 ~ /hmc|tempering|ssm/) ? 0 : 1; print w "\t" $0 }' |
  sort -s -k1,1n | cut -f2- | sed 's/[[:space:]]*$//' |
  xargs -P "$JOBS" -L 1 "$0" --run-one
elapsed=$(( $(date +%s) - start ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "all runs: ${elapsed} s; load average before ${load_before}, after ${load_after}"

mkdir -p "$DOCS"
"$PYTHON" "$root/tools/quality_report.py" --cuebm "$CUEBM" --out "$OUT" --docs "$DOCS" \
  --datasets "$DATASETS" --recipes "$RECIPES" --seeds "$SEEDS" --iters "$ITERS" \
  --elapsed "$elapsed" --load "$load_before / $load_after" --device "$DEVICE" --jobs "$JOBS" \
  --commit "$commit"
