// Langevin sampling: MLP energies (the tutorial's 2-64-64-1 ReLU and a width / input-dim sweep)
// and analytic energies.
#include <benchmark/benchmark.h>

#include <exception>
#include <set>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/sampling/langevin.hpp"

namespace cuebm::bench {
namespace {

// The tutorial's sampler settings.
constexpr float kMlpStepSize = 0.1f;
constexpr float kMlpNoiseScale = 0.1f;

// Runs `batch` chains for options.n_steps steps from x0 per benchmark iteration.
void run_chains(benchmark::State& state, const Energy& energy, const std::vector<float>& x0,
                int64_t batch, const LangevinOptions& options, Device device,
                double flop_per_step) {
  for (auto _ : state) {
    try {
      LangevinResult r = langevin_sample(energy, x0.data(), batch, options, device);
      benchmark::DoNotOptimize(r.samples.data());
      benchmark::ClobberMemory();
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      break;
    }
  }
  const double steps = static_cast<double>(state.iterations()) * static_cast<double>(batch) *
                       static_cast<double>(options.n_steps);
  state.SetItemsProcessed(static_cast<int64_t>(steps));
  if (flop_per_step > 0)
    state.counters["GFLOP"] =
        benchmark::Counter(steps * flop_per_step * 1e-9, benchmark::Counter::kIsRate);
}

std::string langevin_mlp_name(const LangevinMlpCase& c) {
  return "Langevin/mlp:" + mlp_label(c.spec) + "/batch:" + std::to_string(c.batch) +
         "/k:" + std::to_string(c.k);
}

void register_mlp_case(const LangevinMlpCase& c, Device device, uint64_t seed) {
  const std::string name = langevin_mlp_name(c) + device_suffix(device);
  benchmark::RegisterBenchmark(
      name.c_str(),
      [c, device, seed](benchmark::State& state) {
        const Mlp mlp(c.spec, seed);
        const std::vector<float> x0 = normal_rows(c.batch, c.spec.input_dim, seed + 1);
        LangevinOptions options;
        options.step_size = kMlpStepSize;
        options.noise_scale = kMlpNoiseScale;
        options.n_steps = c.k;
        options.seed = seed;
        run_chains(state, mlp, x0, c.batch, options, device, langevin_step_flop(mlp));
      })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

struct AnalyticCase {
  std::string kind;
  float step_size;
};

void register_analytic_case(const AnalyticCase& a, int dim, int64_t batch, int k, Device device,
                            uint64_t seed) {
  const std::string name = "Langevin/" + a.kind + "/dim:" + std::to_string(dim) +
                           "/batch:" + std::to_string(batch) + "/k:" + std::to_string(k) +
                           device_suffix(device);
  benchmark::RegisterBenchmark(name.c_str(),
                               [a, dim, batch, k, device, seed](benchmark::State& state) {
                                 const AnalyticEnergy energy = AnalyticEnergy::by_name(a.kind, dim);
                                 // Started near the modes so no chain diverges at this eta.
                                 const std::vector<float> x0 =
                                     normal_rows(batch, dim, seed + 2, 0.5f);
                                 LangevinOptions options;
                                 options.step_size = a.step_size;
                                 options.noise_scale = 1.0f;
                                 options.n_steps = k;
                                 options.seed = seed;
                                 run_chains(state, energy, x0, batch, options, device, 0.0);
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

MlpSpec mlp_spec(int input_dim, int width) {
  MlpSpec spec;
  spec.input_dim = input_dim;
  spec.hidden = {width, width};
  spec.activation = Activation::kReLU;
  return spec;
}

}  // namespace

void register_langevin_benchmarks(const BenchConfig& config) {
  // The representative subset (the full cross product takes too long on two cores):
  // the tutorial MLP at every batch and k, a width sweep and an input-dim sweep at batch 4096.
  std::vector<LangevinMlpCase> cases;
  for (int64_t batch : {256, 4096, 65536})
    for (int k : {10, 100}) cases.push_back({mlp_spec(2, 64), batch, k});
  for (int width : {32, 64, 128, 256}) cases.push_back({mlp_spec(2, width), 4096, 10});
  for (int dim : {2, 32, 128}) cases.push_back({mlp_spec(dim, 64), 4096, 10});
  cases.push_back({mlp_spec(2, 256), 65536, 10});
  cases.push_back({mlp_spec(128, 256), 65536, 10});
  if (config.full_matrix)
    for (int dim : {2, 32, 128})
      for (int width : {32, 64, 128, 256})
        for (int64_t batch : {256, 4096, 65536})
          for (int k : {10, 100}) cases.push_back({mlp_spec(dim, width), batch, k});
  cases.insert(cases.end(), config.extra.begin(), config.extra.end());

  std::set<std::string> seen;
  for (const LangevinMlpCase& c : cases) {
    if (!seen.insert(langevin_mlp_name(c)).second) continue;
    for (const Device& device : config.devices) register_mlp_case(c, device, config.seed);
  }

  const std::vector<AnalyticCase> analytic = {
      {"harmonic", 1e-2f}, {"double_well", 1e-3f}, {"rosenbrock", 1e-4f}};
  for (const AnalyticCase& a : analytic)
    for (int dim : {2, 32})
      for (const Device& device : config.devices)
        register_analytic_case(a, dim, 65536, 100, device, config.seed);
}

}  // namespace cuebm::bench
