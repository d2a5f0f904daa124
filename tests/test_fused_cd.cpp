// CD's fused CPU iteration (host/training/fused_cd.hpp) against the unfused one it replaces:
// run_chains_cpu from the batch, then Mlp::energy_and_parameter_gradient on [batch; negatives].
// The fusion only reorders work between threads, never a sum, so the negatives, the energies and
// the gradient must be equal bit for bit, for every activation and thread count.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "host/sampling/chain_runner.hpp"
#include "host/training/fused_cd.hpp"
#include "invalid_argument_support.hpp"
#include "kernels/training/optim.cuh"

namespace {

using cuebm::Activation;
using cuebm::kRowBlock;
using cuebm::Mlp;
using cuebm::MlpSpec;
using cuebm::detail::ChainPlan;

struct Iteration {
  std::vector<float> neg, energies, grad;
};

struct ChainSettings {
  int k_steps = 3;
  float reg_weight = 0.1f;
  bool clamp = false;
  std::vector<float> eta, noise_coef;
  ChainPlan plan() {
    eta.assign(k_steps, 0.05f);
    noise_coef.assign(k_steps, std::sqrt(2.0f * 0.05f) * 0.1f);
    ChainPlan p;
    p.n_steps = k_steps;
    p.eta = eta.data();
    p.noise_coef = noise_coef.data();
    p.seed = 7;
    p.step_offset = 30;
    p.clamp = clamp;
    p.clamp_min = -0.5f;
    p.clamp_max = 0.5f;
    return p;
  }
};

std::vector<float> Batch(int64_t rows, int dim) {
  std::mt19937 gen(static_cast<uint32_t>(rows));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(rows * dim);
  for (float& v : x) v = normal(gen);
  return x;
}

Iteration Fused(const Mlp& m, const std::vector<float>& batch, int64_t rows, ChainSettings& s) {
  Iteration it{std::vector<float>(batch.size()), std::vector<float>(2 * rows),
               std::vector<float>(m.num_parameters())};
  // Stale values, as a trainer's buffer holds after an iteration: the partials must be written.
  std::vector<float> partials(cuebm::detail::fused_cd_partial_floats(m, rows), 7.0f);
  cuebm::detail::fused_cd_iteration(m, batch.data(), rows, s.plan(), s.reg_weight, it.neg.data(),
                                    it.energies.data(), it.grad.data(), partials.data());
  return it;
}

Iteration Unfused(const Mlp& m, const std::vector<float>& batch, int64_t rows, ChainSettings& s) {
  Iteration it{batch, std::vector<float>(2 * rows), std::vector<float>(m.num_parameters())};
  cuebm::detail::run_chains_cpu(m, it.neg.data(), rows, s.plan());
  std::vector<float> both(batch);
  both.insert(both.end(), it.neg.begin(), it.neg.end());
  const float inv_n = 1.0f / static_cast<float>(rows);
  m.energy_and_parameter_gradient(
      both.data(), 2 * rows,
      [&](int64_t row0, int n, const float* e, float* c) {
        for (int r = 0; r < n; ++r)
          c[r] = cuebm::detail::cd_coefficient(e[r], row0 + r < rows, s.reg_weight, inv_n);
      },
      it.energies.data(), it.grad.data());
  return it;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void ExpectSameIteration(const Iteration& got, const Iteration& want) {
  EXPECT_TRUE(SameBits(got.neg, want.neg)) << "negatives differ";
  EXPECT_TRUE(SameBits(got.energies, want.energies)) << "energies differ";
  EXPECT_TRUE(SameBits(got.grad, want.grad)) << "gradient differs";
}

class FusedCd : public ::testing::TestWithParam<Activation> {};

TEST_P(FusedCd, EqualsChainsThenEnergyAndGradientBitForBit) {
  const Mlp m(MlpSpec{2, {20, 37}, GetParam()}, 3);
  for (int64_t rows : {int64_t{kRowBlock}, int64_t{8 * kRowBlock}, int64_t{32 * kRowBlock}}) {
    SCOPED_TRACE("rows " + std::to_string(rows));
    const std::vector<float> batch = Batch(rows, m.dim());
    ChainSettings s;
    const Iteration want = Unfused(m, batch, rows, s);
    ExpectSameIteration(Fused(m, batch, rows, s), want);
    // Not a trivial equality: the chains moved and the gradient is not zero.
    EXPECT_FALSE(SameBits(want.neg, batch));
    double norm = 0;
    for (float g : want.grad) norm += double{g} * g;
    EXPECT_GT(norm, 0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Activations, FusedCd,
                         ::testing::Values(Activation::kReLU, Activation::kSiLU, Activation::kTanh,
                                           Activation::kLeakyReLU, Activation::kGELU,
                                           Activation::kSoftplus));

TEST(FusedCdOptions, ClampOneStepAndOtherDimensionsStayBitIdentical) {
  const Mlp m(MlpSpec{5, {64, 64}, Activation::kReLU}, 11);
  const int64_t rows = 4 * kRowBlock;
  const std::vector<float> batch = Batch(rows, m.dim());
  ChainSettings s;
  s.k_steps = 1;
  s.clamp = true;
  s.reg_weight = 0.0f;
  ExpectSameIteration(Fused(m, batch, rows, s), Unfused(m, batch, rows, s));
}

TEST(FusedCdOptions, ThreadCountDoesNotChangeTheBits) {
  const Mlp m(MlpSpec{2, {64, 64}, Activation::kSiLU}, 5);
  const int64_t rows = 8 * kRowBlock;
  const std::vector<float> batch = Batch(rows, m.dim());
  const int saved = cuebm::num_threads();
  ChainSettings s;
  cuebm::set_num_threads(1);
  const Iteration one = Fused(m, batch, rows, s);
  cuebm::set_num_threads(2);
  const Iteration two = Fused(m, batch, rows, s);
  cuebm::set_num_threads(saved);
  ExpectSameIteration(two, one);
}

TEST(FusedCdOptions, AppliesOnlyWhereTheUnfusedBitsAreKept) {
  using cuebm::detail::fused_cd_applies;
  EXPECT_TRUE(fused_cd_applies(kRowBlock, 1));
  EXPECT_TRUE(fused_cd_applies(32 * kRowBlock, 10));   // 64 blocks of [batch; negatives]
  EXPECT_FALSE(fused_cd_applies(33 * kRowBlock, 10));  // 66 blocks: chunks hold two blocks
  EXPECT_FALSE(fused_cd_applies(kRowBlock + 8, 10));   // a block would mix rows of both halves
  EXPECT_FALSE(fused_cd_applies(kRowBlock, 0));        // no first step to take the energies from
  // Partials for the largest batch up to max_batch it applies to: 2 per block of rows.
  using cuebm::detail::fused_cd_partial_floats;
  const Mlp m(MlpSpec{2, {8}, Activation::kReLU}, 1);
  const std::size_t p = m.num_parameters();
  EXPECT_EQ(fused_cd_partial_floats(m, kRowBlock - 1), 0u);
  EXPECT_EQ(fused_cd_partial_floats(m, kRowBlock), 2 * p);
  EXPECT_EQ(fused_cd_partial_floats(m, 3 * kRowBlock + 5), 6 * p);
  EXPECT_EQ(fused_cd_partial_floats(m, 32 * kRowBlock), 64 * p);
  EXPECT_EQ(fused_cd_partial_floats(m, 1000 * kRowBlock), 64 * p);
}

TEST(FusedCdOptions, InapplicableCallIsRejected) {
  const Mlp m(MlpSpec{2, {8}, Activation::kReLU}, 1);
  const int64_t rows = kRowBlock + 8;
  const std::vector<float> batch = Batch(rows, m.dim());
  ChainSettings s;
  cuebm::testing_support::ExpectInvalid(
      [&] { Fused(m, batch, rows, s); },
      {"fused_cd_iteration", std::to_string(rows) + " rows", "cannot be fused"});
}

}  // namespace
