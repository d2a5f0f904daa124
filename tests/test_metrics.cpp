// Tests of the 2-D model metrics (include/cuebm/data/metrics.hpp) against closed forms, an
// independent O(n^2) MMD reference and hand-counted points. Statistical checks state their
// standard error (SE) and use fixed seeds.
#include "cuebm/data/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "host/runtime/random.hpp"

namespace cuebm {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kE = std::numbers::e;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Runs f and expects InvalidArgument whose message contains `needle`.
template <typename F>
void ExpectInvalid(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' does not mention '" << needle << "'";
  }
}

// E = |x - mu|^2 / (2 s^2): density exp(-E / T) is N(mu, s^2 T I), Z = 2 pi s^2 T.
BatchEnergyFn GaussianEnergy(double s, double mx, double my) {
  return [=](const float* xy, int64_t n, float* e) {
    for (int64_t i = 0; i < n; ++i) {
      const double dx = xy[2 * i] - mx, dy = xy[2 * i + 1] - my;
      e[i] = static_cast<float>((dx * dx + dy * dy) / (2 * s * s));
    }
  };
}

// The tutorial mixture: K = 4, std = 0.1, centres 1.5 (cos, sin)(2 pi i / 4).
constexpr int kModes = 4;
constexpr double kModeStd = 0.1;
std::vector<float> TutorialCentres() {
  std::vector<float> c;
  for (int i = 0; i < kModes; ++i) {
    c.push_back(static_cast<float>(1.5 * std::cos(2 * kPi * i / kModes)));
    c.push_back(static_cast<float>(1.5 * std::sin(2 * kPi * i / kModes)));
  }
  return c;
}

// Draws n points from the equal-weight mixture of N(centre_m, std^2 I) over modes [0, modes).
std::vector<float> SampleMixture(const std::vector<float>& centres, int modes, double std,
                                 int64_t n, uint64_t seed) {
  RandomStream rng(seed, StreamTag::kMetrics, 0);
  std::vector<float> x(2 * n);
  for (int64_t i = 0; i < n; ++i) {
    const auto m = rng.uniform_int(modes);
    x[2 * i] = static_cast<float>(centres[2 * m] + std * rng.normal());
    x[2 * i + 1] = static_cast<float>(centres[2 * m + 1] + std * rng.normal());
  }
  return x;
}

// Sample standard error of the mean of v.
double StandardError(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= v.size();
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / (v.size() - 1) / v.size());
}

TEST(GridPoints, RowMajorXFastestIncludingEndPoints) {
  const Grid2D g{-1.0, 3.0, 2.0, 5.0, 5, 3};  // dx = 1, dy = 1.5: exact in float
  const std::vector<float> xy = grid_points(g);
  ASSERT_EQ(xy.size(), 2u * 5 * 3);
  for (int j = 0; j < 3; ++j) {
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(xy[2 * (j * 5 + i)], -1.0f + i) << i << "," << j;
      EXPECT_EQ(xy[2 * (j * 5 + i) + 1], 2.0f + 1.5f * j) << i << "," << j;
    }
  }
}

// A constant energy c makes every term equal: log Z = -c / T + log(nx ny dx dy) exactly (not
// log(area), which differs by 2 log(100 / 99) on this grid). Also checks that the callback
// sees every grid point once, in order, in chunks of at most 4096.
TEST(GridLogPartition, ConstantEnergyCountsEveryPointTimesCellArea) {
  const Grid2D g;  // 100 x 100 on [-2.5, 2.5]^2
  const double c = 0.7, t = 1.3;
  std::vector<int64_t> chunks;
  std::vector<float> seen;
  const BatchEnergyFn energy = [&](const float* xy, int64_t n, float* e) {
    chunks.push_back(n);
    seen.insert(seen.end(), xy, xy + 2 * n);
    for (int64_t i = 0; i < n; ++i) e[i] = static_cast<float>(c);
  };
  const double got = grid_log_partition(energy, g, t);
  const double dx = 5.0 / 99;
  const double want = -static_cast<double>(static_cast<float>(c)) / t + std::log(1e4 * dx * dx);
  EXPECT_NEAR(got, want, 1e-12);
  EXPECT_EQ(chunks, (std::vector<int64_t>{4096, 4096, 1808}));
  EXPECT_EQ(seen, grid_points(g));
}

// +Inf energies count as zero density: with the left half of the columns at +Inf and c
// elsewhere, log Z = -c / T + log(count_finite dx dy).
TEST(GridLogPartition, InfiniteEnergyIsZeroDensity) {
  const Grid2D g{-1.0, 1.0, -2.0, 2.0, 10, 7};
  std::vector<float> e(10 * 7);
  for (int j = 0; j < 7; ++j) {
    for (int i = 0; i < 10; ++i) e[j * 10 + i] = i < 5 ? kInf : -0.25f;
  }
  const double t = 0.5, dx = 2.0 / 9, dy = 4.0 / 6;
  EXPECT_NEAR(grid_log_partition(e.data(), g, t), 0.25 / t + std::log(35 * dx * dy), 1e-12);
}

// Closed form: log Z = log(2 pi s^2 T) for E = |x - mu|^2 / (2 s^2). Tolerance 1e-6: with the
// grid spacing dx <= 12 s sqrt(T) / 399 = 0.03 s sqrt(T) the Riemann sum of a Gaussian is exact
// up to ~exp(-2 pi^2 (s sqrt(T) / dx)^2) (Poisson summation), i.e. nothing; the box +-6 s sqrt(T)
// drops a mass of about 4 Q(6) = 4e-9; float32 energies add a relative error ~1e-7 to each
// term. A wrong cell area (e.g. area / (nx ny)) would be off by 2 log(400 / 399) = 5e-3.
TEST(GridLogPartition, GaussianMatchesClosedForm) {
  const double s = 0.6, mx = 0.3, my = -0.2;
  for (double t : {1.0, 2.5}) {
    const double half = 6 * s * std::sqrt(t);
    const Grid2D g{mx - half, mx + half, my - half, my + half, 400, 400};
    EXPECT_NEAR(grid_log_partition(GaussianEnergy(s, mx, my), g, t), std::log(2 * kPi * s * s * t),
                1e-6)
        << "T = " << t;
  }
}

TEST(GridLogPartition, RejectsBadInput) {
  const Grid2D g{-1.0, 1.0, -1.0, 1.0, 4, 3};
  std::vector<float> e(12, 1.0f);
  const auto call = [&](const Grid2D& grid, double t) {
    return [&e, grid, t] { grid_log_partition(e.data(), grid, t); };
  };
  ExpectInvalid(call(g, 0.0), "temperature must be finite and > 0, got 0");
  ExpectInvalid(call(g, -1.0), "temperature must be finite and > 0, got -1");
  ExpectInvalid(call(g, std::nan("")), "temperature");
  ExpectInvalid(call({-1.0, 1.0, -1.0, 1.0, 1, 3}, 1.0), "nx must be >= 2, got 1");
  ExpectInvalid(call({-1.0, 1.0, -1.0, 1.0, 4, 0}, 1.0), "ny must be >= 2, got 0");
  ExpectInvalid(call({1.0, 1.0, -1.0, 1.0, 4, 3}, 1.0), "xmin < xmax, got xmin = 1, xmax = 1");
  ExpectInvalid(call({-1.0, 1.0, 2.0, 1.0, 4, 3}, 1.0), "ymin < ymax, got ymin = 2, ymax = 1");
  ExpectInvalid(call({-1.0, kInf, -1.0, 1.0, 4, 3}, 1.0), "xmin < xmax");
  ExpectInvalid([&] { grid_log_partition(static_cast<const float*>(nullptr), g, 1.0); },
                "grid_energies is null");
  ExpectInvalid([&] { grid_log_partition(BatchEnergyFn(), g, 1.0); }, "energy function is empty");
  e[7] = kNaN;
  ExpectInvalid(call(g, 1.0), "energy at grid point 7 (i = 3, j = 1) is nan");
  e[7] = -kInf;
  ExpectInvalid(call(g, 1.0), "energy at grid point 7 (i = 3, j = 1) is -inf");
  std::fill(e.begin(), e.end(), kInf);
  ExpectInvalid(call(g, 1.0), "every grid energy is +inf");
  // The callback's NaN is caught the same way.
  ExpectInvalid(
      [&] {
        grid_log_partition([](const float*, int64_t n, float* out) { std::fill_n(out, n, kNaN); },
                           g, 1.0);
      },
      "energy at grid point 0");
}

// Samples of N(mu, s^2 T I) scored by the model exp(-E / T) with E = |x - mu|^2 / (2 s^2): NLL
// tends to the entropy log(2 pi e s^2 T). Since log Z is exact to 1e-6, NLL - H = mean(E / T) - 1
// where E / T ~ chi^2_2 / 2 (sd 1): tolerance 4 SE of the sample mean (SE ~ 1 / sqrt(n) = 0.007)
// plus the grid error.
TEST(TestNll, GaussianSamplesApproachEntropy) {
  const double s = 0.6, mx = 0.3, my = -0.2;
  const int64_t n = 20000;
  for (double t : {1.0, 2.0}) {
    RandomStream rng(11, StreamTag::kMetrics, static_cast<uint64_t>(t));
    std::vector<float> x(2 * n);
    std::vector<double> scaled(n);
    for (int64_t i = 0; i < n; ++i) {
      const double zx = rng.normal(), zy = rng.normal();
      x[2 * i] = static_cast<float>(mx + s * std::sqrt(t) * zx);
      x[2 * i + 1] = static_cast<float>(my + s * std::sqrt(t) * zy);
      scaled[i] = (zx * zx + zy * zy) / 2;
    }
    const double half = 6 * s * std::sqrt(t);
    const Grid2D g{mx - half, mx + half, my - half, my + half, 400, 400};
    const double nll = test_nll(GaussianEnergy(s, mx, my), x.data(), n, g, t);
    const double entropy = std::log(2 * kPi * kE * s * s * t);
    EXPECT_NEAR(nll, entropy, 4 * StandardError(scaled) + 1e-6) << "T = " << t;
  }
}

TEST(MixtureEntropy, ClosedForms) {
  EXPECT_NEAR(mixture_entropy_2d(4, 0.1), -0.381, 1e-3);  // spec/testing.md, tutorial mixture
  EXPECT_NEAR(mixture_entropy_2d(1, 1.0), std::log(2 * kPi * kE), 1e-12);
  EXPECT_NEAR(mixture_entropy_2d(3, 0.5), std::log(3.0) + std::log(kPi * kE / 2), 1e-12);
  ExpectInvalid([] { mixture_entropy_2d(0, 0.1); }, "components must be >= 1, got 0");
  ExpectInvalid([] { mixture_entropy_2d(4, 0.0); }, "std must be finite and > 0, got 0");
  ExpectInvalid([] { mixture_entropy_2d(4, -0.1); }, "std must be finite and > 0, got -0.1");
}

// The tutorial mixture scored by its exact energy -log p on the default 100 x 100 grid over
// [-2.5, 2.5]^2: dx = 0.0505 = std / 2, so the Riemann sum errs by ~exp(-2 pi^2 4) = 1e-34; the
// modes lie >= 10 std inside the box; modes 21 std apart make the well-separated entropy exact
// to ~exp(-50). So NLL - H is the sampling error of mean(-log p): tolerance 4 SE (SE ~ 0.007).
TEST(TestNll, TutorialMixtureApproachesEntropy) {
  const std::vector<float> centres = TutorialCentres();
  const double var = kModeStd * kModeStd;
  const auto exact_energy = [&](double x, double y) {
    double terms[kModes], max_term = -1e300;
    for (int m = 0; m < kModes; ++m) {
      const double dx = x - centres[2 * m], dy = y - centres[2 * m + 1];
      terms[m] = -(dx * dx + dy * dy) / (2 * var);
      max_term = std::max(max_term, terms[m]);
    }
    double sum = 0;
    for (double v : terms) sum += std::exp(v - max_term);
    return -(max_term + std::log(sum / kModes / (2 * kPi * var)));
  };
  const BatchEnergyFn energy = [&](const float* xy, int64_t n, float* e) {
    for (int64_t i = 0; i < n; ++i)
      e[i] = static_cast<float>(exact_energy(xy[2 * i], xy[2 * i + 1]));
  };
  const int64_t n = 20000;
  const std::vector<float> x = SampleMixture(centres, kModes, kModeStd, n, 21);
  std::vector<double> e(n);
  for (int64_t i = 0; i < n; ++i) e[i] = exact_energy(x[2 * i], x[2 * i + 1]);
  const double nll = test_nll(energy, x.data(), n, Grid2D{}, 1.0);
  EXPECT_NEAR(nll, mixture_entropy_2d(kModes, kModeStd), 4 * StandardError(e));
}

TEST(TestNll, RejectsBadInput) {
  const Grid2D g{-1.0, 1.0, -1.0, 1.0, 8, 8};
  const BatchEnergyFn energy = GaussianEnergy(1.0, 0.0, 0.0);
  std::vector<float> x = {0.1f, 0.2f, -0.3f, 0.4f};
  ExpectInvalid([&] { test_nll(energy, x.data(), 0, g, 1.0); }, "n must be >= 1, got 0");
  ExpectInvalid([&] { test_nll(energy, nullptr, 2, g, 1.0); }, "x_test is null");
  ExpectInvalid([&] { test_nll(BatchEnergyFn(), x.data(), 2, g, 1.0); },
                "energy function is empty");
  ExpectInvalid([&] { test_nll(energy, x.data(), 2, g, 0.0); }, "temperature");
  ExpectInvalid([&] { test_nll(energy, x.data(), 2, {-1.0, 1.0, -1.0, 1.0, 8, 1}, 1.0); }, "ny");
  x[3] = kNaN;
  ExpectInvalid([&] { test_nll(energy, x.data(), 2, g, 1.0); },
                "x_test row 1 column 1 is not finite");
  x[3] = 0.4f;
  // +Inf at a test point means zero model density there: an error, not a silent +inf.
  const BatchEnergyFn inf_at_origin_side = [](const float* xy, int64_t n, float* e) {
    for (int64_t i = 0; i < n; ++i) e[i] = xy[2 * i] < 0 ? kInf : 1.0f;
  };
  ExpectInvalid([&] { test_nll(inf_at_origin_side, x.data(), 2, g, 1.0); },
                "energy of test point 1 is inf");
}

// Independent reference: full pooled distance matrix, median by full sort, full kernel matrix
// with the diagonals subtracted.
double ReferenceMmd2(const std::vector<float>& a, int64_t na, const std::vector<float>& b,
                     int64_t nb, int dim) {
  const int64_t n = na + nb;
  std::vector<double> z(n * dim);
  for (int64_t i = 0; i < na * dim; ++i) z[i] = a[i];
  for (int64_t i = 0; i < nb * dim; ++i) z[na * dim + i] = b[i];
  std::vector<double> d(n * n);
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t q = 0; q < n; ++q) {
      double s = 0;
      for (int c = 0; c < dim; ++c)
        s += (z[p * dim + c] - z[q * dim + c]) * (z[p * dim + c] - z[q * dim + c]);
      d[p * n + q] = s;
    }
  }
  std::vector<double> upper;
  for (int64_t q = 1; q < n; ++q) {
    for (int64_t p = 0; p < q; ++p) upper.push_back(d[p * n + q]);
  }
  std::sort(upper.begin(), upper.end());
  const size_t m = upper.size();
  const double median = m % 2 ? upper[m / 2] : 0.5 * (upper[m / 2 - 1] + upper[m / 2]);
  double saa = 0, sbb = 0, sab = 0;
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t q = 0; q < n; ++q) {
      const double k = std::exp(-d[p * n + q] / median);  // 2 h^2 = median
      if (p < na && q < na) saa += k;
      if (p >= na && q >= na) sbb += k;
      if (p < na && q >= na) sab += k;
    }
  }
  saa -= na;  // k(x, x) = 1 on the diagonal
  sbb -= nb;
  return saa / (na * (na - 1.0)) + sbb / (nb * (nb - 1.0)) - 2 * sab / (na * double(nb));
}

// Against the reference to 1e-9 relative (atol 1e-12: the terms are O(1), so double rounding
// is ~1e-15). Sizes cover an odd (18 points: 153 pairs) and an even pair count (12: 66; the two
// middle values differ for random data), dim 1, 2 and 3.
TEST(Mmd2Rbf, MatchesIndependentReference) {
  struct Case {
    int64_t na, nb;
    int dim;
  };
  uint64_t sub = 0;
  for (const Case c : {Case{7, 11, 3}, Case{6, 6, 2}, Case{2, 3, 1}, Case{40, 25, 2}}) {
    RandomStream rng(5, StreamTag::kMetrics, sub++);
    std::vector<float> a(c.na * c.dim), b(c.nb * c.dim);
    for (float& v : a) v = rng.normal();
    for (float& v : b) v = 0.5f + 1.3f * rng.normal();
    const double got = mmd2_rbf(a.data(), c.na, b.data(), c.nb, c.dim);
    const double want = ReferenceMmd2(a, c.na, b, c.nb, c.dim);
    EXPECT_NEAR(got, want, 1e-12 + 1e-9 * std::abs(want)) << c.na << " " << c.nb << " " << c.dim;
    EXPECT_NEAR(mmd2_rbf(b.data(), c.nb, a.data(), c.na, c.dim), got, 1e-12);  // symmetric
  }
}

// R = 40 replicate pairs of n = 200 points each. Same law (N(0, I) twice): the unbiased
// estimator has mean 0, so the replicate mean lies within 4 SE (sd / sqrt(R)) of 0; the biased
// V-statistic would sit ~(2 / n)(1 - E k) ~ 5e-3 high, about 10 of those SE. Shifted by 1 std in
// x: every replicate lies far above the null spread (mean of null + 8 sd of one null value).
TEST(Mmd2Rbf, SameLawNearZeroShiftedLawClearlyPositive) {
  const int reps = 40;
  const int64_t n = 200;
  std::vector<double> same(reps), shifted(reps);
  for (int r = 0; r < reps; ++r) {
    RandomStream rng(9, StreamTag::kMetrics, r);
    std::vector<float> a(2 * n), b(2 * n), c(2 * n);
    for (float& v : a) v = rng.normal();
    for (float& v : b) v = rng.normal();
    for (int64_t i = 0; i < n; ++i) {
      c[2 * i] = 1.0f + rng.normal();
      c[2 * i + 1] = rng.normal();
    }
    same[r] = mmd2_rbf(a.data(), n, b.data(), n, 2);
    shifted[r] = mmd2_rbf(a.data(), n, c.data(), n, 2);
  }
  double mean = 0;
  for (double v : same) mean += v / reps;
  const double se = StandardError(same);
  const double sd = se * std::sqrt(static_cast<double>(reps));
  EXPECT_LE(std::abs(mean), 4 * se) << "sd of one null value " << sd;
  for (int r = 0; r < reps; ++r) EXPECT_GT(shifted[r], mean + 8 * sd) << "replicate " << r;
}

TEST(Mmd2Rbf, RejectsBadInput) {
  std::vector<float> a = {0.1f, 0.2f, 0.3f, -0.4f, 0.5f, 0.6f};
  std::vector<float> b = {1.1f, 0.2f, -0.3f, 0.4f, 0.7f, 0.9f};
  ExpectInvalid([&] { mmd2_rbf(a.data(), 1, b.data(), 3, 2); }, "na must be >= 2, got 1");
  ExpectInvalid([&] { mmd2_rbf(a.data(), 3, b.data(), 1, 2); }, "nb must be >= 2, got 1");
  ExpectInvalid([&] { mmd2_rbf(a.data(), 3, b.data(), 3, 0); }, "dim must be >= 1, got 0");
  ExpectInvalid([&] { mmd2_rbf(nullptr, 3, b.data(), 3, 2); }, "a is null");
  ExpectInvalid([&] { mmd2_rbf(a.data(), 3, nullptr, 3, 2); }, "b is null");
  b[2] = kInf;
  ExpectInvalid([&] { mmd2_rbf(a.data(), 3, b.data(), 3, 2); }, "b row 1 column 0 is not finite");
  const std::vector<float> same(8, 0.5f);
  ExpectInvalid([&] { mmd2_rbf(same.data(), 2, same.data(), 2, 2); },
                "median pairwise squared distance is 0");
}

// Hand-counted: centres (0, 0) and (1, 0), std 0.5, radius 3 std = 1.5 (the discs overlap, so
// each sample goes to its nearest centre only).
TEST(ModeReport, HandCountedPoints) {
  const std::vector<float> centres = {0.0f, 0.0f, 1.0f, 0.0f};
  const std::vector<float> x = {0.2f, 0.0f, 0.9f, 0.1f, 5.0f, 5.0f, -1.4f, 0.0f, 0.0f, -1.6f};
  const ModeReport r = mode_report(x.data(), 5, centres.data(), 2, 0.5);
  EXPECT_EQ(r.total, 2);
  EXPECT_EQ(r.counts, (std::vector<int64_t>{2, 1}));
  EXPECT_DOUBLE_EQ(r.share_near_mode, 3.0 / 5);
  ASSERT_EQ(r.weights.size(), 2u);
  EXPECT_DOUBLE_EQ(r.weights[0], 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.weights[1], 1.0 / 3);
  EXPECT_EQ(r.min_count, 1);  // max(1, ceil(5 / 20))
  EXPECT_EQ(r.covered, 2);
  const ModeReport strict = mode_report(x.data(), 5, centres.data(), 2, 0.5, 3.0, 2);
  EXPECT_EQ(strict.covered, 1);
  EXPECT_EQ(strict.min_count, 2);
  const ModeReport wide = mode_report(x.data(), 5, centres.data(), 2, 0.5, 3.3);  // 1.65
  EXPECT_EQ(wide.counts, (std::vector<int64_t>{3, 1}));
}

// Samples of modes 0..2 of the tutorial mixture. In 2-D |x - c|^2 / std^2 ~ chi^2_2, so the
// share within 3 std is 1 - exp(-9 / 2) = 0.98889; the modes are 21 std apart, so no sample is
// nearer another centre. Share within 4 binomial SE; weights within 4 SE of 1/3 (multinomial,
// SE = sqrt((1/3)(2/3) / near)); mode 3 is empty and not covered.
TEST(ModeReport, ThreeOfFourModes) {
  const std::vector<float> centres = TutorialCentres();
  const int64_t n = 6000;
  const std::vector<float> x = SampleMixture(centres, 3, kModeStd, n, 31);
  const ModeReport r = mode_report(x.data(), n, centres.data(), kModes, kModeStd);
  EXPECT_EQ(r.total, 4);
  EXPECT_EQ(r.covered, 3);
  EXPECT_EQ(r.min_count, 150);  // ceil(6000 / 40)
  EXPECT_EQ(r.counts[3], 0);
  const double p = 1 - std::exp(-4.5);
  EXPECT_NEAR(r.share_near_mode, p, 4 * std::sqrt(p * (1 - p) / n));
  const double near = r.share_near_mode * n;
  for (int m = 0; m < 3; ++m) {
    EXPECT_NEAR(r.weights[m], 1.0 / 3, 4 * std::sqrt(2.0 / 9 / near)) << "mode " << m;
  }
  EXPECT_EQ(r.weights[3], 0.0);
}

// Uniform samples on [-10, 10]^2: the share near a mode is the area of the four disjoint discs
// of radius 0.3 over the box, 4 pi 0.09 / 400 = 2.8e-3, within 4 binomial SE (3.8e-4); about
// 14 samples per mode stay below the default min_count of 500, so nothing is covered.
TEST(ModeReport, UniformBoxHasLowShare) {
  const std::vector<float> centres = TutorialCentres();
  const int64_t n = 20000;
  RandomStream rng(41, StreamTag::kMetrics, 0);
  std::vector<float> x(2 * n);
  for (float& v : x) v = -10.0f + 20.0f * rng.uniform();
  const ModeReport r = mode_report(x.data(), n, centres.data(), kModes, kModeStd);
  const double p = 4 * kPi * 0.09 / 400;
  EXPECT_NEAR(r.share_near_mode, p, 4 * std::sqrt(p * (1 - p) / n));
  EXPECT_EQ(r.covered, 0);
}

TEST(ModeReport, RejectsBadInput) {
  std::vector<float> c = {0.0f, 0.0f, 1.0f, 0.0f};
  std::vector<float> x = {0.2f, 0.0f, 0.9f, 0.1f};
  ExpectInvalid([&] { mode_report(x.data(), 0, c.data(), 2, 0.5); }, "n must be >= 1, got 0");
  ExpectInvalid([&] { mode_report(x.data(), 2, c.data(), 0, 0.5); }, "k must be >= 1, got 0");
  ExpectInvalid([&] { mode_report(nullptr, 2, c.data(), 2, 0.5); }, "samples is null");
  ExpectInvalid([&] { mode_report(x.data(), 2, nullptr, 2, 0.5); }, "centres is null");
  ExpectInvalid([&] { mode_report(x.data(), 2, c.data(), 2, 0.0); }, "std must be finite and > 0");
  ExpectInvalid([&] { mode_report(x.data(), 2, c.data(), 2, 0.5, -3.0); },
                "radius_stds must be finite and > 0, got -3");
  ExpectInvalid([&] { mode_report(x.data(), 2, c.data(), 2, 0.5, 3.0, -1); },
                "min_count must be >= 0, got -1");
  c[3] = kNaN;
  ExpectInvalid([&] { mode_report(x.data(), 2, c.data(), 2, 0.5); },
                "centres row 1 column 1 is not finite");
  c[3] = 0.0f;
  x[0] = -kInf;
  ExpectInvalid([&] { mode_report(x.data(), 2, c.data(), 2, 0.5); },
                "samples row 0 column 0 is not finite");
}

}  // namespace
}  // namespace cuebm
