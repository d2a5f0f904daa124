// Datasets and the data loader against behaviour.md: exact counts and shapes where the
// generator is deterministic, moments within 4 standard errors (SE) where it is random.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numbers>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cuebm/data/datasets.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

using ::testing::HasSubstr;

constexpr double kPi = std::numbers::pi;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "no InvalidArgument thrown";
}

int nearest_centre(const std::vector<float>& centres, double x, double y) {
  int best = 0;
  double best_d2 = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < centres.size() / 2; ++k) {
    const double d2 = std::pow(x - centres[2 * k], 2) + std::pow(y - centres[2 * k + 1], 2);
    if (d2 < best_d2) {
      best_d2 = d2;
      best = static_cast<int>(k);
    }
  }
  return best;
}

// Assigns every point to its nearest centre and checks, per component: the exact count, the
// mean within 4 SE (SE = std / sqrt(count)) of the centre, and the root-mean-square deviation
// from the centre within 4 SE (SE = std / sqrt(2 count)) of std, per coordinate; and, pooled
// over all n points (tighter: SE = std / sqrt(2 n)), the RMS deviation per coordinate.
void expect_mixture(const Dataset& d, const std::vector<float>& centres, float std) {
  const size_t k = centres.size() / 2;
  std::vector<int64_t> count(k, 0);
  std::vector<double> sum(2 * k, 0), sum_sq(2 * k, 0);
  for (int64_t i = 0; i < d.n; ++i) {
    const int c = nearest_centre(centres, d.points[2 * i], d.points[2 * i + 1]);
    ++count[c];
    for (int j = 0; j < 2; ++j) {
      const double dev = d.points[2 * i + j] - centres[2 * c + j];
      sum[2 * c + j] += dev;
      sum_sq[2 * c + j] += dev * dev;
    }
  }
  const auto n = static_cast<double>(d.n);
  for (int j = 0; j < 2; ++j) {
    double pooled = 0;
    for (size_t c = 0; c < k; ++c) pooled += sum_sq[2 * c + j];
    EXPECT_NEAR(std::sqrt(pooled / n), std, 4 * std / std::sqrt(2 * n)) << "coordinate " << j;
  }
  for (size_t c = 0; c < k; ++c) {
    const auto expected = d.n / static_cast<int64_t>(k) +
                          (static_cast<int64_t>(c) < d.n % static_cast<int64_t>(k) ? 1 : 0);
    EXPECT_EQ(count[c], expected) << "component " << c;
    const auto m = static_cast<double>(count[c]);
    for (int j = 0; j < 2; ++j) {
      EXPECT_NEAR(sum[2 * c + j] / m, 0.0, 4 * std / std::sqrt(m)) << "component " << c;
      EXPECT_NEAR(std::sqrt(sum_sq[2 * c + j] / m), std, 4 * std / std::sqrt(2 * m))
          << "component " << c;
    }
  }
}

// Components of the first `rows` rows: a generator that forgot to shuffle gives one.
std::set<int> components_of_first_rows(const Dataset& d, const std::vector<float>& centres,
                                       int64_t rows) {
  std::set<int> seen;
  for (int64_t i = 0; i < rows; ++i) {
    seen.insert(nearest_centre(centres, d.points[2 * i], d.points[2 * i + 1]));
  }
  return seen;
}

// Mean and RMS of a - b over all coordinates.
void expect_residual_noise(const Dataset& a, const Dataset& b, double noise) {
  ASSERT_EQ(a.points.size(), b.points.size());
  double sum = 0, sum_sq = 0;
  for (size_t i = 0; i < a.points.size(); ++i) {
    const double r = static_cast<double>(a.points[i]) - b.points[i];
    sum += r;
    sum_sq += r * r;
  }
  const auto m = static_cast<double>(a.points.size());
  EXPECT_NEAR(sum / m, 0.0, 4 * noise / std::sqrt(m));                      // SE = noise / sqrt(m)
  EXPECT_NEAR(std::sqrt(sum_sq / m), noise, 4 * noise / std::sqrt(2 * m));  // SE of the RMS
}

TEST(Datasets, CentresAreTheClosedForms) {
  const std::vector<float> gm = gaussian_mixture_centres(4, 1.5f);
  const std::vector<double> gm_ref = {1.5, 0, 0, 1.5, -1.5, 0, 0, -1.5};
  ASSERT_EQ(gm.size(), gm_ref.size());
  for (size_t i = 0; i < gm.size(); ++i) EXPECT_NEAR(gm[i], gm_ref[i], 1e-6) << i;

  const double d = 2 / std::sqrt(2.0);
  const std::vector<double> eg_ref = {2, 0, -2, 0, 0, 2, 0, -2, d, d, d, -d, -d, d, -d, -d};
  const std::vector<float> eg = eight_gaussians_centres(2.0f);
  ASSERT_EQ(eg.size(), eg_ref.size());
  for (size_t i = 0; i < eg.size(); ++i) EXPECT_NEAR(eg[i], eg_ref[i], 1e-6) << i;
}

TEST(Datasets, GaussianMixtureCountsMeansAndStds) {
  // 2003 = 8 * 250 + 3: the first three components get 251 points. The nearest-centre
  // assignment is exact here: neighbouring centres are 0.77 apart, 7.6 std from the midpoint.
  const GaussianMixtureParams p{2003, 8, 0.05f, 1.0f};
  const std::vector<float> centres = gaussian_mixture_centres(8, 1.0f);
  const Dataset d = make_gaussian_mixture(p, 11);
  ASSERT_EQ(d.n, 2003);
  ASSERT_EQ(d.dim, 2);
  ASSERT_EQ(d.points.size(), 2u * 2003);
  expect_mixture(d, centres, p.std);
  EXPECT_EQ(components_of_first_rows(d, centres, 250).size(), 8u);
}

TEST(Datasets, TutorialMixtureHas125PerComponent) {
  const Dataset d = make_gaussian_mixture({500, 4, 0.1f, 1.5f}, 42);
  ASSERT_EQ(d.n, 500);
  ASSERT_EQ(d.points.size(), 1000u);
  // Centres 2.1 apart: 10.6 std from the midpoint, so the assignment is exact.
  expect_mixture(d, gaussian_mixture_centres(4, 1.5f), 0.1f);
}

TEST(Datasets, EightGaussiansCountsMeansAndStds) {
  const Dataset d = make_eight_gaussians({2000, 0.02f, 2.0f}, 5);
  const std::vector<float> centres = eight_gaussians_centres(2.0f);
  ASSERT_EQ(d.n, 2000);
  expect_mixture(d, centres, 0.02f);  // 250 per component
  EXPECT_EQ(components_of_first_rows(d, centres, 250).size(), 8u);
}

TEST(Datasets, CircleRadiusAndAngle) {
  const CircleParams p{4000, 0.05f, 2.0f};
  const Dataset d = make_circle(p, 3);
  ASSERT_EQ(d.n, 4000);
  const auto n = static_cast<double>(d.n);
  double r_sum = 0, r_sq = 0, cos_sum = 0, sin_sum = 0;
  for (int64_t i = 0; i < d.n; ++i) {
    const double x = d.points[2 * i], y = d.points[2 * i + 1], r = std::hypot(x, y);
    r_sum += r;
    r_sq += r * r;
    cos_sum += x / r;
    sin_sum += y / r;
  }
  // E|p| = radius + noise^2 / (2 radius) + O(noise^4 / radius^3); the radial deviation has
  // std noise, so the mean has SE noise / sqrt(n) and the std SE noise / sqrt(2 n).
  const double r_mean = r_sum / n;
  EXPECT_NEAR(r_mean, p.radius + p.noise * p.noise / (2 * p.radius), 4 * p.noise / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(r_sq / n - r_mean * r_mean), p.noise, 4 * p.noise / std::sqrt(2 * n));
  // Uniform angle: cos and sin have mean 0 and variance 1/2.
  EXPECT_NEAR(cos_sum / n, 0.0, 4 * std::sqrt(0.5 / n));
  EXPECT_NEAR(sin_sum / n, 0.0, 4 * std::sqrt(0.5 / n));

  const Dataset exact = make_circle({1000, 0.0f, 2.0f}, 3);
  for (int64_t i = 0; i < exact.n; ++i) {
    EXPECT_NEAR(std::hypot(exact.points[2 * i], exact.points[2 * i + 1]), 2.0, 1e-6);
  }
}

TEST(Datasets, TwoMoonsShape) {
  // n = 2001: 1000 points on the upper unit half circle, 1001 on the shifted lower one.
  const Dataset exact = make_two_moons({2001, 0.0f}, 1);
  ASSERT_EQ(exact.n, 2001);
  for (int64_t i = 0; i < 1000; ++i) {
    const double t = kPi * static_cast<double>(i) / 999;
    EXPECT_NEAR(exact.points[2 * i], std::cos(t), 1e-6) << i;
    EXPECT_NEAR(exact.points[2 * i + 1], std::sin(t), 1e-6) << i;
  }
  for (int64_t i = 0; i < 1001; ++i) {
    const double t = kPi * static_cast<double>(i) / 1000;
    EXPECT_NEAR(exact.points[2 * (1000 + i)], 1 - std::cos(t), 1e-6) << i;
    EXPECT_NEAR(exact.points[2 * (1000 + i) + 1], 0.5 - std::sin(t), 1e-6) << i;
  }
  // The noise is N(0, noise^2) on top of the noise-free shape.
  expect_residual_noise(make_two_moons({2001, 0.05f}, 1), exact, 0.05);
}

TEST(Datasets, SwissRollNormalisation) {
  for (const SwissRollParams& p : {SwissRollParams{}, SwissRollParams{777, 0.0f, 1.5f}}) {
    const Dataset d = make_swiss_roll(p, 9);
    ASSERT_EQ(d.n, p.n);
    const auto n = static_cast<double>(d.n);
    double mean[2] = {0, 0}, ss[2] = {0, 0};
    for (int64_t i = 0; i < d.n; ++i) {
      for (int c = 0; c < 2; ++c) mean[c] += d.points[2 * i + c] / n;
    }
    for (int64_t i = 0; i < d.n; ++i) {
      for (int c = 0; c < 2; ++c) ss[c] += std::pow(d.points[2 * i + c] - mean[c], 2);
    }
    // Exact up to float rounding of values of order 1.
    EXPECT_NEAR(mean[0], 0.0, 1e-5);
    EXPECT_NEAR(mean[1], 0.0, 1e-5);
    EXPECT_NEAR((std::sqrt(ss[0] / (n - 1)) + std::sqrt(ss[1] / (n - 1))) / 2, 0.5, 1e-5);
    // A spiral over several turns is spread in both directions, not collapsed onto a line.
    EXPECT_GT(std::sqrt(ss[0] / (n - 1)), 0.3);
    EXPECT_GT(std::sqrt(ss[1] / (n - 1)), 0.3);
  }
}

bool odd_cell(double x, double y) {
  return static_cast<int64_t>(std::floor(x) + std::floor(y)) % 2 != 0;
}

TEST(Datasets, CheckerboardNoiseFreePointsFillTheOddCells) {
  // 32 odd cells in [-4, 4]^2; each count is Binomial(6400, 1/32): mean 200, SE 13.9.
  const Dataset d = make_checkerboard({6400, 4.0f, 0.0f}, 2);
  std::map<std::pair<int, int>, int> cells;
  for (int64_t i = 0; i < d.n; ++i) {
    const double x = d.points[2 * i], y = d.points[2 * i + 1];
    ASSERT_TRUE(odd_cell(x, y)) << x << ", " << y;
    ASSERT_LE(std::abs(x), 4.0);
    ASSERT_LE(std::abs(y), 4.0);
    ++cells[{static_cast<int>(std::floor(x)), static_cast<int>(std::floor(y))}];
  }
  EXPECT_EQ(cells.size(), 32u);
  const double se = std::sqrt(6400.0 / 32 * (31.0 / 32));
  for (const auto& [cell, count] : cells) EXPECT_NEAR(count, 200, 4 * se);
}

TEST(Datasets, CheckerboardPointsDeepInsideCellsAreInOddCells) {
  // With noise 0.01, a point more than 0.06 (6 std; P < 2e-9) from every cell edge cannot
  // have been pushed across one.
  const Dataset d = make_checkerboard({4000, 4.0f, 0.01f}, 2);
  int64_t checked = 0;
  for (int64_t i = 0; i < d.n; ++i) {
    const double x = d.points[2 * i], y = d.points[2 * i + 1];
    const auto edge_distance = [](double v) { return std::abs(v - std::round(v)); };
    if (edge_distance(x) <= 0.06 || edge_distance(y) <= 0.06) continue;
    ++checked;
    EXPECT_TRUE(odd_cell(x, y)) << x << ", " << y;
  }
  EXPECT_GT(checked, d.n / 2);  // about 77% of points are that deep
}

TEST(Datasets, GridIsTheLatticeUpToNoise) {
  const Dataset exact = make_grid({10, 1.5f, 0.0f}, 4);
  ASSERT_EQ(exact.n, 100);
  for (int64_t k = 0; k < 100; ++k) {
    EXPECT_NEAR(exact.points[2 * k], -1.5 + 3.0 * static_cast<double>(k % 10) / 9, 1e-6);
    EXPECT_NEAR(exact.points[2 * k + 1], -1.5 + 3.0 * static_cast<double>(k / 10) / 9, 1e-6);
  }
  expect_residual_noise(make_grid({10, 1.5f, 0.01f}, 4), exact, 0.01);
  EXPECT_EQ(make_grid({7, 1.0f, 0.01f}, 4).n, 49);
  // numpy.linspace(-r, r, 1) == [-r].
  const Dataset single = make_grid({1, 2.0f, 0.0f}, 4);
  ASSERT_EQ(single.n, 1);
  EXPECT_EQ(single.points, (std::vector<float>{-2.0f, -2.0f}));
}

TEST(Datasets, PinwheelRadiiAnglesAndClasses) {
  const PinwheelParams p{2000, 5, 0.0f, 2.0f, 0.1f, 5.0f};
  const Dataset d = make_pinwheel(p, 6);
  ASSERT_EQ(d.n, 2000);
  const auto n = static_cast<double>(d.n);
  std::vector<int64_t> count(5, 0);
  std::vector<int> cls(d.n);
  double t2_sum = 0, res_sum = 0, res_sq = 0;
  for (int64_t i = 0; i < d.n; ++i) {
    const double x = d.points[2 * i], y = d.points[2 * i + 1], r = std::hypot(x, y);
    ASSERT_LE(r, p.radial * (1 + 1e-6));
    const double t = r / p.radial;
    t2_sum += t * t;
    // theta - spiral t = 2 pi c / C + angular N: the class is the nearest arm (arms are 1.26
    // apart, 6.3 angular std from the midpoint), the residual is angular N.
    double best = kPi;
    for (int c = 0; c < 5; ++c) {
      const double res = std::remainder(std::atan2(y, x) - p.spiral * t - 2 * kPi * c / 5, 2 * kPi);
      if (std::abs(res) < std::abs(best)) {
        best = res;
        cls[i] = c;
      }
    }
    ++count[cls[i]];
    res_sum += best;
    res_sq += best * best;
  }
  for (int c = 0; c < 5; ++c) EXPECT_EQ(count[c], 400) << "class " << c;
  // t = sqrt(U): t^2 is uniform, mean 1/2, SE sqrt(1/12 / n).
  EXPECT_NEAR(t2_sum / n, 0.5, 4 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(res_sum / n, 0.0, 4 * p.angular / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(res_sq / n), p.angular, 4 * p.angular / std::sqrt(2 * n));
  // Shuffled: the first 400 rows hold every class.
  EXPECT_EQ(std::set<int>(cls.begin(), cls.begin() + 400).size(), 5u);

  // Defaults (noise 0.05): radii within radial + 6 noise (a 2-D normal exceeds 6 std with
  // probability exp(-18) = 1.5e-8).
  const Dataset noisy = make_pinwheel({}, 6);
  for (int64_t i = 0; i < noisy.n; ++i) {
    EXPECT_LE(std::hypot(noisy.points[2 * i], noisy.points[2 * i + 1]), 2.0 + 6 * 0.05);
  }
}

TEST(Datasets, SameSeedIdenticalOtherSeedDifferent) {
  for (const std::string& name : dataset_names()) {
    const Dataset a = make_dataset(name, {}, 1234), b = make_dataset(name, {}, 1234);
    const Dataset c = make_dataset(name, {}, 1235);
    EXPECT_EQ(a.n, name == "grid" ? 100 : 2000) << name;
    EXPECT_EQ(a.dim, 2) << name;
    EXPECT_EQ(a.points.size(), 2 * static_cast<size_t>(a.n)) << name;
    EXPECT_TRUE(std::all_of(a.points.begin(), a.points.end(), [](float v) {
      return std::isfinite(v);
    })) << name;
    EXPECT_EQ(a.points, b.points) << name;
    EXPECT_NE(a.points, c.points) << name;
  }
}

TEST(Datasets, NamesAndOverrides) {
  EXPECT_EQ(dataset_names(),
            (std::vector<std::string>{"gaussian_mixture", "eight_gaussians", "two_moons",
                                      "swiss_roll", "circle", "checkerboard", "pinwheel", "grid"}));
  EXPECT_EQ(make_dataset("gaussian_mixture",
                         {{"n", 500}, {"components", 4}, {"std", 0.1}, {"radius", 1.5}}, 42)
                .points,
            make_gaussian_mixture({500, 4, 0.1f, 1.5f}, 42).points);
  EXPECT_EQ(make_dataset("pinwheel",
                         {{"n", 300},
                          {"classes", 3},
                          {"noise", 0.02},
                          {"radial", 1.0},
                          {"angular", 0.3},
                          {"spiral", 2.0}},
                         8)
                .points,
            make_pinwheel({300, 3, 0.02f, 1.0f, 0.3f, 2.0f}, 8).points);
  EXPECT_EQ(make_dataset("grid", {{"n_per_side", 4}, {"range", 2}, {"noise", 0.1}}, 8).points,
            make_grid({4, 2.0f, 0.1f}, 8).points);
  EXPECT_EQ(make_dataset("swiss_roll", {{"arclength", 2}}, 8).points,
            make_swiss_roll({2000, 0.05f, 2.0f}, 8).points);
  EXPECT_EQ(make_dataset("checkerboard", {{"range", 2}}, 8).points,
            make_checkerboard({2000, 2.0f, 0.01f}, 8).points);
  EXPECT_EQ(make_dataset("eight_gaussians", {{"scale", 3}}, 8).points,
            make_eight_gaussians({2000, 0.02f, 3.0f}, 8).points);
}

struct BadCase {
  std::function<void()> call;
  std::string message;
};

TEST(Datasets, BadInputsNameTheValue) {
  const std::vector<BadCase> cases = {
      {[] {
         make_gaussian_mixture({0, 8, 0.05f, 1.0f}, 0);
       },
       "make_gaussian_mixture: n must be >= 1, got 0"},
      {[] {
         make_gaussian_mixture({10, 0, 0.05f, 1.0f}, 0);
       },
       "components must be >= 1, got 0"},
      {[] {
         make_gaussian_mixture({10, 8, -1.0f, 1.0f}, 0);
       },
       "std must be finite and >= 0, got -1"},
      {[] {
         make_gaussian_mixture({10, 8, NAN, 1.0f}, 0);
       },
       "std must be finite and >= 0, got nan"},
      {[] {
         make_gaussian_mixture({10, 8, 0.1f, 0.0f}, 0);
       },
       "radius must be finite and > 0, got 0"},
      {[] {
         make_eight_gaussians({-5, 0.02f, 2.0f}, 0);
       },
       "n must be >= 1, got -5"},
      {[] {
         make_eight_gaussians({10, -0.5f, 2.0f}, 0);
       },
       "std must be finite and >= 0, got -0.5"},
      {[] {
         make_eight_gaussians({10, 0.02f, 0.0f}, 0);
       },
       "scale must be finite and > 0, got 0"},
      {[] {
         make_two_moons({0, 0.05f}, 0);
       },
       "make_two_moons: n must be >= 1, got 0"},
      {[] {
         make_two_moons({10, -1.0f}, 0);
       },
       "noise must be finite and >= 0, got -1"},
      {[] {
         make_swiss_roll({1, 0.05f, 3.0f}, 0);
       },
       "make_swiss_roll: n must be >= 2, got 1"},
      {[] {
         make_swiss_roll({10, NAN, 3.0f}, 0);
       },
       "noise must be finite and >= 0, got nan"},
      {[] {
         make_swiss_roll({10, 0.05f, 0.0f}, 0);
       },
       "arclength must be finite and > 0, got 0"},
      {[] {
         make_circle({0, 0.05f, 1.0f}, 0);
       },
       "make_circle: n must be >= 1, got 0"},
      {[] {
         make_circle({10, INFINITY, 1.0f}, 0);
       },
       "noise must be finite and >= 0, got inf"},
      {[] {
         make_circle({10, 0.05f, -1.0f}, 0);
       },
       "radius must be finite and > 0, got -1"},
      {[] {
         make_checkerboard({0, 4.0f, 0.01f}, 0);
       },
       "make_checkerboard: n must be >= 1, got 0"},
      {[] {
         make_checkerboard({10, 0.0f, 0.01f}, 0);
       },
       "range must be finite and > 0, got 0"},
      {[] {
         make_checkerboard({10, 1e7f, 0.01f}, 0);
       },
       "range must be <= 1e6, got 1e+07"},
      {[] {
         make_checkerboard({10, 4.0f, -0.01f}, 0);
       },
       "noise must be finite and >= 0, got -0.01"},
      {[] {
         make_pinwheel({0, 5, 0.05f, 2.0f, 0.1f, 5.0f}, 0);
       },
       "make_pinwheel: n must be >= 1"},
      {[] {
         make_pinwheel({10, 0, 0.05f, 2.0f, 0.1f, 5.0f}, 0);
       },
       "classes must be >= 1, got 0"},
      {[] {
         make_pinwheel({10, 5, -2.0f, 2.0f, 0.1f, 5.0f}, 0);
       },
       "noise must be finite and >= 0"},
      {[] {
         make_pinwheel({10, 5, 0.05f, 0.0f, 0.1f, 5.0f}, 0);
       },
       "radial must be finite and > 0"},
      {[] {
         make_pinwheel({10, 5, 0.05f, 2.0f, -0.1f, 5.0f}, 0);
       },
       "angular must be finite and >= 0"},
      {[] {
         make_pinwheel({10, 5, 0.05f, 2.0f, 0.1f, NAN}, 0);
       },
       "spiral must be finite, got nan"},
      {[] {
         make_grid({0, 1.0f, 0.01f}, 0);
       },
       "make_grid: n_per_side must be >= 1, got 0"},
      {[] {
         make_grid({3, -1.0f, 0.01f}, 0);
       },
       "range must be finite and > 0, got -1"},
      {[] {
         make_grid({3, 1.0f, -3.0f}, 0);
       },
       "noise must be finite and >= 0, got -3"},
      {[] { gaussian_mixture_centres(0, 1.0f); }, "components must be >= 1, got 0"},
      {[] { gaussian_mixture_centres(4, -2.0f); }, "radius must be finite and > 0, got -2"},
      {[] { eight_gaussians_centres(0.0f); }, "scale must be finite and > 0, got 0"},
      {[] {
         make_dataset("circle", {{"n", 0}}, 0);
       },
       "make_circle: n must be >= 1, got 0"},
      {[] {
         make_dataset("circle", {{"n", 2.5}}, 0);
       },
       "parameter 'n' of 'circle' must be an integer"},
      {[] {
         make_dataset("circle", {{"n", 2.5}}, 0);
       },
       "got 2.5"},
      {[] {
         make_dataset("gaussian_mixture", {{"components", 3e9}}, 0);
       },
       "got 3e+09"},
      {[] {
         make_dataset("circle", {{"sigma", 0.1}}, 0);
       },
       "unknown parameter 'sigma' for dataset 'circle'; valid parameters: n, noise, radius"},
      {[] {
         make_dataset("grid", {{"n", 100}}, 0);
       },
       "unknown parameter 'n' for dataset 'grid'; valid parameters: n_per_side, range, noise"},
      {[] { make_dataset("moons", {}, 0); },
       "unknown dataset 'moons'; valid names: gaussian_mixture, eight_gaussians, two_moons, "
       "swiss_roll, circle, checkerboard, pinwheel, grid"},
  };
  for (const BadCase& c : cases) EXPECT_THAT(error_of(c.call), HasSubstr(c.message));
}

// n x dim rows: column 0 is the row id + 0.5 (exact in float), the rest random normals.
std::vector<float> id_rows(int64_t n, int dim, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> data(n * dim);
  for (int64_t i = 0; i < n; ++i) {
    data[i * dim] = static_cast<float>(i) + 0.5f;
    for (int j = 1; j < dim; ++j) data[i * dim + j] = normal(gen);
  }
  return data;
}

// The row ids of one epoch in visiting order, checking that every copied row equals its
// source row.
std::vector<int64_t> epoch_order(DataLoader& loader, const std::vector<float>& data) {
  std::vector<int64_t> order;
  const int dim = loader.dim();
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    const float* batch = loader.batch(b);
    for (int64_t r = 0; r < loader.batch_rows(b); ++r) {
      const auto id = static_cast<int64_t>(batch[r * dim]);
      for (int j = 0; j < dim; ++j) EXPECT_EQ(batch[r * dim + j], data[id * dim + j]);
      order.push_back(id);
    }
  }
  return order;
}

TEST(DataLoader, EveryEpochIsAPermutation) {
  const std::vector<float> data = id_rows(500, 3, 1);
  DataLoader loader(data.data(), 500, 3, 64, /*shuffle=*/true, /*drop_last=*/false, 77);
  ASSERT_EQ(loader.num_batches(), 8);
  EXPECT_EQ(loader.batch_rows(0), 64);
  EXPECT_EQ(loader.batch_rows(7), 52);
  EXPECT_EQ(loader.batch_size(), 64);
  EXPECT_EQ(loader.dim(), 3);
  std::vector<int64_t> identity(500);
  for (int64_t i = 0; i < 500; ++i) identity[i] = i;
  std::vector<std::vector<int64_t>> orders;
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    loader.start_epoch(epoch);
    orders.push_back(epoch_order(loader, data));
    std::vector<int64_t> sorted = orders.back();
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, identity) << "epoch " << epoch;  // every row exactly once
    EXPECT_NE(orders.back(), identity) << "epoch " << epoch;
  }
  for (size_t e = 1; e < orders.size(); ++e) EXPECT_NE(orders[e], orders[e - 1]);
  // The order depends on (seed, epoch) only.
  loader.start_epoch(1);
  EXPECT_EQ(epoch_order(loader, data), orders[1]);
  DataLoader same(data.data(), 500, 3, 100, true, false, 77);
  same.start_epoch(2);
  EXPECT_EQ(epoch_order(same, data), orders[2]);
  DataLoader other(data.data(), 500, 3, 64, true, false, 78);
  other.start_epoch(2);
  EXPECT_NE(epoch_order(other, data), orders[2]);
}

TEST(DataLoader, PermutationsAreUniform) {
  // 24000 epochs of 4 rows: each of the 24 orders is Binomial(24000, 1/24), mean 1000,
  // SE 31. A biased shuffle (e.g. swapping with any index) misses some orders by > 250.
  const std::vector<float> data = id_rows(4, 1, 2);
  DataLoader loader(data.data(), 4, 1, 4, true, false, 3);
  std::map<std::vector<int64_t>, int> counts;
  for (int64_t epoch = 0; epoch < 24000; ++epoch) {
    loader.start_epoch(epoch);
    ++counts[epoch_order(loader, data)];
  }
  EXPECT_EQ(counts.size(), 24u);
  const double se = std::sqrt(24000.0 / 24 * (23.0 / 24));
  for (const auto& [order, count] : counts) EXPECT_NEAR(count, 1000, 4 * se);
}

TEST(DataLoader, DropLastAndShortLastBatch) {
  // The tutorial: 500 points, batches of 256.
  const std::vector<float> data = id_rows(500, 2, 3);
  DataLoader dropping(data.data(), 500, 2, 256, true, true, 42);
  ASSERT_EQ(dropping.num_batches(), 1);
  EXPECT_EQ(dropping.batch_rows(0), 256);
  std::set<int64_t> seen;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    dropping.start_epoch(epoch);
    const std::vector<int64_t> order = epoch_order(dropping, data);
    ASSERT_EQ(order.size(), 256u);
    EXPECT_EQ(std::set<int64_t>(order.begin(), order.end()).size(), 256u);
    seen.insert(order.begin(), order.end());
  }
  EXPECT_GT(seen.size(), 256u);  // a different subset is dropped each epoch

  DataLoader keeping(data.data(), 500, 2, 256, true, false, 42);
  ASSERT_EQ(keeping.num_batches(), 2);
  EXPECT_EQ(keeping.batch_rows(0), 256);
  EXPECT_EQ(keeping.batch_rows(1), 244);
  EXPECT_EQ(epoch_order(keeping, data).size(), 500u);

  DataLoader exact(data.data(), 500, 2, 250, true, true, 42);
  EXPECT_EQ(exact.num_batches(), 2);
  EXPECT_EQ(exact.batch_rows(1), 250);
}

TEST(DataLoader, WithoutShuffleRowsComeInOrder) {
  const std::vector<float> data = id_rows(10, 2, 4);
  DataLoader loader(data.data(), 10, 2, 4, false, false, 5);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    ASSERT_EQ(loader.num_batches(), 3);
    for (int64_t b = 0; b < 3; ++b) {
      const float* batch = loader.batch(b);
      const int64_t rows = loader.batch_rows(b);
      EXPECT_EQ(rows, b < 2 ? 4 : 2);
      EXPECT_TRUE(std::equal(batch, batch + rows * 2, data.begin() + b * 8));
    }
  }
}

TEST(DataLoader, OneBufferForAllBatches) {
  const std::vector<float> data = id_rows(100, 2, 5);
  DataLoader loader(data.data(), 100, 2, 30, true, false, 6);
  const float* first = loader.batch(0);
  loader.start_epoch(3);
  for (int64_t b = 0; b < loader.num_batches(); ++b) EXPECT_EQ(loader.batch(b), first);
}

TEST(DataLoader, BadInputsNameTheValue) {
  const std::vector<float> data = id_rows(10, 2, 6);
  const float* p = data.data();
  EXPECT_THAT(error_of([] { DataLoader(nullptr, 10, 2, 4, true, false, 0); }),
              HasSubstr("DataLoader: data pointer is null"));
  EXPECT_THAT(error_of([p] { DataLoader(p, 0, 2, 4, true, false, 0); }),
              HasSubstr("DataLoader: n must be >= 1, got 0"));
  EXPECT_THAT(error_of([p] { DataLoader(p, 10, 0, 4, true, false, 0); }),
              HasSubstr("DataLoader: dim must be >= 1, got 0"));
  EXPECT_THAT(error_of([p] { DataLoader(p, 10, 2, 0, true, false, 0); }),
              HasSubstr("DataLoader: batch_size must be >= 1, got 0"));
  EXPECT_THAT(error_of([p] { DataLoader(p, 10, 2, 11, true, true, 0); }),
              HasSubstr("drop_last with batch_size 11 > n 10 leaves no batches"));

  std::vector<float> bad = data;
  bad[7 * 2 + 1] = NAN;
  EXPECT_THAT(error_of([&bad] { DataLoader(bad.data(), 10, 2, 4, true, false, 0); }),
              HasSubstr("data row 7 (column 1) is nan"));
  bad[3 * 2] = -INFINITY;  // the first bad row is named
  EXPECT_THAT(error_of([&bad] { DataLoader(bad.data(), 10, 2, 4, true, false, 0); }),
              HasSubstr("data row 3 (column 0) is -inf"));

  // Failed calls leave the current batch and epoch as they were.
  DataLoader loader(p, 10, 2, 4, true, false, 0);
  loader.start_epoch(2);
  const std::vector<int64_t> before = epoch_order(loader, data);
  const float* buffer = loader.batch(0);
  const std::vector<float> first(buffer, buffer + 8);
  EXPECT_THAT(error_of([&loader] { loader.batch(3); }),
              HasSubstr("DataLoader::batch: batch index 3 out of range [0, 3)"));
  EXPECT_THAT(error_of([&loader] { loader.batch(-1); }), HasSubstr("batch index -1 out of range"));
  EXPECT_THAT(error_of([&loader] { loader.batch_rows(3); }),
              HasSubstr("DataLoader::batch_rows: batch index 3 out of range [0, 3)"));
  EXPECT_EQ(std::vector<float>(buffer, buffer + 8), first);
  EXPECT_THAT(error_of([&loader] { loader.start_epoch(-1); }),
              HasSubstr("DataLoader::start_epoch: epoch must be >= 0, got -1"));
  EXPECT_EQ(epoch_order(loader, data), before);
}

}  // namespace
}  // namespace cuebm
