// The CUDA CD trainer with MALA, HMC and tempering negatives (TrainerOptions::negatives): the
// negatives equal the device samplers' results from the same rows and keys bit for bit (the same
// kernels on the same parameters), they take the CPU trainer's decisions in plain and persistent
// CD, a resumed device run equals the uninterrupted one bit for bit, the acceptance rate comes
// back with the step's one download, and what the device cannot run is refused with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cd_samplers_support.hpp"
#include "cuda_skip.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/mcmc.hpp"
#include "cuebm/sampling/tempering.hpp"
#include "cuebm/training/cd.hpp"
#include "cuebm/training/training.hpp"
#include "invalid_argument_support.hpp"
#if CUEBM_HAVE_CUDA
#include "host/training/cuda_trainer.hpp"
#endif

namespace cuebm {
namespace {

using testing_support::bitwise_equal;
using testing_support::ExpectInvalid;
using testing_support::kDim;
using testing_support::kSpec;
using testing_support::random_rows;

// A copy of the model's parameters as the device holds them now.
Mlp snapshot(CDTrainer& trainer, const Mlp& m) {
  trainer.sync_to_host();
  Mlp copy(m.spec(), 0);
  std::copy(m.parameters().begin(), m.parameters().end(), copy.parameters().begin());
  return copy;
}

// Weights 4 times PyTorch's initial scale: an energy curved enough that the step sizes below
// reject a fair share of the proposals, so both outcomes of the decisions are compared.
Mlp sharp_model(uint64_t seed) {
  Mlp m(kSpec, seed);
  for (float& w : m.parameters()) w *= 4.0f;
  return m;
}

TrainerOptions options(NegativeSampler kind, int k, float eta, float sigma, uint64_t seed) {
  TrainerOptions o = testing_support::cd_options(kind, k, eta, sigma, seed);
  o.negatives.hmc_step_size = 0.25f;
  o.negatives.leapfrog = 3;
  o.negatives.mass = {0.5f, 1.0f, 2.0f};
  o.negatives.replicas = 4;
  o.negatives.t_max = 2.0;
  o.negatives.swap_every = 2;
  return o;
}

const NegativeSampler kSamplers[] = {NegativeSampler::mala, NegativeSampler::hmc,
                                     NegativeSampler::tempering};

// ---------------------------------------------------------------------------------------------
// Against the device samplers: the same kernels on the same parameters and keys, so bit for bit.

TEST(CudaCdSamplers, MalaAndHmcNegativesEqualTheDeviceSamplersBitForBit) {
  CUEBM_REQUIRE_CUDA();
  const int64_t rows = 37;
  for (NegativeSampler kind : {NegativeSampler::mala, NegativeSampler::hmc}) {
    Mlp model = sharp_model(31);
    // sigma = 1 for HMC: the trainer's target exp(-E / sigma^2) is hmc_sample's exp(-E).
    TrainerOptions o = options(kind, 5, 0.3f, kind == NegativeSampler::hmc ? 1.0f : 0.4f, 7);
    o.negatives.hmc_step_size = 0.5f;  // rejects a fair share at temperature 1
    CDTrainer trainer(model, o, rows, Device::cuda(0));
    for (int it = 0; it < 3; ++it) {
      const std::vector<float> batch = random_rows(rows, kDim, 100 + it);
      const Mlp before = snapshot(trainer, model);
      const StepStats s = trainer.step(batch.data(), rows);
      McmcResult ref;
      if (kind == NegativeSampler::mala) {
        MalaOptions m;
        m.step_size = 0.3f;
        m.noise_scale = 0.4f;
        m.n_steps = 5;
        m.seed = 7;
        m.step_offset = static_cast<uint64_t>(it) * 5;
        ref = mala_sample(before, batch.data(), rows, m, Device::cuda(0));
      } else {
        HmcOptions h;
        h.step_size = 0.5f;
        h.n_leapfrog = 3;
        h.mass = o.negatives.mass;
        h.n_steps = 5;
        h.seed = 7;
        h.step_offset = static_cast<uint64_t>(it) * 5;
        ref = hmc_sample(before, batch.data(), rows, h, Device::cuda(0));
      }
      const std::string what = negative_sampler_name(kind) + " iteration " + std::to_string(it);
      EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), ref.samples.data(), rows * kDim)) << what;
      // Both are the exact accepted total over rows * k.
      EXPECT_EQ(s.acceptance, ref.mean_acceptance) << what;
      EXPECT_GT(s.acceptance, 0.1) << what;
      EXPECT_LT(s.acceptance, 0.97) << what;  // some rejections: the accept/reject step is live
    }
  }
}

// At noise_scale 0.5 the trainer's HMC targets exp(-4 E). Scaling the last layer's weights and
// bias by 4 (a power of two: exact in float) gives a model whose energy and gradient are exactly
// 4 E and 4 dE/dx on the device too, so hmc_sample on it is the oracle, bit for bit.
TEST(CudaCdSamplers, HmcNegativesTargetTheLangevinTemperature) {
  CUEBM_REQUIRE_CUDA();
  Mlp model(kSpec, 24);
  TrainerOptions o = options(NegativeSampler::hmc, 3, 0.02f, 0.5f, 80);
  o.negatives.hmc_step_size = 0;  // derived: sqrt(2 eta) sigma
  o.negatives.leapfrog = 10;
  o.negatives.mass.clear();
  const int64_t rows = 25;
  CDTrainer trainer(model, o, rows, Device::cuda(0));
  const std::vector<float> batch = random_rows(rows, kDim, 400);
  Mlp scaled = snapshot(trainer, model);
  const std::size_t last = static_cast<std::size_t>(kSpec.hidden.back()) + 1;  // weight + bias
  for (std::size_t i = scaled.parameters().size() - last; i < scaled.parameters().size(); ++i)
    scaled.parameters()[i] *= 4.0f;
  const Mlp at_one = snapshot(trainer, model);
  trainer.step(batch.data(), rows);
  HmcOptions h;
  h.step_size = std::sqrt(2.0f * 0.02f) * 0.5f;
  h.n_leapfrog = 10;
  h.n_steps = 3;
  h.seed = 80;
  const McmcResult ref = hmc_sample(scaled, batch.data(), rows, h, Device::cuda(0));
  EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), ref.samples.data(), rows * kDim));
  // The unscaled model (temperature 1) moves differently: the check can fail.
  const McmcResult one = hmc_sample(at_one, batch.data(), rows, h, Device::cuda(0));
  EXPECT_FALSE(bitwise_equal(trainer.last_negatives(), one.samples.data(), rows * kDim));
}

TEST(CudaCdSamplers, TemperingNegativesEqualDeviceParallelTemperingBitForBit) {
  CUEBM_REQUIRE_CUDA();
  Mlp model = sharp_model(25);
  const TrainerOptions o = options(NegativeSampler::tempering, 7, 0.05f, 0.4f, 81);
  const int64_t rows = 23;
  CDTrainer trainer(model, o, rows, Device::cuda(0));
  const std::vector<float> batch = random_rows(rows, kDim, 500);
  const Mlp before = snapshot(trainer, model);
  const StepStats s = trainer.step(batch.data(), rows);
  TemperingOptions t;
  t.n_replicas = 4;
  t.t_min = static_cast<double>(0.4f) * 0.4f;
  t.t_max = 2.0;
  t.step_size = 0.05f;
  t.n_steps = 7;
  t.swap_every = 2;
  t.seed = 81;
  const TemperingResult ref = parallel_tempering(before, batch.data(), rows, t, Device::cuda(0));
  EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), ref.samples.data(), rows * kDim));
  double moves = 0;
  for (double a : ref.move_acceptance) moves += a / 4;  // another order of the same counts
  EXPECT_NEAR(s.acceptance, moves, 1e-12);
  double swaps = 0;
  for (double a : ref.swap_acceptance) swaps += a;
  EXPECT_GT(swaps, 0) << "no swap happened: the swap keys went untested";
}

// ---------------------------------------------------------------------------------------------
// Against the CPU trainer: the same decisions.

// The GPU's general MLP sums in its own order and cuBLAS accumulates the parameter gradients in
// another order than the CPU, so energies and parameters differ in the last bits. A row agrees
// when its negative matches to 1e-4 relative (the policy of CudaMcmc.MalaAndHmcMatchTheCpu...
// and CudaCD.ThreeStepsMatchCpu). A row can disagree only when some decision had log u within
// about 1e-6 of log alpha and the dynamics amplified the difference: at most 2% of the rows may.
int64_t rows_that_differ(const float* gpu, const float* cpu, int64_t rows, int dim) {
  int64_t differ = 0;
  for (int64_t r = 0; r < rows; ++r) {
    bool same = true;
    for (int i = 0; i < dim; ++i) {
      const float a = gpu[r * dim + i], b = cpu[r * dim + i];
      same = same && std::abs(a - b) <= 1e-4 * (1 + std::abs(b));
    }
    differ += same ? 0 : 1;
  }
  return differ;
}

TEST(CudaCdSamplers, DeviceTrainerTakesTheCpuTrainersDecisions) {
  CUEBM_REQUIRE_CUDA();
  const int64_t batch = 64;
  for (bool persistent : {false, true}) {
    for (NegativeSampler kind : kSamplers) {
      TrainerOptions o = options(kind, 4, 0.3f, 0.4f, 90);
      if (kind == NegativeSampler::tempering) o.sampler.step_size = 0.1f;
      o.cd.persistent = persistent;
      o.cd.buffer_size = 150;  // three initialisation chunks of at most `batch` chains
      o.cd.init_steps = 3;
      Mlp cpu_model = sharp_model(41), gpu_model = sharp_model(41);
      CDTrainer cpu(cpu_model, o, batch, Device::cpu());
      CDTrainer gpu(gpu_model, o, batch, Device::cuda(0));
      const std::string run =
          std::string(persistent ? "PCD " : "CD ") + negative_sampler_name(kind);
      int64_t differ_total = 0, rows_total = 0;
      for (int it = 0; it < 3; ++it) {
        const std::vector<float> data = random_rows(batch, kDim, 900 + it);
        const StepStats sc = cpu.step(data.data(), batch);
        const StepStats sg = gpu.step(data.data(), batch);
        const std::string what = run + " iteration " + std::to_string(it);
        ASSERT_FALSE(std::isnan(sg.acceptance)) << what;
        // Both outcomes among the 256 decisions (PCD's first start rows, near the origin after
        // a short initialisation, reject most).
        EXPECT_GT(sc.acceptance, 0.02) << what;
        EXPECT_LT(sc.acceptance, 0.98) << what;
        EXPECT_EQ(gpu.last_buffer_rows(), cpu.last_buffer_rows()) << what;
        const int64_t differ =
            rows_that_differ(gpu.last_negatives(), cpu.last_negatives(), batch, kDim);
        EXPECT_LE(differ, batch / 50) << what << ": rows that disagree";
        differ_total += differ;
        rows_total += batch;
        // Every decision the same: the same counts, so the same ratio bit for bit.
        if (differ == 0) {
          EXPECT_EQ(sg.acceptance, sc.acceptance) << what;
        }
        EXPECT_NEAR(sg.loss, sc.loss, 1e-4 + 1e-3 * std::abs(sc.loss)) << what;
      }
      if (persistent) {
        ASSERT_EQ(gpu.replay_buffer().size(), cpu.replay_buffer().size());
        const int64_t differ =
            rows_that_differ(gpu.replay_buffer().data(), cpu.replay_buffer().data(), 150, kDim);
        EXPECT_LE(differ, 150 / 50) << run << ": replay-buffer rows that disagree";
      }
      std::cout << "[ decisions ] " << run << ": " << differ_total << " of " << rows_total
                << " negatives differ\n";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Resume, traffic and refusals.

TEST(CudaCdSamplers, ResumedDeviceRunEqualsTheUninterruptedOneBitForBit) {
  CUEBM_REQUIRE_CUDA();
  for (NegativeSampler kind : kSamplers) {
    TrainerOptions o = options(kind, 3, 0.2f, 0.4f, 11);
    o.cd.persistent = true;
    o.cd.buffer_size = 40;
    o.cd.init_steps = 2;
    const int64_t batch = 16;
    Mlp whole_model = sharp_model(51), first_model = sharp_model(51);
    CDTrainer whole(whole_model, o, batch, Device::cuda(0));
    CDTrainer first(first_model, o, batch, Device::cuda(0));
    std::vector<std::vector<float>> data;
    for (int it = 0; it < 4; ++it) data.push_back(random_rows(batch, kDim, 70 + it));
    std::vector<StepStats> expect;
    for (int it = 0; it < 4; ++it) expect.push_back(whole.step(data[it].data(), batch));
    for (int it = 0; it < 2; ++it) first.step(data[it].data(), batch);
    // A fresh trainer from the first one's model, optimiser and trainer state.
    first.sync_to_host();
    Mlp resumed_model(kSpec, 0);
    std::copy(first_model.parameters().begin(), first_model.parameters().end(),
              resumed_model.parameters().begin());
    CDTrainer resumed(resumed_model, o, batch, Device::cuda(0));
    resumed.optimizer().load_state(first.optimizer().steps(), first.optimizer().first_moment(),
                                   first.optimizer().second_moment());
    resumed.load_state(first.state());
    const std::string name = negative_sampler_name(kind);
    for (int it = 2; it < 4; ++it) {
      const StepStats s = resumed.step(data[it].data(), batch);
      EXPECT_EQ(s.loss, expect[it].loss) << name << " iteration " << it;
      EXPECT_EQ(s.acceptance, expect[it].acceptance) << name << " iteration " << it;
    }
    EXPECT_TRUE(bitwise_equal(resumed.last_negatives(), whole.last_negatives(), batch * kDim))
        << name;
    EXPECT_EQ(resumed.replay_buffer(), whole.replay_buffer()) << name;
    resumed.sync_to_host();
    whole.sync_to_host();
    EXPECT_TRUE(std::equal(resumed_model.parameters().begin(), resumed_model.parameters().end(),
                           whole_model.parameters().begin()))
        << name;
  }
}

TEST(CudaCdSamplers, StepCopiesOnlyStatisticsWithTheAcceptance) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  for (NegativeSampler kind : {NegativeSampler::langevin, NegativeSampler::mala,
                               NegativeSampler::hmc, NegativeSampler::tempering}) {
    TrainerOptions o = options(kind, 2, 0.05f, 0.4f, 12);
    o.cd.persistent = true;
    o.cd.buffer_size = 64;
    o.cd.init_steps = 2;
    Mlp model = sharp_model(61);
    CDTrainer trainer(model, o, 32, Device::cuda(0));
    for (int it = 0; it < 3; ++it) {
      const std::vector<float> data = random_rows(32, kDim, 80 + it);
      const detail::CudaTrainerTraffic before = detail::cuda_trainer_traffic_for_testing();
      const StepStats s = trainer.step(data.data(), 32);
      const detail::CudaTrainerTraffic after = detail::cuda_trainer_traffic_for_testing();
      const std::string what = negative_sampler_name(kind) + " step " + std::to_string(it);
      if (it > 0) {  // warm: the first step initialises the buffer, once
        EXPECT_EQ(after.d2h_bytes - before.d2h_bytes, 6 * 8) << what << ": six statistics";
        EXPECT_EQ(after.syncs - before.syncs, 1) << what;
      }
      if (kind == NegativeSampler::langevin) {
        EXPECT_TRUE(std::isnan(s.acceptance)) << what;
      } else {
        EXPECT_GT(s.acceptance, 0.0) << what;
        EXPECT_LE(s.acceptance, 1.0) << what;
      }
    }
  }
#endif
}

TEST(CudaCdSamplers, MoreReplicasThanABlockHoldsAreRefused) {
  CUEBM_REQUIRE_CUDA();
  Mlp model(kSpec, 29);
  TrainerOptions o = options(NegativeSampler::tempering, 2, 0.05f, 0.4f, 1);
  o.negatives.replicas = 65;
  ExpectInvalid([&] { CDTrainer t(model, o, 8, Device::cuda(0)); },
                {"at most 64 replicas", "got 65"});
  TrainConfig c;
  c.output_dir.clear();
  c.device = Device::cuda(0);
  c.negatives.kind = NegativeSampler::tempering;
  c.negatives.replicas = 65;
  ExpectInvalid([&] { validate_train_config(c); }, {"training", "at most 64 replicas"});
  o.negatives.replicas = 64;  // the most a chain may have: runs
  CDTrainer t(model, o, 2, Device::cuda(0));
  const std::vector<float> data = random_rows(2, kDim, 3);
  EXPECT_TRUE(std::isfinite(t.step(data.data(), 2).loss));
}

}  // namespace
}  // namespace cuebm
