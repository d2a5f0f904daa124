// Replica-exchange parallel tempering (include/cuebm/sampling/tempering.hpp): the mode weights
// of an asymmetric double well whose barrier traps single chains, against quadrature; unadjusted
// Langevin at the same budget misses them; ladder, statistics and input checks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuebm/models/analytic.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/sampling/tempering.hpp"

namespace cuebm {
namespace {

// E(x) = 4 (x^2 - 1)^2 + 0.15 x: wells near -1 (deeper by 0.3) and +1, barrier about 4 high.
class TiltedWell : public Energy {
 public:
  static double energy_of(double x) { return 4 * (x * x - 1) * (x * x - 1) + 0.15 * x; }
  int dim() const override { return 1; }
  std::string name() const override { return "tilted_well"; }
  std::size_t block_workspace_floats() const override { return 0; }
  void block_energy(const float* x, float* e, float*) const override {
    for (int r = 0; r < kRowBlock; ++r) e[r] = static_cast<float>(energy_of(x[r]));
  }
  void block_gradient(const float* x, float* g, float* e, float* w) const override {
    block_energy(x, e, w);
    for (int r = 0; r < kRowBlock; ++r) g[r] = 16 * x[r] * (x[r] * x[r] - 1) + 0.15f;
  }
};

// P(x < 0) under exp(-E / T) by the trapezoid rule on [-3, 3] (the density is below 1e-30
// beyond), 60,001 points: far more accurate than the Monte Carlo error tested against.
double left_weight(double t) {
  double left = 0, total = 0;
  const int n = 60000;
  for (int i = 0; i <= n; ++i) {
    const double x = -3 + 6.0 * i / n;
    const double w = (i == 0 || i == n ? 0.5 : 1.0) * std::exp(-TiltedWell::energy_of(x) / t);
    total += w;
    if (x < 0) left += w;
  }
  return left / total;
}

TEST(Tempering, RecoversTheModeWeightsThatTrapALangevinChain) {
  const TiltedWell e;
  const double t = 0.25;  // the barrier is 16 T: a single chain essentially never crosses it
  const double exact = left_weight(t);
  ASSERT_GT(exact, 0.6);  // most of the mass is in the deeper, left well, not all of it
  ASSERT_LT(exact, 0.9);
  const int64_t n = 400;
  const std::vector<float> right(n, 1.0f);  // every chain starts in the shallow right well
  TemperingOptions o;
  o.n_replicas = 8;
  o.t_min = t;
  o.t_max = 8.0;
  o.step_size = 0.02f;
  o.n_steps = 3000;
  o.seed = 4;
  const TemperingResult r = parallel_tempering(e, right.data(), n, o);
  int left = 0;
  for (float v : r.samples) left += v < 0;
  const double p = static_cast<double>(left) / n;
  // Independent chains: binomial standard error; 4 of them.
  EXPECT_NEAR(p, exact, 4 * std::sqrt(exact * (1 - exact) / n)) << "exact " << exact;
  // Unadjusted Langevin at the target temperature with the same step and budget stays right.
  LangevinOptions l;
  l.step_size = 0.02f;
  l.noise_scale = static_cast<float>(std::sqrt(t));
  l.n_steps = 3000;
  l.seed = 4;
  const LangevinResult lr = langevin_sample(e, right.data(), n, l);
  int l_left = 0;
  for (float v : lr.samples) l_left += v < 0;
  EXPECT_LT(static_cast<double>(l_left) / n, 0.05) << "Langevin alone crossed the barrier";
  // The statistics: a geometric ladder, swaps that happen, exact moves at every temperature.
  ASSERT_EQ(r.temperatures.size(), 8u);
  EXPECT_DOUBLE_EQ(r.temperatures.front(), 0.25);
  EXPECT_NEAR(r.temperatures.back(), 8.0, 1e-12);
  EXPECT_NEAR(r.temperatures[1] / r.temperatures[0], r.temperatures[7] / r.temperatures[6], 1e-12);
  ASSERT_EQ(r.swap_acceptance.size(), 7u);
  for (double a : r.swap_acceptance) {
    EXPECT_GT(a, 0.1);
    EXPECT_LE(a, 1.0);
  }
  ASSERT_EQ(r.move_acceptance.size(), 8u);
  for (double a : r.move_acceptance) EXPECT_GT(a, 0.3);
}

TEST(Tempering, ReproducibleAndInputChecked) {
  const AnalyticEnergy h = AnalyticEnergy::harmonic(2);
  TemperingOptions o;
  o.n_replicas = 3;
  o.n_steps = 20;
  o.temperatures = {};
  EXPECT_EQ(parallel_tempering(h, nullptr, 10, o).samples,
            parallel_tempering(h, nullptr, 10, o).samples);
  auto message = [&](TemperingOptions bad) {
    try {
      parallel_tempering(h, nullptr, 10, bad);
    } catch (const InvalidArgument& err) {
      return std::string(err.what());
    }
    return std::string("no exception");
  };
  TemperingOptions bad = o;
  bad.n_replicas = 1;
  EXPECT_NE(message(bad).find("n_replicas must be >= 2"), std::string::npos);
  bad = o;
  bad.temperatures = {1.0, 0.5};
  EXPECT_NE(message(bad).find("increasing; entry 1 is 0.5"), std::string::npos);
  bad = o;
  bad.t_max = 0.5;
  EXPECT_NE(message(bad).find("need 0 < t_min < t_max"), std::string::npos);
  bad = o;
  bad.swap_every = 0;
  EXPECT_NE(message(bad).find("swap_every must be >= 1"), std::string::npos);
  // A given ladder is used as it is.
  o.temperatures = {1.0, 2.0, 5.0};
  EXPECT_EQ(parallel_tempering(h, nullptr, 10, o).temperatures, o.temperatures);
}

}  // namespace
}  // namespace cuebm
