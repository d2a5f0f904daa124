// Split rank-normalised R-hat and bulk ESS (include/cuebm/sampling/diagnostics.hpp) against an
// independent NumPy/SciPy implementation of the same definitions (Vehtari et al. 2021;
// tests/reference/diagnostics_reference.py prints the values below), and their behaviour on
// mixed and unmixed chains.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/diagnostics.hpp"
#include "host/runtime/random.hpp"

namespace cuebm {
namespace {

// 3 chains x 8 draws; the second chain sits higher than the others.
const std::vector<double> kSmall = {0.1, 0.5,  -0.3, 1.2, 0.7,  0.2, -0.8, 0.4,  //
                                    1.5, 1.1,  0.9,  2.0, 1.7,  1.3, 0.8,  1.6,  //
                                    0.3, -0.2, 0.6,  0.1, -0.5, 0.9, 0.0,  0.2};

// 4 chains x 200 draws of v <- 0.6 v + sin(1.7 k + 0.3), k the draw's index over all chains.
std::vector<double> recurrence_draws() {
  std::vector<double> x(800);
  for (int c = 0; c < 4; ++c) {
    double v = 0;
    for (int i = 0; i < 200; ++i) {
      v = 0.6 * v + std::sin(1.7 * (c * 200 + i) + 0.3);
      x[c * 200 + i] = v;
    }
  }
  return x;
}

TEST(Diagnostics, MatchTheReferenceImplementation) {
  // Relative 1e-9: both sides sum a few hundred doubles in different orders.
  EXPECT_NEAR(split_rhat(kSmall, 3, 8), 1.3635712500877053, 1e-9);
  EXPECT_NEAR(ess_bulk(kSmall, 3, 8), 7.122394438694754, 1e-9 * 7.1);
  const std::vector<double> r = recurrence_draws();
  EXPECT_NEAR(split_rhat(r, 4, 200), 0.9952378005753575, 1e-9);
  EXPECT_NEAR(ess_bulk(r, 4, 200), 991.4105157875406, 1e-9 * 991);
}

std::vector<double> normal_chains(int64_t chains, int64_t n, uint64_t seed, double shift_last) {
  std::vector<double> x(chains * n);
  RandomStream rng(seed, StreamTag::kMetrics, 0);
  for (int64_t k = 0; k < chains * n; ++k)
    x[k] = rng.normal() + (k / n == chains - 1 ? shift_last : 0.0);
  return x;
}

TEST(Diagnostics, MixedChainsPassAndSeparatedChainsFail) {
  // 4 x 1000 independent N(0, 1) draws: R-hat within 1.01 (its sd is about 0.002 here) and the
  // bulk ESS near the 4000 draws (sd about 5%: within 20%).
  const std::vector<double> iid = normal_chains(4, 1000, 3, 0.0);
  EXPECT_LT(split_rhat(iid, 4, 1000), 1.01);
  EXPECT_NEAR(ess_bulk(iid, 4, 1000), 4000, 800);
  // One chain shifted by 2 standard deviations: not mixed.
  EXPECT_GT(split_rhat(normal_chains(4, 1000, 3, 2.0), 4, 1000), 1.1);
  // A random walk (strong autocorrelation): few effective draws.
  std::vector<double> walk = iid;
  for (int c = 0; c < 4; ++c)
    for (int i = 1; i < 1000; ++i) walk[c * 1000 + i] += walk[c * 1000 + i - 1];
  EXPECT_LT(ess_bulk(walk, 4, 1000), 100);
  EXPECT_GT(split_rhat(walk, 4, 1000), 1.1);
}

TEST(Diagnostics, BadInputIsRejected) {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  EXPECT_NE(message([] { split_rhat(kSmall, 3, 7); }).find("expected chains x n = 21"),
            std::string::npos);
  EXPECT_NE(message([] { ess_bulk(std::vector<double>(3), 1, 3); }).find("need >= 4 draws"),
            std::string::npos);
  std::vector<double> bad = kSmall;
  bad[9] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(message([&] { split_rhat(bad, 3, 8); }).find("draw 1 of chain 1 is not finite"),
            std::string::npos);
}

}  // namespace
}  // namespace cuebm
