// The chain-at-a-time CPU path of MALA and HMC (host/sampling/mcmc_chainwise.hpp), taken for the
// analytic energies, against the batched path every other energy takes: the same energy behind
// a plain Energy wrapper runs the batched path, and both must give the same samples, energies,
// acceptance and energy traces bit for bit, since they are the same floating-point operations
// in the same order (only the loop nesting differs).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "cuebm/models/analytic.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/mcmc.hpp"
#include "host/sampling/mcmc_chainwise.hpp"

namespace cuebm {
namespace {

// Forwards to an analytic energy through the block interface only, so that the samplers see a
// generic Energy and take the batched path.
class Wrapped : public Energy {
 public:
  explicit Wrapped(const AnalyticEnergy& e) : e_(e) {}
  int dim() const override { return e_.dim(); }
  std::string name() const override { return "wrapped " + e_.name(); }
  std::size_t block_workspace_floats() const override { return e_.block_workspace_floats(); }
  void block_energy(const float* x_t, float* e, float* work) const override {
    e_.block_energy(x_t, e, work);
  }
  void block_gradient(const float* x_t, float* g_t, float* e, float* work) const override {
    e_.block_gradient(x_t, g_t, e, work);
  }

 private:
  const AnalyticEnergy& e_;
};

// Bit equality of float vectors (NaN-safe, -0 vs 0 distinguished).
::testing::AssertionResult same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure()
             << "entry " << i << " of " << a.size() << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

void expect_same(const McmcResult& fused, const McmcResult& batched) {
  EXPECT_TRUE(same_bits(fused.samples, batched.samples));
  EXPECT_TRUE(same_bits(fused.energy, batched.energy));
  EXPECT_TRUE(same_bits(fused.acceptance, batched.acceptance));
  EXPECT_TRUE(same_bits(fused.energy_trace, batched.energy_trace));
  EXPECT_EQ(fused.mean_acceptance, batched.mean_acceptance);
  // Some proposals accepted and some rejected, or the comparison proves little.
  EXPECT_GT(batched.mean_acceptance, 0.0);
  EXPECT_LT(batched.mean_acceptance, 1.0);
}

// Each energy with a step size scale that gives it an acceptance rate between the extremes.
struct Case {
  AnalyticEnergy energy;
  float step_scale;
};
std::vector<Case> energies() {
  return {{AnalyticEnergy::gaussian({0.5f, -1.0f}, {1.0, 0.6, 0.6, 2.0}), 1.0f},
          {AnalyticEnergy::double_well(3), 1.0f},
          {AnalyticEnergy::rosenbrock(2), 0.05f},
          {AnalyticEnergy::rastrigin(5), 0.1f},
          {AnalyticEnergy::ackley(1), 1.0f},
          {AnalyticEnergy::harmonic(4, 2.0f), 1.0f}};
}

TEST(McmcChainwise, TakenOnlyForAnalyticEnergies) {
  const AnalyticEnergy a = AnalyticEnergy::harmonic(2);
  EXPECT_TRUE(detail::has_chainwise_path(a));
  EXPECT_FALSE(detail::has_chainwise_path(Wrapped(a)));
}

TEST(McmcChainwise, MalaEqualsTheBatchedPathBitForBit) {
  for (const auto& [energy, scale] : energies()) {
    SCOPED_TRACE(energy.name());
    MalaOptions o;
    o.step_size = 0.05f * scale;
    o.noise_scale = 0.5f;
    o.n_steps = 40;
    o.seed = 11;
    o.step_offset = 3;
    o.diagnostics = true;
    const int64_t n = 37;  // not a multiple of the chains per task or of the row block
    expect_same(mala_sample(energy, nullptr, n, o), mala_sample(Wrapped(energy), nullptr, n, o));
  }
}

TEST(McmcChainwise, HmcEqualsTheBatchedPathBitForBit) {
  for (const auto& [energy, scale] : energies()) {
    SCOPED_TRACE(energy.name());
    HmcOptions o;
    o.step_size = 0.4f * scale;
    o.n_leapfrog = 5;
    o.mass = std::vector<float>(energy.dim(), 1.0f);
    o.mass[0] = 2.0f;
    o.n_steps = 30;
    o.seed = 5;
    o.diagnostics = true;
    const int64_t n = 41;
    expect_same(hmc_sample(energy, nullptr, n, o), hmc_sample(Wrapped(energy), nullptr, n, o));
  }
}

TEST(McmcChainwise, NoiseFromABufferAndNonFiniteStartsAsTheBatchedPath) {
  const AnalyticEnergy energy = AnalyticEnergy::double_well(2);
  const int64_t n = 9;
  const int steps = 12;
  std::vector<float> noise(static_cast<std::size_t>(steps) * n * 3);
  for (std::size_t i = 0; i < noise.size(); ++i)
    noise[i] = (i % 3 == 2) ? 0.5f : static_cast<float>((i * 7919) % 13) / 6.0f - 1.0f;
  MalaOptions o;
  o.step_size = 0.1f;
  o.n_steps = steps;
  o.noise = noise.data();
  expect_same(mala_sample(energy, nullptr, n, o), mala_sample(Wrapped(energy), nullptr, n, o));

  std::vector<float> x0(n * 2, 0.0f);
  x0[5] = 1e30f;  // E overflows to +inf: both paths refuse the start
  EXPECT_THROW(mala_sample(energy, x0.data(), n, o), InvalidArgument);
  HmcOptions h;
  h.n_steps = 2;
  EXPECT_THROW(hmc_sample(energy, x0.data(), n, h), InvalidArgument);
}

}  // namespace
}  // namespace cuebm
