// Tests of the analytic energies (include/cuebm/models/analytic.hpp): E and dE/dx of every kind, by
// factory and by name, against the double-precision oracle of tests/reference on fresh random
// inputs; Ackley at the origin; a Gaussian with a full covariance; bad input.
//
// Tolerance: |got - ref| <= 1e-6 + 1e-5 s, where s is the oracle's scale for that value: the
// sum of the magnitudes of the terms that make it up (and of the rounding sensitivity of
// arguments such as c x in cos(c x)). A float32 evaluation with a handful of operations per
// term errs by a few ulp (6e-8) of s, so the bound has a margin of ~30 while a wrong constant,
// sign or term moves the result by O(s).
#include "cuebm/models/analytic.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/error.hpp"
#include "invalid_argument_support.hpp"
#include "reference/reference.hpp"

namespace cuebm {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int64_t kRows = 2 * kRowBlock + 5;  // two full row blocks and a partial one

using Oracle = std::function<ref::AnalyticValue(const double*)>;

std::vector<float> RandomNormal(std::size_t n, double scale, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(dist(gen));
  return v;
}

using testing_support::ExpectInvalid;

bool Close(double got, double ref, double scale) {
  return std::abs(got - ref) <= 1e-6 + 1e-5 * scale;  // NaN fails
}

// energy() and gradient() (with its e output) on kRows fresh rows against the oracle.
void CheckAgainstOracle(const AnalyticEnergy& en, const Oracle& oracle, uint64_t seed,
                        double x_scale = 1.2) {
  const int d = en.dim();
  SCOPED_TRACE(en.name());
  const std::vector<float> x = RandomNormal(kRows * d, x_scale, seed);
  std::vector<float> e(kRows, kNaN), e2(kRows, kNaN), g(kRows * d, kNaN);
  en.energy(x.data(), kRows, e.data());
  en.gradient(x.data(), kRows, g.data(), e2.data());
  int failures = 0;
  for (int64_t i = 0; i < kRows && failures < 5; ++i) {
    const std::vector<double> xd(x.begin() + i * d, x.begin() + (i + 1) * d);
    const ref::AnalyticValue v = oracle(xd.data());
    if (!Close(e[i], v.energy, v.energy_scale)) {
      ++failures;
      ADD_FAILURE() << "row " << i << ": E " << e[i] << " vs " << v.energy << " (scale "
                    << v.energy_scale << ")";
    }
    if (!Close(e2[i], v.energy, v.energy_scale)) {
      ++failures;
      ADD_FAILURE() << "row " << i << ": gradient's E " << e2[i] << " vs " << v.energy;
    }
    for (int k = 0; k < d; ++k) {
      if (!Close(g[i * d + k], v.grad[k], v.grad_scale[k])) {
        ++failures;
        ADD_FAILURE() << "row " << i << ", coordinate " << k << ": dE/dx " << g[i * d + k] << " vs "
                      << v.grad[k] << " (scale " << v.grad_scale[k] << ")";
      }
    }
  }
}

std::vector<int> DimsFor(AnalyticKind kind) {
  return kind == AnalyticKind::kRosenbrock ? std::vector<int>{2, 5} : std::vector<int>{1, 2, 5};
}

// The kinds other than the Gaussian, with their spec defaults and a non-default setting.
struct Case {
  AnalyticKind kind;
  const char* name;
  std::function<AnalyticEnergy(int)> defaults;
  std::function<AnalyticEnergy(int)> custom;
  std::map<std::string, double> custom_params;
  std::function<Oracle(int, bool)> oracle;  // (dim, custom)
};

std::vector<Case> Cases() {
  return {
      {AnalyticKind::kDoubleWell,
       "double_well",
       [](int d) { return AnalyticEnergy::double_well(d); },
       [](int d) { return AnalyticEnergy::double_well(d, 1.5f, 0.7f); },
       {{"h", 1.5}, {"b", 0.7}},
       [](int d, bool c) -> Oracle {
         const double h = c ? 1.5f : 2.0, b = c ? 0.7f : 1.0;
         return [=](const double* x) { return ref::double_well(x, d, h, b); };
       }},
      {AnalyticKind::kHarmonic,
       "harmonic",
       [](int d) { return AnalyticEnergy::harmonic(d); },
       [](int d) { return AnalyticEnergy::harmonic(d, 2.5f); },
       {{"k", 2.5}},
       [](int d, bool c) -> Oracle {
         const double k = c ? 2.5 : 1.0;
         return [=](const double* x) { return ref::harmonic(x, d, k); };
       }},
      {AnalyticKind::kRosenbrock,
       "rosenbrock",
       [](int d) { return AnalyticEnergy::rosenbrock(d); },
       [](int d) { return AnalyticEnergy::rosenbrock(d, 0.5f, 20.0f); },
       {{"a", 0.5}, {"b", 20.0}},
       [](int d, bool c) -> Oracle {
         const double a = c ? 0.5 : 1.0, b = c ? 20.0 : 100.0;
         return [=](const double* x) { return ref::rosenbrock(x, d, a, b); };
       }},
      {AnalyticKind::kAckley,
       "ackley",
       [](int d) { return AnalyticEnergy::ackley(d); },
       [](int d) { return AnalyticEnergy::ackley(d, 10.0f, 0.5f, 3.0f); },
       {{"a", 10.0}, {"b", 0.5}, {"c", 3.0}},
       [](int d, bool c) -> Oracle {
         const double a = c ? 10.0 : 20.0, b = c ? 0.5f : 0.2, cc = c ? 3.0 : 2.0 * kPi;
         return [=](const double* x) { return ref::ackley(x, d, a, b, cc); };
       }},
      {AnalyticKind::kRastrigin,
       "rastrigin",
       [](int d) { return AnalyticEnergy::rastrigin(d); },
       [](int d) { return AnalyticEnergy::rastrigin(d, 4.0f); },
       {{"a", 4.0}},
       [](int d, bool c) -> Oracle {
         const double a = c ? 4.0 : 10.0;
         return [=](const double* x) { return ref::rastrigin(x, d, a); };
       }},
  };
}

TEST(AnalyticEnergyTest, NamesListsTheSixKinds) {
  const std::vector<std::string> expected = {"gaussian",   "double_well", "harmonic",
                                             "rosenbrock", "ackley",      "rastrigin"};
  EXPECT_EQ(AnalyticEnergy::names(), expected);
}

TEST(AnalyticEnergyTest, FactoriesWithDefaultsMatchTheOracle) {
  uint64_t seed = 1;
  for (const Case& c : Cases()) {
    for (int d : DimsFor(c.kind)) {
      const AnalyticEnergy en = c.defaults(d);
      EXPECT_EQ(en.kind(), c.kind);
      EXPECT_EQ(en.dim(), d);
      CheckAgainstOracle(en, c.oracle(d, false), seed++);
    }
  }
}

TEST(AnalyticEnergyTest, FactoriesWithParametersMatchTheOracle) {
  uint64_t seed = 100;
  for (const Case& c : Cases())
    for (int d : DimsFor(c.kind)) CheckAgainstOracle(c.custom(d), c.oracle(d, true), seed++);
}

TEST(AnalyticEnergyTest, ByNameMatchesTheOracle) {
  uint64_t seed = 200;
  for (const Case& c : Cases()) {
    for (int d : DimsFor(c.kind)) {
      const AnalyticEnergy plain = AnalyticEnergy::by_name(c.name, d);
      EXPECT_EQ(plain.kind(), c.kind);
      EXPECT_EQ(plain.dim(), d);
      CheckAgainstOracle(plain, c.oracle(d, false), seed++);
      CheckAgainstOracle(AnalyticEnergy::by_name(c.name, d, c.custom_params), c.oracle(d, true),
                         seed++);
    }
  }
}

TEST(AnalyticEnergyTest, IsotropicGaussianByNameMatchesTheOracle) {
  uint64_t seed = 300;
  for (int d : {1, 2, 5}) {
    const AnalyticEnergy std_normal = AnalyticEnergy::by_name("gaussian", d);
    EXPECT_EQ(std_normal.kind(), AnalyticKind::kGaussian);
    const std::vector<double> zero(d, 0.0);
    std::vector<double> identity(d * d, 0.0);
    for (int i = 0; i < d; ++i) identity[i * d + i] = 1.0;
    CheckAgainstOracle(
        std_normal, [&](const double* x) { return ref::gaussian(zero, identity, x); }, seed++);

    const double mean = 0.3, s = 1.7;
    const AnalyticEnergy shifted =
        AnalyticEnergy::by_name("gaussian", d, {{"mean", mean}, {"std", s}});
    const std::vector<double> mu(d, static_cast<float>(mean));
    std::vector<double> precision(d * d, 0.0);
    for (int i = 0; i < d; ++i) precision[i * d + i] = 1.0 / (s * s);
    CheckAgainstOracle(
        shifted, [&](const double* x) { return ref::gaussian(mu, precision, x); }, seed++);
  }
}

TEST(AnalyticEnergyTest, GaussianWithFullCovarianceMatchesTheOracle) {
  uint64_t seed = 400;
  for (int d : {1, 2, 5}) {
    SCOPED_TRACE("dim " + std::to_string(d));
    // Sigma = A A^T + 0.5 I with A random: symmetric positive definite, not diagonal.
    const std::vector<float> a = RandomNormal(d * d, 1.0, seed++);
    std::vector<double> cov(d * d, 0.0);
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) {
        for (int k = 0; k < d; ++k) cov[i * d + j] += double{a[i * d + k]} * a[j * d + k];
        if (i == j) cov[i * d + j] += 0.5;
      }
    const std::vector<float> mean_f = RandomNormal(d, 1.0, seed++);
    const std::vector<double> mean = ref::to_double(mean_f);
    const std::vector<double> precision = ref::invert_matrix(cov, d);
    // The oracle's inverse: Sigma P = I in double.
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) {
        double s = 0.0;
        for (int k = 0; k < d; ++k) s += cov[i * d + k] * precision[k * d + j];
        ASSERT_NEAR(s, i == j ? 1.0 : 0.0, 1e-10);
      }

    const AnalyticEnergy en = AnalyticEnergy::gaussian(mean_f, cov);
    EXPECT_EQ(en.kind(), AnalyticKind::kGaussian);
    EXPECT_EQ(en.dim(), d);
    ASSERT_EQ(en.mean().size(), static_cast<std::size_t>(d));
    ASSERT_EQ(en.precision().size(), static_cast<std::size_t>(d * d));
    double pmax = 0.0;
    for (double p : precision) pmax = std::max(pmax, std::abs(p));
    for (int i = 0; i < d * d; ++i)  // float storage of a double inverse
      EXPECT_NEAR(en.precision()[i], precision[i], 1e-6 * pmax) << "precision entry " << i;
    for (int i = 0; i < d; ++i) EXPECT_EQ(en.mean()[i], mean_f[i]);
    // Rows around the mean, so E covers typical values of the distribution.
    CheckAgainstOracle(
        en, [&](const double* x) { return ref::gaussian(mean, precision, x); }, seed++, 2.0);
  }
}

TEST(AnalyticEnergyTest, AckleyGradientAtTheOriginIsExactlyZero) {
  for (int d : {1, 2, 5}) {
    for (const AnalyticEnergy& en :
         {AnalyticEnergy::ackley(d), AnalyticEnergy::by_name("ackley", d)}) {
      SCOPED_TRACE(en.name());
      // Rows 0 and 5 at the origin, the rest random (the origin must not disturb its block).
      const int64_t n = 7;
      std::vector<float> x = RandomNormal(n * d, 1.0, 500 + d);
      for (int k = 0; k < d; ++k) x[0 * d + k] = x[5 * d + k] = 0.0f;
      std::vector<float> g(n * d, kNaN), e(n, kNaN);
      en.gradient(x.data(), n, g.data(), e.data());
      for (int64_t row : {0, 5}) {
        for (int k = 0; k < d; ++k) EXPECT_EQ(g[row * d + k], 0.0f) << "row " << row;
        // E(0) = -a - e + a + e = 0 up to float rounding of terms of size a + e ~ 23.
        EXPECT_NEAR(e[row], 0.0, 1e-5) << "row " << row;
      }
      for (int64_t row = 0; row < n; ++row) {
        if (row == 0 || row == 5) continue;
        const std::vector<double> xd(x.begin() + row * d, x.begin() + (row + 1) * d);
        const ref::AnalyticValue v = ref::ackley(xd.data(), d, 20.0, 0.2, 2.0 * kPi);
        EXPECT_TRUE(Close(e[row], v.energy, v.energy_scale)) << "row " << row;
        for (int k = 0; k < d; ++k)
          EXPECT_TRUE(Close(g[row * d + k], v.grad[k], v.grad_scale[k])) << "row " << row;
      }
    }
  }
  // The oracle agrees: its gradient at 0 is 0 as well.
  const double zero[2] = {0.0, 0.0};
  const ref::AnalyticValue v = ref::ackley(zero, 2, 20.0, 0.2, 2.0 * kPi);
  EXPECT_EQ(v.grad[0], 0.0);
  EXPECT_NEAR(v.energy, 0.0, 1e-14);
}

TEST(AnalyticEnergyTest, OracleGradientsMatchFiniteDifferences) {
  // The oracle's closed-form gradients against central differences (h = 1e-6, double):
  // truncation and rounding errors ~1e-9 of the scale.
  std::vector<double> cov = {2.0, 0.3, -0.2, 0.3, 1.0, 0.1, -0.2, 0.1, 0.7};
  const std::vector<double> precision = ref::invert_matrix(cov, 3), mean = {0.2, -0.4, 1.1};
  const std::vector<std::pair<int, Oracle>> oracles = {
      {3, [&](const double* x) { return ref::gaussian(mean, precision, x); }},
      {3, [](const double* x) { return ref::double_well(x, 3, 1.5, 0.7); }},
      {3, [](const double* x) { return ref::harmonic(x, 3, 2.5); }},
      {3, [](const double* x) { return ref::rosenbrock(x, 3, 0.5, 20.0); }},
      {3, [](const double* x) { return ref::ackley(x, 3, 20.0, 0.2, 2.0 * kPi); }},
      {3, [](const double* x) { return ref::rastrigin(x, 3, 10.0); }},
  };
  uint64_t seed = 600;
  for (std::size_t o = 0; o < oracles.size(); ++o) {
    const auto& [d, f] = oracles[o];
    for (int trial = 0; trial < 5; ++trial) {
      const std::vector<double> x = ref::to_double(RandomNormal(d, 1.2, seed++));
      const ref::AnalyticValue v = f(x.data());
      const auto fd = ref::central_gradient(
          [&](const std::vector<double>& p) { return f(p.data()).energy; }, x, 1e-6);
      for (int k = 0; k < d; ++k)
        EXPECT_NEAR(v.grad[k], fd[k], 1e-6 * (1.0 + v.grad_scale[k]))
            << "oracle " << o << ", coordinate " << k;
    }
  }
}

TEST(AnalyticEnergyTest, BadCovariancesAreRejected) {
  ExpectInvalid(
      [] {
        AnalyticEnergy::gaussian({0.0f, 0.0f}, {1.0, 2.0, 2.0, 1.0});
      },
      {"gaussian", "not symmetric positive definite"});
  ExpectInvalid([] { AnalyticEnergy::gaussian({0.0f}, {-1.0}); },
                {"not symmetric positive definite"});
  ExpectInvalid(
      [] {
        AnalyticEnergy::gaussian({0.0f, 0.0f}, {1.0, 0.5, 0.2, 1.0});
      },
      {"not symmetric"});
  ExpectInvalid(
      [] {
        AnalyticEnergy::gaussian({0.0f, 0.0f}, {1.0, 0.0, 1.0});
      },
      {"4 entries", "got 3"});
  ExpectInvalid(
      [] {
        AnalyticEnergy::gaussian({0.0f, 0.0f, 0.0f}, {1.0, 0.0, 0.0, 1.0});
      },
      {"9 entries", "got 4"});
  ExpectInvalid([] { AnalyticEnergy::gaussian({}, {}); }, {"gaussian", ">= 1", "got 0"});
  ExpectInvalid([] { AnalyticEnergy::by_name("gaussian", 2, {{"std", -1.0}}); }, {"std", "> 0"});
}

TEST(AnalyticEnergyTest, BadDimensionsAndParametersAreRejected) {
  ExpectInvalid([] { AnalyticEnergy::rosenbrock(1); }, {"rosenbrock", ">= 2", "got 1"});
  ExpectInvalid([] { AnalyticEnergy::by_name("rosenbrock", 1); }, {"rosenbrock", ">= 2", "got 1"});
  ExpectInvalid([] { AnalyticEnergy::harmonic(0); }, {"harmonic", ">= 1", "got 0"});
  ExpectInvalid([] { AnalyticEnergy::double_well(-2); }, {"double_well", "got -2"});
  ExpectInvalid([] { AnalyticEnergy::harmonic(2, kNaN); }, {"harmonic", "k", "finite"});
  ExpectInvalid([] { AnalyticEnergy::ackley(2, 20.0f, 0.2f, kNaN); }, {"ackley", "c", "finite"});
}

TEST(AnalyticEnergyTest, UnknownNamesAndKeysAreRejected) {
  std::vector<std::string> needles = {"'banana'"};
  for (const auto& n : AnalyticEnergy::names()) needles.push_back(n);
  ExpectInvalid([] { AnalyticEnergy::by_name("banana", 2); }, needles);
  ExpectInvalid(
      [] {
        AnalyticEnergy::by_name("harmonic", 2, {{"q", 1.0}});
      },
      {"harmonic", "'q'", "k"});
  ExpectInvalid(
      [] {
        AnalyticEnergy::by_name("double_well", 2, {{"k", 1.0}});
      },
      {"double_well", "'k'", "h", "b"});
  ExpectInvalid(
      [] {
        AnalyticEnergy::by_name("gaussian", 2, {{"cov", 1.0}});
      },
      {"gaussian", "'cov'", "mean", "std"});
}

TEST(AnalyticEnergyTest, BadBatchesLeaveOutputsUntouched) {
  const AnalyticEnergy en = AnalyticEnergy::harmonic(3);
  const std::vector<float> x = RandomNormal(6, 1.0, 700);
  std::vector<float> e(2, 7.0f), g(6, 7.0f);
  ExpectInvalid([&] { en.energy(nullptr, 2, e.data()); }, {"null pointer"});
  ExpectInvalid([&] { en.gradient(x.data(), 2, nullptr, e.data()); }, {"null pointer"});
  ExpectInvalid([&] { en.energy(x.data(), -4, e.data()); }, {"-4"});
  ExpectInvalid([&] { en.gradient(x.data(), -4, g.data(), e.data()); }, {"-4"});
  for (float v : e) EXPECT_EQ(v, 7.0f);
  for (float v : g) EXPECT_EQ(v, 7.0f);
}

}  // namespace
}  // namespace cuebm
