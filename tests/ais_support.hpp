// The Gaussian log Z check that the AIS tests of the CPU backend (test_ais.cpp) and of the CUDA
// backend (test_ais_cuda.cpp) both run, each on its own Gaussian with its closed-form log Z.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

#include "cuebm/sampling/ais.hpp"

namespace cuebm::testing_support {

// 1600 chains over 200 temperatures at temperature t: the estimate is about 3 standard errors
// sharp.
inline AisOptions gaussian_log_z_options(double t, uint64_t seed) {
  AisOptions o;
  o.n_chains = 1600;
  o.n_temperatures = 200;
  o.step_size = 0.2f * static_cast<float>(t);
  o.temperature = t;
  o.seed = seed;
  return o;
}

// r (from options o) within 3 of its own standard errors of the closed form `exact`, informative,
// and from weights far from degenerate (measured on the CPU: an ESS of 1200 of 1600 at T = 1, 490
// at T = 0.3).
inline void ExpectLogZWithinThreeStandardErrors(const AisResult& r, double exact,
                                                const AisOptions& o) {
  const double t = o.temperature;
  EXPECT_NEAR(r.log_z, exact, 3 * r.std_error) << "T " << t;
  EXPECT_GT(r.std_error, 0);
  EXPECT_LT(r.std_error, 0.05) << "T " << t;
  EXPECT_GT(r.ess, 0.2 * o.n_chains) << "T " << t;
  EXPECT_EQ(r.log_weights.size(), static_cast<std::size_t>(o.n_chains));
}

}  // namespace cuebm::testing_support
