// fp32_peak: the machine's float32 FMA throughput, per core and for all cores, measured with
// independent FMA chains held in registers (the denominator of the benchmarks' "% of peak").
//
// Usage: fp32_peak [--json]. Threads: CUEBM_BENCH_THREADS (default: all cores).
// Each vector width the compiler targets (128, 256 and, with AVX-512, 512 bits) is measured;
// the peak is the best of them. Compiled with -ffp-contract=fast so a * b + c is one FMA.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

// Independent accumulators: enough to cover FMA latency (4 cycles) times 2 FMA ports, and
// few enough to stay in 16 vector registers with the two constants.
constexpr int kChains = 12;

// GCC and Clang vector extensions: on any target without SIMD of a width the compiler lowers
// it to narrower or scalar code, so the 128-bit kernel is the portable fallback.
#if !defined(__GNUC__)
#error "fp32_peak needs the GCC / Clang vector extensions"
#endif
#if defined(__GNUC__)
typedef float V4 __attribute__((vector_size(16)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V16 __attribute__((vector_size(64)));
#endif

template <typename V>
constexpr int lanes() {
  return static_cast<int>(sizeof(V) / sizeof(float));
}

// Runs `iters` rounds of kChains independent acc = acc * a + b; returns a value that depends
// on every chain so nothing is optimised away.
template <typename V>
__attribute__((noinline)) float fma_chains(int64_t iters) {
  V acc[kChains];
  V a, b;
  for (int l = 0; l < lanes<V>(); ++l) {
    a[l] = 0.99999f;
    b[l] = 1e-6f;  // the chains converge to b / (1 - a) = 0.1: no overflow, no denormals
    for (int c = 0; c < kChains; ++c) acc[c][l] = 0.001f * static_cast<float>(c + l);
  }
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;
  }
  float s = 0;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < lanes<V>(); ++l) s += acc[c][l];
  return s;
}

template <typename V>
double flop_per_iter() {
  return 2.0 * kChains * lanes<V>();
}

volatile float g_sink;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// GFLOP/s of `threads` threads running the kernel together, best of `reps` runs: by wall
// clock (what a program gets now, on a shared machine) and by each thread's CPU time summed
// over the threads (what the cores deliver while they run this thread: the hardware peak).
struct Rate {
  double wall = 0, cpu = 0;
};

template <typename V>
Rate measure(int threads, int reps) {
  // Calibrate single-threaded to about 0.1 s per run.
  int64_t iters = 1 << 16;
  for (;;) {
    const double t0 = omp_get_wtime();
    g_sink = fma_chains<V>(iters);
    const double dt = omp_get_wtime() - t0;
    if (dt > 0.02) {
      iters = static_cast<int64_t>(static_cast<double>(iters) * 0.1 / dt) + 1;
      break;
    }
    iters *= 4;
  }
  const double flop = static_cast<double>(iters) * flop_per_iter<V>();
  Rate best;
  for (int r = 0; r < reps; ++r) {
    double t0 = 0, t1 = 0, cpu_rate = 0;
#pragma omp parallel num_threads(threads) reduction(+ : cpu_rate)
    {
#pragma omp barrier
#pragma omp master
      t0 = omp_get_wtime();
      const double c0 = thread_cpu_seconds();
      const float s = fma_chains<V>(iters);
      cpu_rate = flop / (thread_cpu_seconds() - c0) * 1e-9;
#pragma omp critical
      g_sink = g_sink + s;
#pragma omp barrier
#pragma omp master
      t1 = omp_get_wtime();
    }
    best.wall = std::max(best.wall, threads * flop / (t1 - t0) * 1e-9);
    best.cpu = std::max(best.cpu, cpu_rate);
  }
  return best;
}

const char* isa() {
#if defined(__AVX512F__)
  return "avx512f";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2+fma";
#elif defined(__AVX__)
  return "avx";
#elif defined(__ARM_NEON)
  return "neon";
#else
  return "generic";
#endif
}

// The 1-minute load average (other processes share these cores), or -1 when unknown.
double load_average() {
  double load = -1;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = -1;
    std::fclose(f);
  }
  return load;
}

int threads_from_environment() {
  const char* env = std::getenv("CUEBM_BENCH_THREADS");
  if (env == nullptr || *env == '\0') return omp_get_num_procs();
  const int n = std::atoi(env);
  return n >= 1 ? n : omp_get_num_procs();
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  if (argc > 2 || (argc == 2 && !json)) {
    std::fprintf(stderr, "usage: fp32_peak [--json]\n");
    return 2;
  }
  const int threads = threads_from_environment();
  constexpr int kReps = 7;
  struct Width {
    int bits;
    Rate one, all;
  };
  std::vector<Width> widths;
#if defined(__GNUC__)
  widths.push_back({128, measure<V4>(1, kReps), measure<V4>(threads, kReps)});
#if defined(__AVX__)
  widths.push_back({256, measure<V8>(1, kReps), measure<V8>(threads, kReps)});
#endif
#if defined(__AVX512F__)
  widths.push_back({512, measure<V16>(1, kReps), measure<V16>(threads, kReps)});
#endif
#endif
  const Width* best = &widths.front();
  for (const Width& w : widths)
    if (w.one.cpu > best->one.cpu) best = &w;
  const double load = load_average();
  if (json) {
    std::printf(
        "{\"isa\": \"%s\", \"threads\": %d, \"cores\": %d, \"vector_bits\": %d, "
        "\"per_core_gflops\": %.2f, \"total_gflops\": %.2f, \"wall_per_core_gflops\": %.2f, "
        "\"wall_total_gflops\": %.2f, \"load_average\": %.2f, \"by_width\": {",
        isa(), threads, omp_get_num_procs(), best->bits, best->one.cpu, best->all.cpu,
        best->one.wall, best->all.wall, load);
    for (std::size_t i = 0; i < widths.size(); ++i)
      std::printf("%s\"%d\": [%.2f, %.2f]", i ? ", " : "", widths[i].bits, widths[i].one.cpu,
                  widths[i].all.cpu);
    std::printf("}}\n");
    return 0;
  }
  std::printf(
      "fp32_peak: %s, %d independent FMA chains per thread, best of %d runs, "
      "1-minute load average %.2f\n",
      isa(), kChains, kReps, load);
  std::printf("  GFLOP/s per CPU-second of each thread (hardware rate) | by wall clock\n");
  for (const Width& w : widths)
    std::printf("  %3d-bit: 1 thread %8.2f, %d threads %8.2f | 1 thread %8.2f, %d threads %8.2f\n",
                w.bits, w.one.cpu, threads, w.all.cpu, w.one.wall, threads, w.all.wall);
  std::printf(
      "peak per core: %.2f GFLOP/s (%d-bit FMA); %d threads: %.2f GFLOP/s "
      "(by wall clock now: %.2f)\n",
      best->one.cpu, best->bits, threads, best->all.cpu, best->all.wall);
  return 0;
}
