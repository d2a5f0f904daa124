// MALA and HMC: proposals (one step of one chain, accepted or rejected) per second on the
// tutorial MLP 2-64-64-1 ReLU and a 2-D Gaussian, with the settings of the TorchEBM peer
// (bench/torchebm_hmc.py: 500 chains, 10 leapfrog steps of 0.01, identity mass).
#include <benchmark/benchmark.h>

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/sampling/mcmc.hpp"

namespace cuebm::bench {
namespace {

constexpr int64_t kChains = 500;
constexpr int kSteps = 50;

template <class Run>
void time_proposals(benchmark::State& state, Run&& run) {
  for (auto _ : state) {
    try {
      McmcResult r = run();
      benchmark::DoNotOptimize(r.samples.data());
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kChains * kSteps);
}

void register_case(const std::string& label, std::shared_ptr<const Energy> energy, Device device,
                   uint64_t seed) {
  const std::vector<float> x0 = normal_rows(kChains, energy->dim(), seed + 1);
  const std::string suffix = "/batch:" + std::to_string(kChains) + "/L:10" + device_suffix(device);
  benchmark::RegisterBenchmark(
      ("HMC/" + label + suffix).c_str(),
      [=](benchmark::State& state) {
        HmcOptions o;
        o.step_size = 0.01f;
        o.n_leapfrog = 10;
        o.n_steps = kSteps;
        o.seed = seed;
        time_proposals(state, [&] { return hmc_sample(*energy, x0.data(), kChains, o, device); });
      })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark(
      ("MALA/" + label + "/batch:" + std::to_string(kChains) + device_suffix(device)).c_str(),
      [=](benchmark::State& state) {
        MalaOptions o;
        o.step_size = 0.01f;
        o.noise_scale = 0.1f;
        o.n_steps = kSteps;
        o.seed = seed;
        time_proposals(state, [&] { return mala_sample(*energy, x0.data(), kChains, o, device); });
      })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

void register_mcmc_benchmarks(const BenchConfig& config) {
  MlpSpec spec;
  spec.input_dim = 2;
  spec.hidden = {64, 64};
  spec.activation = Activation::kReLU;
  const auto mlp = std::make_shared<const Mlp>(spec, config.seed);
  const auto gauss = std::make_shared<const AnalyticEnergy>(
      AnalyticEnergy::gaussian({0.f, 0.f}, {1.0, 0.0, 0.0, 1.0}));
  for (const Device& device : config.devices) {
    register_case("mlp:" + mlp_label(spec), mlp, device, config.seed);
    register_case("gaussian/dim:2", gauss, device, config.seed);
  }
}

}  // namespace cuebm::bench
