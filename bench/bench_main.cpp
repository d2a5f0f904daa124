// bench_cuebm: Google Benchmark programs of cuEBM.
//
// Environment: CUEBM_BENCH_THREADS=N sets the CPU backend's threads (default: all cores).
// Extra flags (besides Google Benchmark's own):
//   --cuebm_full                     every Langevin case D in {2, 32, 128} x width in
//                                    {32, 64, 128, 256} x batch in {256, 4096, 65536} x k in {10,
//                                    100}
//   --cuebm_langevin=D-h1-..-1:B:k[:act]   one more Langevin MLP case (repeatable)
// Every benchmark name ends in _CPU or _CUDA; _CUDA ones exist only where a device is present.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdlib>
#include <exception>
#include <iostream>
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
      if (arg == "--cuebm_full") {
        config.full_matrix = true;
      } else if (arg.starts_with(kCase)) {
        config.extra.push_back(
            cuebm::bench::parse_langevin_case(std::string(arg.substr(kCase.size()))));
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
  benchmark::AddCustomContext("cuebm_cuda_devices", std::to_string(cuda_devices));
  benchmark::AddCustomContext("cuebm_built_with_cuda", cuebm::built_with_cuda() ? "yes" : "no");

  cuebm::bench::register_langevin_benchmarks(config);
  cuebm::bench::register_cd_benchmarks(config);
  cuebm::bench::register_energy_benchmarks(config);

  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
