// bench_cuebm: Google Benchmark programs of cuEBM.
//
// Environment: CUEBM_BENCH_THREADS=N sets the CPU backend's threads (default: all cores);
// CUEBM_CPU_RUNTIME=openmp runs the CPU loops with OpenMP instead of cuEBM's pool, and
// CUEBM_POOL_IDLE_SPIN_US / CUEBM_POOL_JOIN_SPIN_US change the pool's spin limits (for
// comparisons: bench/busy_machine.sh).
// Extra flags (besides Google Benchmark's own):
//   --cuebm_full                     every Langevin case D in {2, 32, 128} x width in
//                                    {32, 64, 128, 256} x batch in {256, 4096, 65536} x k in {10,
//                                    100}
//   --cuebm_langevin=D-h1-..-1:B:k[:act]   one more Langevin MLP case (repeatable)
//   --cuebm_thread_policy=P1,P2,...  ThreadPolicy/... benchmarks: the tutorial's CD-10 iteration
//                                    under each policy (openmp, pool or
//                                    pool:IDLE_US:JOIN_US[:ADAPT]) at 1 thread and at all
//                                    cores' (--cuebm_policy_threads=1,2,... changes the counts)
// Every benchmark name ends in _CPU or _CUDA; _CUDA ones exist only where a device is present.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.hpp"

namespace {

int threads_from_environment() {
  const char* env = std::getenv("CUEBM_BENCH_THREADS");
  if (env == nullptr || *env == '\0') return omp_get_num_procs();
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (*end != '\0' || n < 1 || n > 4096) {
    std::cerr << "bench_cuebm: CUEBM_BENCH_THREADS must be a positive integer, got '" << env
              << "'\n";
    std::exit(2);
  }
  return static_cast<int>(n);
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

int positive_int(const std::string& text, const char* what) {
  char* end = nullptr;
  const long n = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || n < 1 || n > 4096)
    throw std::invalid_argument(std::string(what) + ": '" + text + "' is not a thread count");
  return static_cast<int>(n);
}

}  // namespace

int main(int argc, char** argv) {
  using cuebm::bench::BenchConfig;
  BenchConfig config;
  // Takes our flags out of argv before Google Benchmark sees it.
  std::vector<char*> rest = {argv[0]};
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      constexpr std::string_view kCase = "--cuebm_langevin=";
      constexpr std::string_view kPolicy = "--cuebm_thread_policy=";
      constexpr std::string_view kPolicyThreads = "--cuebm_policy_threads=";
      if (arg == "--cuebm_full") {
        config.full_matrix = true;
      } else if (arg.starts_with(kCase)) {
        config.extra.push_back(
            cuebm::bench::parse_langevin_case(std::string(arg.substr(kCase.size()))));
      } else if (arg.starts_with(kPolicy)) {
        for (const std::string& p : split_list(arg.substr(kPolicy.size())))
          config.thread_policies.push_back(cuebm::bench::parse_thread_policy(p));
      } else if (arg.starts_with(kPolicyThreads)) {
        for (const std::string& t : split_list(arg.substr(kPolicyThreads.size())))
          config.policy_threads.push_back(positive_int(t, "--cuebm_policy_threads"));
      } else {
        rest.push_back(argv[i]);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_cuebm: " << e.what() << "\n";
    return 2;
  }
  int rest_argc = static_cast<int>(rest.size());
  rest.push_back(nullptr);

  const int threads = threads_from_environment();
  cuebm::set_num_threads(threads);
  config.devices.push_back(cuebm::Device::cpu());
  const int cuda_devices = cuebm::cuda_device_count();
  // One GPU is enough for these workloads: the first device stands for all.
  if (cuda_devices > 0) config.devices.push_back(cuebm::Device::cuda(0));

  benchmark::AddCustomContext("cuebm_threads", std::to_string(cuebm::num_threads()));
  benchmark::AddCustomContext("cuebm_cpu_runtime", cuebm::detail::cpu_runtime_description());
  benchmark::AddCustomContext("cuebm_cuda_devices", std::to_string(cuda_devices));
  benchmark::AddCustomContext("cuebm_built_with_cuda", cuebm::built_with_cuda() ? "yes" : "no");

  cuebm::bench::register_langevin_benchmarks(config);
  cuebm::bench::register_cd_benchmarks(config);
  cuebm::bench::register_energy_benchmarks(config);
  cuebm::bench::register_mcmc_benchmarks(config);
  cuebm::bench::register_score_matching_benchmarks(config);
  if (config.policy_threads.empty()) config.policy_threads = {1, std::max(2, omp_get_num_procs())};
  cuebm::bench::register_thread_policy_benchmarks(config);

  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
