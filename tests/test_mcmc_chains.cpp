// The CPU chain cores of host/sampling/mcmc_chains.hpp that mala_sample, hmc_sample and the CD
// trainer's negatives share. run() dispatches analytic energies to the chain-at-a-time path; the
// same energy behind a plain Energy wrapper takes the batched path. Both are the same
// floating-point operations in the same order, so every comparison here is bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cuebm/models/analytic.hpp"
#include "cuebm/sampling/mcmc.hpp"
#include "host/sampling/mcmc_chains.hpp"
#include "host/sampling/mcmc_chainwise.hpp"

namespace cuebm {
namespace {

// The analytic energy through the block interface only: a generic Energy (batched path).
class BlockOnly : public Energy {
 public:
  explicit BlockOnly(const AnalyticEnergy& e) : e_(e) {}
  int dim() const override { return e_.dim(); }
  std::string name() const override { return "block-only " + e_.name(); }
  std::size_t block_workspace_floats() const override { return e_.block_workspace_floats(); }
  void block_energy(const float* x_t, float* e, float* w) const override {
    e_.block_energy(x_t, e, w);
  }
  void block_gradient(const float* x_t, float* g_t, float* e, float* w) const override {
    e_.block_gradient(x_t, g_t, e, w);
  }

 private:
  const AnalyticEnergy& e_;
};

template <class T>
bool same_bits(const T* a, const T* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}

std::vector<float> start_rows(int64_t n, int dim) {
  std::vector<float> x(n * dim);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(1.7f * static_cast<float>(i) + 0.3f);
  return x;
}

// The trainer's HMC targets exp(-E / T): the chain-at-a-time path must scale E and dE/dx by 1 / T
// exactly as the batched path does.
TEST(McmcChains, HmcAtATemperatureChainwiseEqualsBatched) {
  const AnalyticEnergy analytic = AnalyticEnergy::double_well(3);
  const BlockOnly batched(analytic);
  ASSERT_TRUE(detail::has_chainwise_path(analytic));
  ASSERT_FALSE(detail::has_chainwise_path(batched));
  const int64_t n = 37;
  const int dim = 3, steps = 25;
  const float inv_t = 1.0f / 0.3f;
  const std::vector<float> x0 = start_rows(n, dim), eps(steps, 0.15f), mass = {1.0f, 2.0f, 0.5f};
  const detail::McmcDraws draws(nullptr, 9, 4, 2, n, dim);
  detail::HmcChains a(n, dim), b(n, dim);
  std::vector<float> trace_a(steps * n), trace_b(steps * n);
  a.start(analytic, x0.data(), n, inv_t);
  b.start(batched, x0.data(), n, inv_t);
  a.run(analytic, steps, {eps.data(), mass.data(), 4}, draws, trace_a.data());
  b.run(batched, steps, {eps.data(), mass.data(), 4}, draws, trace_b.data());
  EXPECT_TRUE(same_bits(a.states(), b.states(), n * dim));
  EXPECT_TRUE(same_bits(a.energies().data(), b.energies().data(), n));
  EXPECT_EQ(a.accepted(), b.accepted());
  EXPECT_TRUE(same_bits(trace_a.data(), trace_b.data(), trace_a.size()));
  int64_t accepted = 0;
  for (int c : b.accepted()) accepted += c;
  // Some proposals accepted and some rejected, or the comparison proves little.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, n * steps);
}

// A core run for s steps and continued with step_offset = s equals the public function's one run
// (the chain-at-a-time path continues from the stored state and adds to the counts).
TEST(McmcChains, ContinuedChainwiseRunsEqualOnePublicRun) {
  const AnalyticEnergy energy = AnalyticEnergy::rastrigin(2);
  const int64_t n = 21;
  const int dim = 2, first = 5, rest = 8;
  const std::vector<float> x0 = start_rows(n, dim);

  const MalaOptions m{.step_size = 0.01f, .noise_scale = 0.7f, .n_steps = first + rest, .seed = 3};
  const McmcResult mala = mala_sample(energy, x0.data(), n, m);
  const detail::MalaSchedule s =
      detail::mala_schedule(m.step_size, m.noise_scale, m.n_steps, "test");
  detail::MalaChains mc(n, dim);
  mc.start(energy, x0.data(), n);
  mc.run(energy, first, s, detail::McmcDraws(nullptr, m.seed, 0, 0, n, dim));
  mc.run(energy, rest, s, detail::McmcDraws(nullptr, m.seed, 0, first, n, dim));
  EXPECT_TRUE(same_bits(mc.states(), mala.samples.data(), n * dim));

  const HmcOptions h{
      .step_size = 0.05f, .n_leapfrog = 3, .mass = {}, .n_steps = first + rest, .seed = 4};
  const McmcResult hmc = hmc_sample(energy, x0.data(), n, h);
  const std::vector<float> eps(h.n_steps, 0.05f), mass(dim, 1.0f);
  detail::HmcChains hc(n, dim);
  hc.start(energy, x0.data(), n);
  hc.run(energy, first, {eps.data(), mass.data(), 3}, detail::McmcDraws(nullptr, 4, 0, 0, n, dim));
  hc.run(energy, rest, {eps.data(), mass.data(), 3},
         detail::McmcDraws(nullptr, 4, 0, first, n, dim));
  EXPECT_TRUE(same_bits(hc.states(), hmc.samples.data(), n * dim));

  for (int64_t r = 0; r < n; ++r) {
    // acceptance = accepted / 13 in float: 13 * it rounds back to the count exactly.
    EXPECT_EQ(mc.accepted()[r], std::lround(mala.acceptance[r] * m.n_steps)) << "MALA row " << r;
    EXPECT_EQ(hc.accepted()[r], std::lround(hmc.acceptance[r] * h.n_steps)) << "HMC row " << r;
    EXPECT_EQ(static_cast<float>(mc.energies()[r]), mala.energy[r]) << "MALA row " << r;
    EXPECT_EQ(hc.energies()[r], hmc.energy[r]) << "HMC row " << r;
  }
  EXPECT_GT(mala.mean_acceptance, 0.0);
  EXPECT_LT(mala.mean_acceptance, 1.0);
  EXPECT_GT(hmc.mean_acceptance, 0.0);
  EXPECT_LT(hmc.mean_acceptance, 1.0);
}

}  // namespace
}  // namespace cuebm
