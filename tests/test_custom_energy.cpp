// User-defined energies (cuebm/custom_energy.hpp): the CPU template chain against
// langevin_sample, the ring potential against its closed form, bad input, and (on a GPU) the
// CUDA template chain against the CPU one.
#include <gtest/gtest.h>
#include "cuda_skip.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cuebm/models/analytic.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/custom_energy.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/sampling/custom_energy_testing.hpp"

namespace cuebm {
namespace {

using detail::HarmonicTestEnergy;
using detail::RingTestEnergy;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

LangevinOptions harmonic_options() {
  LangevinOptions o;
  o.step_size = 0.01f;
  o.noise_scale = 0.7f;
  o.n_steps = 40;
  o.seed = 1234;
  o.step_offset = 3;
  o.first_chain = 11;
  return o;
}

TEST(CustomEnergyCpu, HarmonicEqualsLangevinSampleBitForBit) {
  for (const int dim : {1, 2, 5, 8}) {
    const HarmonicTestEnergy custom{dim, 1.5f};
    const AnalyticEnergy analytic = AnalyticEnergy::harmonic(dim, 1.5f);
    const int64_t n = 77;  // not a multiple of the row block
    LangevinOptions o = harmonic_options();
    const LangevinResult ref = langevin_sample(analytic, nullptr, n, o);
    const LangevinResult got = langevin_chain(custom, dim, nullptr, n, o);
    EXPECT_TRUE(same_bits(ref.samples, got.samples)) << "dim " << dim;
    EXPECT_EQ(got.n_chains, n);
    EXPECT_EQ(got.dim, dim);
    EXPECT_DOUBLE_EQ(got.temperature, ref.temperature);
  }
}

TEST(CustomEnergyCpu, SchedulesClampThinAndCallerNoiseMatchLangevinSample) {
  const int dim = 3;
  const int64_t n = 40;
  const HarmonicTestEnergy custom{dim, 2.0f};
  const AnalyticEnergy analytic = AnalyticEnergy::harmonic(dim, 2.0f);
  LangevinOptions o = harmonic_options();
  o.step_size = Schedule::exponential(0.05f, 0.97f, 0.001f);
  o.noise_scale = Schedule::linear(1.0f, 0.3f, 20);
  o.clamp_min = -0.8f;
  o.clamp_max = 0.9f;
  o.thin = 7;
  std::vector<float> x0(n * dim);
  for (std::size_t i = 0; i < x0.size(); ++i) x0[i] = std::sin(0.37f * static_cast<float>(i));
  const LangevinResult ref = langevin_sample(analytic, x0.data(), n, o);
  const LangevinResult got = langevin_chain(custom, dim, x0.data(), n, o);
  EXPECT_TRUE(same_bits(ref.samples, got.samples));
  EXPECT_EQ(got.n_kept, ref.n_kept);
  EXPECT_TRUE(same_bits(ref.trajectory, got.trajectory));

  std::vector<float> noise(static_cast<std::size_t>(o.n_steps) * n * dim);
  for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = std::cos(1.3f * static_cast<float>(i));
  o.noise = noise.data();
  const LangevinResult ref_n = langevin_sample(analytic, x0.data(), n, o);
  const LangevinResult got_n = langevin_chain(custom, dim, x0.data(), n, o);
  EXPECT_TRUE(same_bits(ref_n.samples, got_n.samples));
}

TEST(CustomEnergyCpu, ResultDoesNotDependOnThreadsAndResumesExactly) {
  const HarmonicTestEnergy e{4, 1.0f};
  LangevinOptions o = harmonic_options();
  const int threads = num_threads();
  set_num_threads(1);
  const LangevinResult one = langevin_chain(e, 4, nullptr, 100, o);
  set_num_threads(threads);
  const LangevinResult many = langevin_chain(e, 4, nullptr, 100, o);
  EXPECT_TRUE(same_bits(one.samples, many.samples));
  // 40 steps = 25 steps, then 15 more from step_offset + 25.
  LangevinOptions a = o;
  a.n_steps = 25;
  const LangevinResult first = langevin_chain(e, 4, nullptr, 100, a);
  LangevinOptions b = o;
  b.n_steps = 15;
  b.step_offset = o.step_offset + 25;
  const LangevinResult second = langevin_chain(e, 4, first.samples.data(), 100, b);
  EXPECT_TRUE(same_bits(second.samples, many.samples));
}

// Ring E = (rho - r)^2 / (2 s^2) at temperature T = sigma^2 in 2-D: in polar coordinates the
// radius has density p(rho) ∝ rho exp(-(rho - r)^2 / (2 tau^2)) on rho > 0, tau^2 = s^2 T (the
// Jacobian rho, the angle uniform). With M_k = ∫_0^∞ rho^k N(rho; r, tau^2) d rho, a = r / tau,
// Phi, phi the standard normal cdf and pdf at a (exact, no small-s approximation):
//   M_1 = r Phi + tau phi, M_2 = (r^2 + tau^2) Phi + r tau phi,
//   M_3 = (r^3 + 3 r tau^2) Phi + tau (r^2 + 2 tau^2) phi,
//   E[rho] = M_2 / M_1, E[rho^2] = M_3 / M_1 (~ r + tau^2 / r and r^2 + 3 tau^2 for small tau).
struct RingMoments {
  double mean, second;
};
RingMoments ring_moments(double r, double s, double temperature) {
  const double tau = s * std::sqrt(temperature), a = r / tau;
  const double Phi = 0.5 * std::erfc(-a / std::sqrt(2.0));
  const double phi = std::exp(-0.5 * a * a) / std::sqrt(2.0 * M_PI);
  const double m1 = r * Phi + tau * phi;
  const double m2 = (r * r + tau * tau) * Phi + r * tau * phi;
  const double m3 = (r * r * r + 3 * r * tau * tau) * Phi + tau * (r * r + 2 * tau * tau) * phi;
  return {m2 / m1, m3 / m1};
}

// Mean and standard error of f over the chains' final states.
void radius_stats(const std::vector<float>& x, int power, double* mean, double* se) {
  const std::size_t n = x.size() / 2;
  double s = 0, s2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double rho = std::hypot(x[2 * i], x[2 * i + 1]);
    const double v = power == 1 ? rho : rho * rho;
    s += v;
    s2 += v * v;
  }
  *mean = s / n;
  *se = std::sqrt((s2 / n - *mean * *mean) / (n - 1));
}

// eta = 1e-3 against a stiffness 1 / s^2 = 25: ULA's bias in the radial variance is
// ~ eta / (2 s^2) = 1.25% of tau^2, ~5e-4 in E[rho], well under 4 standard errors (~1.2e-2).
LangevinOptions ring_options() {
  LangevinOptions o;
  o.step_size = 1e-3f;
  o.noise_scale = 1.0f;
  o.n_steps = 1500;  // radial relaxation time 1 / (eta / s^2) = 40 steps
  o.seed = 99;
  return o;
}

TEST(CustomEnergyCpu, RingRadiusMomentsMatchClosedForm) {
  const RingTestEnergy ring{1.0f, 0.2f};
  const LangevinOptions o = ring_options();
  const LangevinResult res = langevin_chain(ring, 2, nullptr, 4096, o);
  const RingMoments m = ring_moments(1.0, 0.2, res.temperature);
  double mean, se;
  radius_stats(res.samples, 1, &mean, &se);
  EXPECT_NEAR(mean, m.mean, 4 * se) << "E[rho] closed form " << m.mean;
  radius_stats(res.samples, 2, &mean, &se);
  EXPECT_NEAR(mean, m.second, 4 * se) << "E[rho^2] closed form " << m.second;
}

TEST(CustomEnergyCpu, BadInputThrows) {
  const HarmonicTestEnergy e{2, 1.0f};
  LangevinOptions o = harmonic_options();
  EXPECT_THROW(langevin_chain(e, 2, nullptr, 0, o), InvalidArgument);
  EXPECT_THROW(langevin_chain(e, 0, nullptr, 4, o), InvalidArgument);
  LangevinOptions bad = o;
  bad.n_steps = -1;
  EXPECT_THROW(langevin_chain(e, 2, nullptr, 4, bad), InvalidArgument);
  bad = o;
  bad.step_size = -0.1f;
  EXPECT_THROW(langevin_chain(e, 2, nullptr, 4, bad), InvalidArgument);
  bad = o;
  bad.diagnostics = true;
  EXPECT_THROW(langevin_chain(e, 2, nullptr, 4, bad), InvalidArgument);
  const std::vector<float> x0 = {0, 1, NAN, 2};
  try {
    langevin_chain(e, 2, x0.data(), 2, o);
    ADD_FAILURE() << "a non-finite initial state must throw";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("langevin_chain"), std::string::npos) << err.what();
  }
  // A diverging chain is reported.
  LangevinOptions hot = o;
  hot.step_size = 3.0f;  // eta k = 3 > 2: unstable
  hot.n_steps = 400;
  EXPECT_THROW(langevin_chain(e, 2, nullptr, 4, hot), NumericalError);
}

TEST(CustomEnergyCpu, NullInitialStateIsTheGaussianStart) {
  const HarmonicTestEnergy e{3, 1.0f};
  LangevinOptions o = harmonic_options();
  o.n_steps = 0;
  const LangevinResult res = langevin_chain(e, 3, nullptr, 10, o);
  std::vector<float> x0(30);
  gaussian_initial_state(x0.data(), 10, 3, o.seed, o.first_chain);
  EXPECT_TRUE(same_bits(res.samples, x0));
}

// ---- CUDA backend (skipped without a device) ----

// The device's Box-Muller uses __sincosf (rng.md: normals agree to ~1e-6) and nvcc contracts
// the update into FMAs: 40 contracting harmonic steps keep the difference near 1e-6; 1e-4 is
// the bound of tests/test_cuda.cpp.
TEST(CustomEnergyCuda, HarmonicChainMatchesCpu) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  for (const int dim : {2, 5}) {
    const HarmonicTestEnergy e{dim, 1.5f};
    const LangevinOptions o = harmonic_options();
    const int64_t n = 1000;
    const LangevinResult cpu = langevin_chain(e, dim, nullptr, n, o);
    std::vector<float> x(n * dim);
    gaussian_initial_state(x.data(), n, dim, o.seed, o.first_chain);
    detail::harmonic_chain_cuda_for_testing(e, x.data(), n, o);
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_NEAR(x[i], cpu.samples[i], 1e-4f + 1e-4f * std::fabs(cpu.samples[i])) << i;
  }
#endif
}

// Capturing langevin_chain_cuda into a CUDA graph works (the stream check must not query the
// capturing stream's device), and a replay equals the direct call bit for bit; two replays
// equal two direct calls (the graph bakes in the same noise keys).
TEST(CustomEnergyCuda, GraphCaptureReplayEqualsDirectCalls) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  const HarmonicTestEnergy e{3, 1.5f};
  LangevinOptions o = harmonic_options();
  o.n_steps = 20;
  const int64_t n = 300;
  std::vector<float> x0(n * 3);
  gaussian_initial_state(x0.data(), n, 3, o.seed, o.first_chain);
  std::vector<float> direct = x0, graph = x0;
  detail::harmonic_chain_cuda_for_testing(e, direct.data(), n, o);
  detail::harmonic_chain_cuda_for_testing(e, direct.data(), n, o);
  detail::harmonic_chain_cuda_graph_for_testing(e, graph.data(), n, o, 2);
  EXPECT_TRUE(same_bits(graph, direct));
  EXPECT_FALSE(same_bits(graph, x0));
#endif
}

TEST(CustomEnergyCuda, RingChainMatchesCpuAndClosedForm) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  const RingTestEnergy ring{1.0f, 0.2f};
  LangevinOptions o = ring_options();
  const int64_t n = 4096;
  // A short run against the CPU (the ring is not contracting everywhere: keep it short).
  LangevinOptions s = o;
  s.n_steps = 50;
  const LangevinResult cpu = langevin_chain(ring, 2, nullptr, n, s);
  std::vector<float> x(n * 2);
  gaussian_initial_state(x.data(), n, 2, s.seed, s.first_chain);
  detail::ring_chain_cuda_for_testing(ring, x.data(), n, s);
  for (std::size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(x[i], cpu.samples[i], 1e-4f + 1e-4f * std::fabs(cpu.samples[i])) << i;
  // The full run against the closed form.
  gaussian_initial_state(x.data(), n, 2, o.seed, o.first_chain);
  detail::ring_chain_cuda_for_testing(ring, x.data(), n, o);
  const RingMoments m = ring_moments(1.0, 0.2, 1.0);
  double mean, se;
  radius_stats(x, 1, &mean, &se);
  EXPECT_NEAR(mean, m.mean, 4 * se);
  radius_stats(x, 2, &mean, &se);
  EXPECT_NEAR(mean, m.second, 4 * se);
#endif
}

}  // namespace
}  // namespace cuebm
