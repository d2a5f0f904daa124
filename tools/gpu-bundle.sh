#!/usr/bin/env bash
# Builds cuEBM for sm_90 (SASS + PTX) and packs what the GPU check runs into one folder that
# travels to a GPU machine lacking the build's Debian -dev packages (cairo, CLI11,
# nlohmann-json, GoogleTest, Google Benchmark) and the network:
#
#   gpu-bundle/
#     bin/      cuebm_tests, bench_cuebm, fp32_peak, cuebm, cuda_app, custom_energy_cuda,
#               custom_energy, train_gaussian_mixture
#     lib/      every shared library they load except the CUDA driver (libcuda), the toolkit's
#               cudart / cuBLAS / cuBLASLt / cuRAND and glibc: libcuebm.so, libstdc++, libgcc_s,
#               libgomp, libbenchmark, libcairo and its closure (pixman, fontconfig, freetype,
#               png, X11...). cuEBM is built as a shared library here (BUILD_SHARED_LIBS) so that
#               its device code (about 25 MB of sm_90 SASS + PTX) is packed once, not in every
#               binary.
#     bench/    the PyTorch peers (torch_langevin.py, torchebm_tutorial.py, compare_table.py)
#     fonts/    DejaVu Sans, the font of the figures (fontconfig falls back to it)
#     src/      GoogleTest's and nlohmann-json's sources, for a fallback build on the GPU machine
#     gpu-check.sh, run-gpu-check.sh   the check (a copy of tools/gpu-check.sh: after changing
#                                      that, repack with --no-build, seconds) and its runner
#     MANIFEST.txt                     commit, build flags, toolchain, sizes
#
# GoogleTest is linked statically (Debian ships libgtest.a); the test binary's compiled-in paths
# are overridden at run time by CUEBM_CLI_PATH / CUEBM_TEST_DATA_DIR (the runner sets them).
# Every binary is checked with ldd under the bundle's LD_LIBRARY_PATH: anything resolving
# outside the bundle other than the allowed libraries, or not found, fails the script, and so
# does a bundle over 60 MiB (binaries are stripped first if that is needed to fit).
#
# Usage: tools/gpu-bundle.sh [--out DIR] [--build DIR] [--no-build] [-j N]
#   --out DIR     the bundle folder (default: gpu-bundle/ at the repository root; replaced)
#   --build DIR   the build folder (default: build-bundle/)
#   --no-build    pack what the build folder holds (after configuring it if needed)
#   -j N          parallel build jobs (default 2)
# Environment: CUDA_HOME (default /usr/local/cuda), CUEBM_BUNDLE_MARCH (the CPU code's -march,
# default x86-64-v3: AVX2 + FMA, which every x86-64 H100/H200 host has; the build machine's
# -march=native could use instructions the GPU host lacks).
#
# On the GPU machine (device tool `run`, carry ["gpu-bundle"]): bash gpu-bundle/run-gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUTDIR=$ROOT/gpu-bundle
BUILD=$ROOT/build-bundle
DO_BUILD=1
JOBS=2
LIMIT_BYTES=$((60 * 1024 * 1024))
while (($#)); do
  case $1 in
    --out) OUTDIR=$(realpath -m "$2"); shift 2 ;;
    --build) BUILD=$(realpath -m "$2"); shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    -j) JOBS=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-bundle: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
CUDA_LIB=$CUDA_HOME/lib64
MARCH=${CUEBM_BUNDLE_MARCH:-x86-64-v3}
die() { echo "gpu-bundle: ERROR: $*" >&2; exit 1; }
say() { echo "gpu-bundle: $*"; }

case $OUTDIR in
  "$ROOT" | / | "$HOME") die "refusing to use $OUTDIR as the bundle folder" ;;
esac

# ---- 1. Configure and build (sm_90 SASS + compute_90 PTX: CMake's architecture "90"). ----
GEN=()
[[ -f $BUILD/CMakeCache.txt ]] || ! command -v ninja >/dev/null 2>&1 || GEN=(-G Ninja)
say "configuring $BUILD"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DCUEBM_ENABLE_CUDA=ON \
  -DCUEBM_CUDA_ARCHITECTURES=90 -DCUEBM_NATIVE=OFF "-DCMAKE_CXX_FLAGS=-march=$MARCH" \
  -DBUILD_SHARED_LIBS=ON -DCMAKE_CUDA_RUNTIME_LIBRARY=Shared \
  -DCUEBM_WERROR=ON -DCUEBM_BUILD_TESTS=ON -DCUEBM_BUILD_BENCHMARKS=ON \
  -DCUEBM_BUILD_EXAMPLES=ON >"$BUILD/gpu-bundle-configure.log" 2>&1 ||
  { cat "$BUILD/gpu-bundle-configure.log" >&2; die "configure failed"; }
grep -q "CUDA backend ON" "$BUILD/gpu-bundle-configure.log" ||
  die "CMake did not enable the CUDA backend (nvcc not found?): see $BUILD/gpu-bundle-configure.log"

REQUIRED=(cuebm_tests bench_cuebm fp32_peak cuebm cuda_app custom_energy_cuda)
OPTIONAL=(custom_energy train_gaussian_mixture)
TARGETS=(cuebm_tests bench_cuebm fp32_peak cuebm_cli cuda_app custom_energy_cuda custom_energy
         train_gaussian_mixture)
if ((DO_BUILD)); then
  say "building ${TARGETS[*]} with -j $JOBS (the fused kernels take minutes each)"
  cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" || die "build failed"
  # What the binaries were built from (a later --no-build repack reports this, not its own).
  {
    echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
      "$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '(working tree had changes)')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$BUILD/gpu-bundle-build-info.txt"
fi
[[ -f $BUILD/gpu-bundle-build-info.txt ]] ||
  die "$BUILD was not built by this script (no gpu-bundle-build-info.txt): run without --no-build"
for b in "${REQUIRED[@]}"; do
  [[ -x $BUILD/bin/$b ]] || die "$BUILD/bin/$b was not built"
done

# The device code must be sm_90 SASS plus compute_90 PTX (the PTX lets the driver JIT for a
# newer GPU): every CUDA compile line says so, and cuobjdump confirms it where the toolkit has it.
CU_LINES=$(grep -o '"command": "[^"]*\.cu[^"]*"' "$BUILD/compile_commands.json" || true)
[[ -n $CU_LINES ]] || die "no CUDA compile commands in $BUILD/compile_commands.json"
n_cu=$(grep -c . <<<"$CU_LINES")
n_90=$(grep -c -- '--generate-code=arch=compute_90,code=\[compute_90,sm_90\]' <<<"$CU_LINES" || true)
((n_cu == n_90)) || die "$((n_cu - n_90)) of $n_cu CUDA compile commands lack sm_90 SASS + PTX"
if grep -o 'arch=compute_[0-9]*' <<<"$CU_LINES" | grep -vq 'compute_90$'; then
  die "CUDA compile commands name architectures other than 90"
fi
say "device code: $n_cu CUDA files, each for sm_90 SASS + compute_90 PTX"
LIBCUEBM=$(find "$BUILD" -maxdepth 1 -name 'libcuebm.so*' -type f | head -1)
[[ -n $LIBCUEBM ]] || die "no shared libcuebm.so in $BUILD (BUILD_SHARED_LIBS=ON was not honoured)"
if command -v cuobjdump >/dev/null 2>&1 || [[ -x $CUDA_HOME/bin/cuobjdump ]]; then
  OBJDUMP=$(command -v cuobjdump || echo "$CUDA_HOME/bin/cuobjdump")
  "$OBJDUMP" --list-elf "$LIBCUEBM" | grep -q sm_90 || die "libcuebm.so holds no sm_90 SASS"
  "$OBJDUMP" --list-ptx "$LIBCUEBM" | grep -q sm_90 || die "libcuebm.so holds no compute_90 PTX"
fi

# ---- 2. Pack. ----
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"/{bin,lib,bench,fonts,src}
for b in "${REQUIRED[@]}" "${OPTIONAL[@]}"; do
  [[ -x $BUILD/bin/$b ]] && cp "$BUILD/bin/$b" "$OUTDIR/bin/"
done
cp "$ROOT"/bench/torch_langevin.py "$ROOT"/bench/torchebm_tutorial.py \
  "$ROOT"/bench/compare_table.py "$OUTDIR/bench/"
cp "$ROOT/tools/gpu-check.sh" "$OUTDIR/gpu-check.sh"
cat >"$OUTDIR/run-gpu-check.sh" <<'EOF'
#!/usr/bin/env bash
# Runs the GPU check from this bundle (made by tools/gpu-bundle.sh); arguments go to gpu-check.sh
# (--out DIR: where the logs and the table go, default $OUT when set). See gpu-check.sh.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$here/gpu-check.sh" --bundle "$here" "$@"
EOF
chmod +x "$OUTDIR/run-gpu-check.sh" "$OUTDIR/gpu-check.sh"

# The font the figures ask for; the runner points fontconfig at it when the machine has no
# fontconfig configuration of its own.
FONT=$(fc-match -f '%{file}' "DejaVu Sans" 2>/dev/null || true)
[[ -f $FONT ]] || FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [[ -f $FONT ]]; then cp "$FONT" "$OUTDIR/fonts/"; else say "warning: no DejaVu Sans font to ship"; fi

# Sources for a fallback build there (tests/CMakeLists.txt: CUEBM_GTEST_SOURCE_DIR;
# CMakeLists.txt: CUEBM_NLOHMANN_JSON_INCLUDE_DIR).
GTEST_SRC=$(sed -n 's/^CUEBM_GTEST_SOURCE_DIR:PATH=//p' "$BUILD/CMakeCache.txt")
[[ -f ${GTEST_SRC:-/usr/src/googletest}/CMakeLists.txt ]] || GTEST_SRC=/usr/src/googletest
if [[ -f $GTEST_SRC/CMakeLists.txt ]]; then
  cp -r "$GTEST_SRC" "$OUTDIR/src/googletest"
else
  say "warning: no GoogleTest source to ship (install Debian's googletest): no fallback build there"
fi
JSON_HDR=$(echo '#include <nlohmann/json.hpp>' | g++ -std=c++20 -x c++ -E -M - 2>/dev/null |
  tr ' \\' '\n\n' | grep -m1 '/nlohmann/json.hpp$' || true)
if [[ -n $JSON_HDR ]]; then
  mkdir -p "$OUTDIR/src/nlohmann_json"
  cp -r "$(dirname "$JSON_HDR")" "$OUTDIR/src/nlohmann_json/"
else
  say "warning: no nlohmann-json headers to ship: no fallback build there"
fi

# Shared libraries: everything ldd resolves (the transitive closure) except the allowed ones.
ALLOWED='^(linux-vdso\.so|libcuda\.so|libcudart\.so|libcublas\.so|libcublasLt\.so|libcurand\.so|libc\.so|libm\.so|libmvec\.so|libpthread\.so|libdl\.so|librt\.so|ld-linux[-a-z0-9_.]*\.so)'
copy_deps() {  # binary: copies its non-allowed libraries into lib/ under their sonames
  local line name path
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]=\>[[:space:]]not\ found ]]; then
      name=${BASH_REMATCH[1]}
      [[ $name =~ $ALLOWED ]] || die "$1 needs $name, which this machine does not have"
    elif [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]=\>[[:space:]]([^[:space:]]+) ]]; then
      name=${BASH_REMATCH[1]} path=${BASH_REMATCH[2]}
      [[ $name =~ $ALLOWED ]] && continue
      [[ -f $OUTDIR/lib/$name ]] || cp -L "$path" "$OUTDIR/lib/$name"
    fi
  done < <(LD_LIBRARY_PATH=$CUDA_LIB ldd "$1")
}
for b in "$OUTDIR"/bin/*; do copy_deps "$b"; done
chmod 0644 "$OUTDIR"/lib/* 2>/dev/null || true

# ---- 3. Size: strip when over the limit. ----
size_of() { du -sb "$OUTDIR" | cut -f1; }
if (($(size_of) > LIMIT_BYTES)); then
  say "$(($(size_of) / 1024 / 1024)) MiB is over 60 MiB: stripping the binaries and libraries"
  strip --strip-unneeded "$OUTDIR"/bin/* "$OUTDIR"/lib/*
fi

# ---- 4. The ldd check, under the runner's LD_LIBRARY_PATH. ----
BUNDLE_LD=$CUDA_LIB:$OUTDIR/lib
bad=0
summary=()
for f in "$OUTDIR"/bin/* "$OUTDIR"/lib/*; do
  n_bundle=0 n_system=0
  while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]=\>[[:space:]]*(.*)$ ]] || continue
    name=${BASH_REMATCH[1]} where=${BASH_REMATCH[2]}
    if [[ $where == "$OUTDIR"/lib/* ]]; then
      n_bundle=$((n_bundle + 1))
    elif [[ $name =~ $ALLOWED ]]; then
      n_system=$((n_system + 1))
      [[ $where == not\ found* ]] && say "note: $(basename "$f"): $name not found here (allowed)"
    else
      echo "gpu-bundle: LDD CHECK FAILED: $(basename "$f"): $name => $where" >&2
      bad=1
    fi
  done < <(LD_LIBRARY_PATH=$BUNDLE_LD ldd "$f" 2>&1)
  [[ $f == "$OUTDIR"/bin/* ]] &&
    summary+=("$(printf '  %-24s %2d from the bundle, %2d allowed (CUDA toolkit, glibc)' \
      "$(basename "$f")" "$n_bundle" "$n_system")")
done
((bad == 0)) || die "some libraries resolve outside the bundle (see above)"
say "ldd check passed (LD_LIBRARY_PATH=$BUNDLE_LD):"
printf '%s\n' "${summary[@]}"

# ---- 5. Manifest and size. ----
GLIBC_NEED=$(objdump -T "$OUTDIR"/bin/* "$OUTDIR"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' |
  sort -uV | tail -1)
{
  echo "cuEBM GPU bundle, packed $(date -u +%Y-%m-%dT%H:%M:%SZ) by tools/gpu-bundle.sh"
  cat "$BUILD/gpu-bundle-build-info.txt"
  echo "build: Release, CUEBM_CUDA_ARCHITECTURES=90 (sm_90 SASS + compute_90 PTX)," \
    "CPU code -march=$MARCH"
  echo "nvcc: $("$CUDA_HOME/bin/nvcc" --version | tail -1)"
  echo "g++: $(g++ --version | head -1)"
  echo "glibc here: $(ldd --version | head -1); newest symbol version needed: $GLIBC_NEED"
  echo "needs from the GPU machine: the driver (libcuda.so.1), $CUDA_LIB with" \
    "$(LD_LIBRARY_PATH=$CUDA_LIB ldd "$OUTDIR"/bin/* | grep -oE 'lib(cudart|cublas|cublasLt|curand)\.so\.[0-9]+' | sort -u | tr '\n' ' ')"
  echo
  (cd "$OUTDIR" && find . -type f ! -path './src/*' -printf '%9s  %p\n' | sort -k2)
  echo "$(find "$OUTDIR/src" -type f | wc -l) files under src/ ($(du -sh "$OUTDIR/src" | cut -f1))"
} >"$OUTDIR/MANIFEST.txt"

total=$(size_of)
say "bundle $OUTDIR: $(awk -v b="$total" 'BEGIN { printf "%.1f MiB", b / 1048576 }')" \
  "($(du -sh "$OUTDIR"/bin | cut -f1) bin, $(du -sh "$OUTDIR"/lib | cut -f1) lib," \
  "$(ls "$OUTDIR"/lib | wc -l) libraries, $(du -sh "$OUTDIR"/src | cut -f1) src)"
((total <= LIMIT_BYTES)) || die "the bundle is over 60 MiB even stripped"
say "on the GPU machine: device tool run, carry [\"gpu-bundle\"], command" \
  "'bash gpu-bundle/run-gpu-check.sh'"
