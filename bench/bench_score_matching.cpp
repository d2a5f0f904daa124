// Score-matching losses (cuebm/training/score_matching.hpp): one training iteration's loss work,
// the batch-mean loss and its parameter gradient, at batch 256 on the tutorial MLP 2-64-64-1
// ReLU and on 2-128-128-1 SiLU, with TorchEBM 0.3.17's default settings (exact Hessian; 5
// Rademacher projections; noise scale 0.01). The peer, bench/torchebm_score_matching.py, times
// TorchEBM's loss(x) + backward() on the same shapes; bench/compare_score_matching.sh prints both.
// GPU cases (host arrays in and out, one synchronisation per iteration) only with a CUDA device.
#include <benchmark/benchmark.h>

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/training/score_matching.hpp"

namespace cuebm::bench {
namespace {

constexpr int64_t kBatch = 256;

struct LossCase {
  const char* label;  // as the peer script names it
  ScoreLossOptions options;
};

std::vector<LossCase> loss_cases() {
  ScoreLossOptions sm;  // exact Hessian trace
  ScoreLossOptions ssm;
  ssm.kind = ScoreLossKind::kSlicedScoreMatching;  // 5 Rademacher projections
  ScoreLossOptions dsm;
  dsm.kind = ScoreLossKind::kDenoisingScoreMatching;  // sigma 0.01
  return {{"sm", sm}, {"ssm", ssm}, {"dsm", dsm}};
}

void register_case(const LossCase& c, const MlpSpec& spec, Device device, uint64_t seed) {
  const auto mlp = std::make_shared<const Mlp>(spec, seed);
  const auto x =
      std::make_shared<const std::vector<float>>(training_rows(kBatch, spec.input_dim, seed + 1));
  const std::string name = std::string("ScoreLoss/") + c.label + "/mlp:" + mlp_label(spec) +
                           "/batch:" + std::to_string(kBatch) + device_suffix(device);
  const ScoreLossOptions options = c.options;
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& state) {
                                 try {
                                   ScoreLoss loss(mlp->spec(), options, kBatch, device);
                                   std::vector<float> grad(mlp->num_parameters());
                                   uint64_t iteration = 0;
                                   for (auto _ : state) {
                                     const double v = loss.evaluate(*mlp, x->data(), kBatch,
                                                                    iteration++, grad.data());
                                     benchmark::DoNotOptimize(v);
                                     benchmark::DoNotOptimize(grad.data());
                                   }
                                 } catch (const std::exception& e) {
                                   state.SkipWithError(e.what());
                                 }
                                 state.SetItemsProcessed(state.iterations());
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

void register_score_matching_benchmarks(const BenchConfig& config) {
  const MlpSpec tutorial{2, {64, 64}, Activation::kReLU};
  const MlpSpec silu{2, {128, 128}, Activation::kSiLU};
  for (const Device& device : config.devices)
    for (const LossCase& c : loss_cases())
      for (const MlpSpec& spec : {tutorial, silu}) register_case(c, spec, device, config.seed);
}

}  // namespace cuebm::bench
