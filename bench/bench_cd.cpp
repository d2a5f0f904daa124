// One CD-10 training iteration (CDTrainer::step): the tutorial's settings and TorchEBM's
// benchmark settings.
#include <benchmark/benchmark.h>

#include <exception>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "cuebm/training/cd.hpp"

namespace cuebm::bench {
namespace {

struct CdCase {
  MlpSpec spec;
  int64_t batch;
  float step_size;
  float noise_scale;
};

// Batches cycled through, so the iterations do not all see the same rows.
constexpr int kBatchesInPool = 8;

// One CD-10 iteration per benchmark iteration: the trainer is built first (not timed).
void run_cd(benchmark::State& state, const CdCase& c, Device device, uint64_t seed) {
  Mlp model(c.spec, seed);
  TrainerOptions options;
  options.cd.k_steps = 10;
  options.sampler.step_size = c.step_size;
  options.sampler.noise_scale = c.noise_scale;
  options.adam.lr = 1e-3f;
  options.max_grad_norm = 1.0f;
  options.seed = seed;
  const int dim = c.spec.input_dim;
  const std::vector<float> data = training_rows(c.batch * kBatchesInPool, dim, seed + 3);
  try {
    CDTrainer trainer(model, options, c.batch, device);
    int64_t i = 0;
    for (auto _ : state) {
      const float* batch = data.data() + (i++ % kBatchesInPool) * c.batch * dim;
      StepStats stats = trainer.step(batch, c.batch);
      benchmark::DoNotOptimize(stats);
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  const double its = static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
  // k chain-steps per row, then forward + backward + weight gradients (6 * macs) for the
  // positive and the negative rows.
  const double macs = static_cast<double>(mlp_macs(model));
  const double flop = static_cast<double>(c.batch) * (10.0 * 4.0 * macs + 2.0 * 6.0 * macs);
  state.counters["GFLOP"] = benchmark::Counter(its * flop * 1e-9, benchmark::Counter::kIsRate);
}

void register_cd_case(const CdCase& c, Device device, uint64_t seed) {
  const std::string name =
      "CD10/mlp:" + mlp_label(c.spec) + "/batch:" + std::to_string(c.batch) + device_suffix(device);
  benchmark::RegisterBenchmark(
      name.c_str(), [c, device, seed](benchmark::State& state) { run_cd(state, c, device, seed); })
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

const CdCase kTutorial{{2, {64, 64}, Activation::kReLU}, 256, 0.1f, 0.1f};

}  // namespace

void register_cd_benchmarks(const BenchConfig& config) {
  std::vector<CdCase> cases;
  cases.push_back(kTutorial);  // 2-64-64-1 ReLU, batch 256, eta 0.1, sigma 0.1
  // TorchEBM's published benchmark: MLP D-128-128-1 SiLU, k = 10, batch 64 to 1024.
  for (int dim : {2, 32})
    for (int64_t batch : {64, 256, 1024})
      cases.push_back({{dim, {128, 128}, Activation::kSiLU}, batch, 0.01f, 0.1f});
  for (const CdCase& c : cases)
    for (const Device& device : config.devices) register_cd_case(c, device, config.seed);
}

void register_thread_policy_benchmarks(const BenchConfig& config) {
  for (const ThreadPolicy& policy : config.thread_policies) {
    for (int threads : config.policy_threads) {
      const std::string name = "ThreadPolicy/CD10/mlp:" + mlp_label(kTutorial.spec) +
                               "/batch:" + std::to_string(kTutorial.batch) +
                               "/threads:" + std::to_string(threads) + "/" + policy.label + "_CPU";
      benchmark::RegisterBenchmark(name.c_str(),
                                   [policy, threads, seed = config.seed](benchmark::State& state) {
                                     // This benchmark's settings, and the previous ones back
                                     // afterwards.
                                     const int saved_threads = num_threads();
                                     const detail::CpuRuntime saved_runtime = detail::cpu_runtime();
                                     const detail::PoolPolicy saved_policy = detail::pool_policy();
                                     set_num_threads(threads);
                                     detail::set_cpu_runtime(policy.runtime);
                                     detail::set_pool_policy(policy.pool);
                                     run_cd(state, kTutorial, Device::cpu(), seed);
                                     set_num_threads(saved_threads);
                                     detail::set_cpu_runtime(saved_runtime);
                                     detail::set_pool_policy(saved_policy);
                                   })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace cuebm::bench
