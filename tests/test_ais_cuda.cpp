// Annealed importance sampling on the CUDA backend (kernels/sampling/ais_kernels.cu) against the
// CPU backend on the same chains and random numbers, log Z of a Gaussian against its closed form,
// and input errors on the device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ais_support.hpp"
#include "cuda_skip.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/ais.hpp"
#include "host/models/cuda_models.hpp"
#include "quartic_energy_support.hpp"

namespace cuebm {
namespace {

// A D-dimensional Gaussian with correlated coordinates (tridiagonal covariance, diagonally
// dominant, so positive definite) and a mean away from the N(0, I) start.
AnalyticEnergy correlated_gaussian(int dim) {
  std::vector<float> mean(dim);
  std::vector<double> cov(static_cast<std::size_t>(dim) * dim, 0.0);
  for (int i = 0; i < dim; ++i) {
    mean[i] = 0.5f * static_cast<float>(i) - 0.7f;
    cov[i * dim + i] = 0.6 + 0.3 * i;
    if (i + 1 < dim) cov[i * dim + i + 1] = cov[(i + 1) * dim + i] = 0.2;
  }
  return AnalyticEnergy::gaussian(mean, cov);
}

// Chains that agree: the same log weight within |d| <= tol * (1 + |w|). tol 0 asks for equality.
// At most max_differ chains may disagree.
void expect_same_weights(const AisResult& gpu, const AisResult& cpu, double tol, int64_t max_differ,
                         const std::string& what) {
  ASSERT_EQ(gpu.log_weights.size(), cpu.log_weights.size()) << what;
  int64_t differ = 0;
  double worst = 0;
  for (std::size_t r = 0; r < cpu.log_weights.size(); ++r) {
    const double w = cpu.log_weights[r], d = std::abs(gpu.log_weights[r] - w);
    const bool same = tol == 0 ? gpu.log_weights[r] == w : d <= tol * (1 + std::abs(w));
    differ += same ? 0 : 1;
    if (!(d <= worst)) worst = d;  // NaN counts as the worst
  }
  EXPECT_LE(differ, max_differ) << what << ": chains that disagree (largest |d| " << worst << ")";
}

TEST(CudaAis, LogWeightsEqualTheCpuPerChain) {
  CUEBM_REQUIRE_CUDA();
  // 300 chains: two full blocks of 128 threads and a partial third. Step sizes that reject a fair
  // share of the proposals (checked below), so that both outcomes of each decision are compared.
  // The MLP is smooth (tanh, unsharpened) and the chains short, so the dynamics do not amplify
  // rounding-level differences (see CudaMcmc.MalaAndHmcMatchTheCpuDecisionForDecision).
  //
  // Tolerances. The analytic energies run the same code on both sides (analytic.cuh), the
  // tempering and MALA math is shared (ais.cuh, mcmc.cuh) with explicit fma, and the emulated
  // GPU's Box-Muller uses the host's sinf/cosf: there every log weight must be bitwise equal.
  // The MLP sums its layers in another order on the GPU (energies differ in the last bits), and
  // a real GPU also draws its Gaussians with __sincosf (about 1e-6 off) and contracts the
  // mala_square sums into fma: then weights agree to 1e-4 relative (a sum of K float-precision
  // terms, each off by about 1e-7 relative, is off by far less), and a chain may take another
  // branch when some log u was within about 1e-6 of log alpha: at most 2% of the chains may
  // (measured in the optimised emulated build: every weight bitwise equal, the MLP's too).
  const int64_t n = 300;
  for (int dim : {1, 2, 5}) {
    const AnalyticEnergy gauss = correlated_gaussian(dim);
    const Mlp mlp({.input_dim = dim, .hidden = {16, 16}, .activation = Activation::kTanh},
                  10 + dim);
    struct Case {
      const Energy* energy;
      float step_size;
      double temperature;
      bool exact;
    };
#if defined(CUEBM_CUDA_EMULATION)
    const bool emulated = true;
#else
    const bool emulated = false;
#endif
    const Case cases[] = {
        {&gauss, 0.6f, 1.0, emulated}, {&gauss, 0.3f, 0.5, emulated}, {&mlp, 0.8f, 0.2, false}};
    for (const Case& c : cases) {
      AisOptions o;
      o.n_chains = n;
      o.n_temperatures = 15;
      o.mcmc_steps = 2;
      o.step_size = c.step_size;
      o.temperature = c.temperature;
      o.seed = 40 + dim;
      const std::string what =
          c.energy->name() + " D " + std::to_string(dim) + " T " + std::to_string(c.temperature);
      const AisResult cpu = ais_log_partition(*c.energy, o, Device::cpu());
      const AisResult gpu = ais_log_partition(*c.energy, o, Device::cuda(0));
      if (c.exact) {
        expect_same_weights(gpu, cpu, 0.0, 0, what);
        EXPECT_EQ(gpu.acceptance, cpu.acceptance) << what;
        // The device adds exp(w - max) in Thrust's order: rounding apart (n * 1e-16 relative).
        EXPECT_NEAR(gpu.log_z, cpu.log_z, 1e-12 * (1 + std::abs(cpu.log_z))) << what;
      } else {
        expect_same_weights(gpu, cpu, 1e-4, n / 50, what);
        // Acceptance: a flipped decision moves it by 1 / (n K steps) each.
        EXPECT_NEAR(gpu.acceptance, cpu.acceptance, 0.01) << what;
      }
      EXPECT_GT(cpu.acceptance, 0.2) << what;
      EXPECT_LT(cpu.acceptance, 0.95) << what;
    }
  }
}

TEST(CudaAis, WeightsDoNotDependOnTheBlockSize) {
  // Chains are keyed by their index, not by thread or block: blocks of 32 threads (ten blocks,
  // the last partial) give the same weights, bit for bit, as the default blocks of 128.
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA  // the test knob exists only in a build with the CUDA backend
  const Mlp mlp({.input_dim = 3, .hidden = {8}, .activation = Activation::kSiLU}, 4);
  AisOptions o;
  o.n_chains = 300;
  o.n_temperatures = 10;
  o.step_size = 0.5f;
  o.seed = 12;
  const AisResult wide = ais_log_partition(mlp, o, Device::cuda(0));
  struct ResetBlockSize {
    ~ResetBlockSize() { detail::set_cuda_block_size_for_testing(0); }
  } reset;
  detail::set_cuda_block_size_for_testing(32);
  const AisResult narrow = ais_log_partition(mlp, o, Device::cuda(0));
  expect_same_weights(narrow, wide, 0.0, 0, "32 vs 128 threads per block");
#endif
}

TEST(CudaAis, GaussianLogZWithinThreeStandardErrors) {
  CUEBM_REQUIRE_CUDA();
  // Closed form: log Z = (D / 2) log(2 pi) + (1 / 2) log det(T S); the GPU's own estimate and
  // standard error (1600 chains: the estimate is about 3 standard errors sharp, as in Ais.*).
  const int dim = 5;
  const AnalyticEnergy e = correlated_gaussian(dim);
  for (double t : {1.0, 0.3}) {
    const AisOptions o = testing_support::gaussian_log_z_options(t, 9);
    // det of the tridiagonal covariance by its three-term recurrence.
    double det_prev = 1, det = 0.6;
    for (int i = 1; i < dim; ++i) {
      const double next = (0.6 + 0.3 * i) * det - 0.2 * 0.2 * det_prev;
      det_prev = det;
      det = next;
    }
    const double exact = 0.5 * dim * std::log(2 * M_PI) + 0.5 * (dim * std::log(t) + std::log(det));
    testing_support::ExpectLogZWithinThreeStandardErrors(ais_log_partition(e, o, Device::cuda(0)),
                                                         exact, o);
  }
}

std::string invalid_message(const Energy& e, const AisOptions& o) {
  try {
    ais_log_partition(e, o, Device::cuda(0));
  } catch (const InvalidArgument& err) {
    return err.what();
  }
  return "no exception";
}

TEST(CudaAis, BadInputIsRejected) {
  CUEBM_REQUIRE_CUDA();
  const AnalyticEnergy e = AnalyticEnergy::harmonic(3);
  AisOptions o;
  o.n_chains = 64;
  o.n_temperatures = 20;
  AisOptions bad = o;
  bad.n_chains = 1;
  EXPECT_NE(invalid_message(e, bad).find("n_chains must be >= 2"), std::string::npos);
  bad = o;
  bad.n_temperatures = 0;
  EXPECT_NE(invalid_message(e, bad).find("n_temperatures must be >= 1"), std::string::npos);
  bad = o;
  bad.mcmc_steps = 0;
  EXPECT_NE(invalid_message(e, bad).find("mcmc_steps must be >= 1"), std::string::npos);
  bad = o;
  bad.step_size = NAN;
  EXPECT_NE(invalid_message(e, bad).find("step_size must be finite and > 0"), std::string::npos);
  bad = o;
  bad.temperature = 0;
  EXPECT_NE(invalid_message(e, bad).find("temperature must be finite and > 0"), std::string::npos);
  bad = o;
  bad.n_temperatures = 1 << 20;
  bad.mcmc_steps = 1 << 11;  // 2^31 transitions: more than a chain's int counter holds
  EXPECT_NE(invalid_message(e, bad).find("n_temperatures * mcmc_steps must be <= 2147483647"),
            std::string::npos);
  const std::string unsupported = invalid_message(testing_support::QuarticEnergy(), o);
  EXPECT_NE(unsupported, "no exception");
  EXPECT_NE(unsupported.find("quartic"), std::string::npos) << unsupported;
}

}  // namespace
}  // namespace cuebm
