// Batched energy and input-gradient evaluation of the tutorial MLP (Energy::energy and
// Energy::gradient). These entry points run on the CPU backend only, so there is no _CUDA twin.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench_common.hpp"

namespace cuebm::bench {
namespace {

void register_energy_case(int64_t rows, bool gradient, uint64_t seed) {
  const MlpSpec spec{2, {64, 64}, Activation::kReLU};
  const std::string name = std::string(gradient ? "Gradient" : "Energy") +
                           "/mlp:" + mlp_label(spec) + "/rows:" + std::to_string(rows) +
                           device_suffix(Device::cpu());
  benchmark::RegisterBenchmark(
      name.c_str(),
      [spec, rows, gradient, seed](benchmark::State& state) {
        const Mlp mlp(spec, seed);
        const std::vector<float> x = normal_rows(rows, spec.input_dim, seed + 4);
        std::vector<float> e(rows), g(gradient ? x.size() : 0);
        for (auto _ : state) {
          if (gradient)
            mlp.gradient(x.data(), rows, g.data(), e.data());
          else
            mlp.energy(x.data(), rows, e.data());
          benchmark::DoNotOptimize(e.data());
          benchmark::ClobberMemory();
        }
        const double n = static_cast<double>(state.iterations()) * static_cast<double>(rows);
        state.SetItemsProcessed(static_cast<int64_t>(n));
        // Forward: 2 * macs FLOP per row; forward plus dE/dx: 4 * macs.
        const double flop = (gradient ? 4.0 : 2.0) * static_cast<double>(mlp_macs(mlp));
        state.counters["GFLOP"] = benchmark::Counter(n * flop * 1e-9, benchmark::Counter::kIsRate);
      })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

void register_energy_benchmarks(const BenchConfig& config) {
  for (bool gradient : {false, true})
    for (int64_t rows : {4096, 65536}) register_energy_case(rows, gradient, config.seed);
}

}  // namespace cuebm::bench
