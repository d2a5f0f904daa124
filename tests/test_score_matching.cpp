// Tests of the score-matching losses (cuebm/training/score_matching.hpp) on the CPU backend:
// values and parameter gradients against the double oracle of tests/reference
// (score_matching_oracle: hyper-dual MLP, losses from g and H, central finite differences in the
// parameters), for every activation and batches 1, 31 and 257; TorchEBM's options against
// behaviour.md's formulas; exact score matching recovering a Gaussian's mean and covariance;
// denoising score matching recovering covariance + sigma^2 I with the correct sign and not with
// TorchEBM's; sliced score matching's two channel layouts agreeing; the random draws;
// thread-count independence; bad input.
//
// Tolerances (float32 library vs double oracle).
//  - Loss: |got - ref| <= 1e-5 S, S = the oracle's mean over rows of the magnitudes of the
//    loss's terms (0.5 |g|^2, |tr H|, ...). The row math is a few float dot products of <= 64
//    terms through <= 3 layers: ~1e-6 relative to S; margin about 10.
//  - Parameter gradient: |got_i - ref_i| <= 2e-4 max_j |ref_j|. Float rounding: the gradient is
//    a batch mean of per-row products of adjoints and activations, each with a relative error
//    of ~1e-6 of the row's terms, which are at most a few times max|ref| for these inputs
//    (batch means cancel little at O(1) inputs); the finite differences (h = 1e-4 max(1,|theta|),
//    double) err by h^2 L''' ~ 1e-8 relative and 1e-16 L / h ~ 1e-12 L. A wrong term in the
//    reverse pass (a sign, a factor 2, act'' for act''') moves entries by O(max|ref|).
//  - TorchEBM's approx: its trace term divides a float difference of gradients at points 1e-5
//    apart by 1e-10 d; float rounding of g (relative ~1e-7 of |g|) becomes ~1e-2 |g| per row.
//    That is the formula's own float32 cancellation (PyTorch's float32 has it too), so the
//    bound is 1e-6 of the oracle's magnitude sum, whose trace part is (|g(x')|+|g(x)|)|delta|
//    / (eps^2 d), and the gradient's 0.2 max|ref| (measured errors reach 5.6% of max|ref|).
//  Measured margins: every other loss passes at a tenth of its bounds except denoising with
//  sigma = 0.01 (see LossCases).
#include "cuebm/training/score_matching.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"
#include "invalid_argument_support.hpp"
#include "kernels/models/activation.cuh"
#include "kernels/runtime/philox.cuh"
#include "kernels/training/score_matching.cuh"
#include "reference/reference.hpp"
#include "reference/score_matching_oracle.hpp"
#include "score_matching_support.hpp"

namespace cuebm {
namespace {

using testing_support::ExpectInvalid;
using testing_support::kActivations;
using testing_support::RandomNormal;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

ref::MlpModel Oracle(const Mlp& mlp) {
  return ref::MlpModel(mlp.layer_widths(), mlp.spec().activation, mlp.parameters());
}

// The draws the loss makes, rebuilt from the documented keying (score_matching.cuh) and handed
// to the oracle as inputs.
ref::ScoreLossCase OracleCase(const ScoreLossOptions& o, const std::vector<float>& x, int64_t n,
                              int d, uint64_t iteration) {
  ref::ScoreLossCase c;
  c.lambda = o.regularization_strength;
  const uint64_t key = detail::score_matching_key(o.seed);
  if (o.kind == ScoreLossKind::kScoreMatching) {
    if (o.hessian_method == HessianMethod::kExact) {
      c.loss = ref::OracleLoss::kExact;
      return c;
    }
    c.loss = ref::OracleLoss::kTorchEbmApprox;
    c.approx_epsilon = kTorchEbmApproxEpsilon;
    for (int64_t r = 0; r < n; ++r)
      for (int k = 0; k < d; ++k) {
        const float xv = x[r * d + k];
        const float shifted =
            xv + kTorchEbmApproxEpsilon * detail::sm_normal(key, r, iteration, d, k);
        c.draws.push_back(static_cast<double>(shifted) - xv);  // the shift actually made
      }
    return c;
  }
  if (o.kind == ScoreLossKind::kSlicedScoreMatching) {
    c.loss = ref::OracleLoss::kSliced;
    const int p = o.n_projections;
    c.n_projections = p;
    for (int64_t r = 0; r < n; ++r)
      for (int j = 0; j < p; ++j) {
        std::vector<double> v(d);
        double sq = 0;
        for (int k = 0; k < d; ++k) {
          const float z = detail::sm_normal(key, r, iteration, p * d, j * d + k);
          v[k] = o.projection_type == ProjectionType::kRademacher ? (z >= 0 ? 1.0 : -1.0) : z;
          sq += v[k] * v[k];
        }
        for (int k = 0; k < d; ++k)
          c.draws.push_back(o.projection_type == ProjectionType::kSphere ? v[k] / std::sqrt(sq)
                                                                         : v[k]);
      }
    return c;
  }
  c.loss = ref::OracleLoss::kDenoising;
  c.noise_scale = o.noise_scale;
  c.target_sign = o.denoising_sign == DenoisingSign::kCorrect ? -1.0 : 1.0;
  for (int64_t r = 0; r < n; ++r)
    for (int k = 0; k < d; ++k)
      c.draws.push_back(o.noise_scale * detail::sm_normal(key, r, iteration, d, k));
  return c;
}

struct LossCase {
  const char* name;
  ScoreLossOptions options;
  double grad_rtol = 2e-4;  // of max|ref| (header)
};

// The shared variants but TorchEBM's approx, whose float32 cancellation needs other bounds
// (TorchEbmApproxMatchesTheFormula).
std::vector<LossCase> LossCases() {
  std::vector<LossCase> v;
  for (const testing_support::ScoreLossVariant& s : testing_support::ScoreLossVariants()) {
    if (s.options.hessian_method == HessianMethod::kTorchEbmApprox) continue;
    LossCase c{s.name, s.options};
    // Denoising with sigma 0.01: rows' terms r dg/dtheta with |r| ~ |n| / sigma^2 ~ 170 are ~100
    // times their batch mean: float rounding shows at ~1e-4 of max|ref| (measured 8.5e-5), so
    // 1e-3.
    if (s.options.kind == ScoreLossKind::kDenoisingScoreMatching && s.options.noise_scale <= 0.01f)
      c.grad_rtol = 1e-3;
    v.push_back(c);
  }
  return v;
}

::testing::AssertionResult GradientClose(const std::vector<float>& got,
                                         const std::vector<std::size_t>& which,
                                         const std::vector<double>& ref, double rtol_inf) {
  double scale = 0;
  for (double r : ref) scale = std::max(scale, std::abs(r));
  const double tol = rtol_inf * scale + 1e-12;
  std::size_t bad = 0, first = 0;
  double worst = 0;
  for (std::size_t i = 0; i < which.size(); ++i) {
    const double err = std::abs(static_cast<double>(got[which[i]]) - ref[i]);
    if (!(err <= tol) && bad++ == 0) first = i;
    if (std::isfinite(err)) worst = std::max(worst, err / tol);
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << which.size() << " entries out of tolerance " << tol
         << "; first: parameter " << which[first] << " got " << got[which[first]] << ", ref "
         << ref[first] << "; worst err/tol " << worst;
}

// Finite-difference step. ReLU and LeakyReLU make g, and so the losses, jump where a unit's
// pre-activation crosses 0 at some row; a step of 1e-7 (max(1, |theta|)) moves those points by
// ~1e-7, so a stencil straddles one with probability ~1e-7 per row and unit, where 1e-4 did in
// a batch of 257. Rounding then costs 1e-16 L / 1e-7 = 1e-9 L, still far below the bounds.
double FdStep(Activation a) {
  return a == Activation::kReLU || a == Activation::kLeakyReLU ? 1e-7 : 1e-4;
}

// Every parameter when all is set, else every third one plus the output layer.
std::vector<std::size_t> Checked(const Mlp& mlp, bool all) {
  std::vector<std::size_t> w;
  const std::size_t out = mlp.weight_offset(mlp.num_linear_layers() - 1);
  for (std::size_t i = 0; i < mlp.num_parameters(); ++i)
    if (all || i % 3 == 0 || i >= out) w.push_back(i);
  return w;
}

// Loss and gradient of `mlp` on n fresh rows against the oracle.
void CheckAgainstOracle(const Mlp& mlp, const LossCase& lc, int64_t n, uint64_t seed,
                        double value_rtol, double grad_rtol, bool all_params) {
  SCOPED_TRACE(std::string(lc.name) + ", " + mlp.name() + ", batch " + std::to_string(n));
  const int d = mlp.dim();
  const uint64_t iteration = 7;
  const std::vector<float> x = RandomNormal(static_cast<std::size_t>(n) * d, 1.0, seed);
  ScoreLoss loss(mlp.spec(), lc.options, n);
  std::vector<float> grad(mlp.num_parameters(), kNaN);
  const double got = loss.evaluate(mlp, x.data(), n, iteration, grad.data());
  // Without the gradient: the same value.
  EXPECT_EQ(loss.evaluate(mlp, x.data(), n, iteration), got);

  const ref::MlpModel model = Oracle(mlp);
  const ref::ScoreLossCase c = OracleCase(lc.options, x, n, d, iteration);
  const std::vector<double> xd = ref::to_double(x);
  double scale = 0;
  const double want = ref::score_loss(model, xd.data(), n, c, &scale);
  EXPECT_NEAR(got, want, value_rtol * scale) << "loss";
  const std::vector<std::size_t> which = Checked(mlp, all_params);
  const std::vector<double> fd =
      ref::score_loss_gradient_fd(model, xd.data(), n, c, FdStep(mlp.spec().activation), which);
  EXPECT_TRUE(GradientClose(grad, which, fd, grad_rtol)) << "parameter gradient";
  EXPECT_EQ(grad[mlp.bias_offset(mlp.num_linear_layers() - 1)], 0.0f) << "output bias";
}

// ---------------------------------------------------------------------------------------------
// Building blocks

TEST(ScoreMatchingActivation, DerivativesMatchFiniteDifferences) {
  // Library float jet and the oracle's double act'' against central differences (h = 1e-4,
  // error ~1e-8) of the independent ref::activate_derivative and of the oracle's act''; float
  // evaluation errs by ~1e-6 of the terms: bound 2e-5 (1 + |ref|).
  for (Activation a : kActivations) {
    for (double z = -7.3; z <= 7.3; z += 0.37) {
      SCOPED_TRACE(activation_name(a) + " at " + std::to_string(z));
      const double h = 1e-4;
      const double d2_fd =
          (ref::activate_derivative(a, z + h) - ref::activate_derivative(a, z - h)) / (2 * h);
      const double d3_fd =
          (ref::activate_second_derivative(a, z + h) - ref::activate_second_derivative(a, z - h)) /
          (2 * h);
      EXPECT_NEAR(ref::activate_second_derivative(a, z), d2_fd, 1e-6 * (1 + std::abs(d2_fd)));
      const detail::ActivationJet jet = detail::dispatch_activation(
          a, [&]<Activation A>() { return detail::activation_jet<A>(static_cast<float>(z)); });
      EXPECT_NEAR(jet.d1, ref::activate_derivative(a, z), 2e-5 * (1 + std::abs(jet.d1)));
      EXPECT_NEAR(jet.d2, d2_fd, 2e-5 * (1 + std::abs(d2_fd)));
      EXPECT_NEAR(jet.d3, d3_fd, 2e-5 * (1 + std::abs(d3_fd)));
    }
  }
}

TEST(ScoreMatchingOracle, HyperDualDerivativesMatchBackPropAndFiniteDifferences) {
  // g against ref::mlp_input_gradient (back-propagation, 1e-12); H against central differences
  // of it (h = 1e-5: error ~1e-9).
  for (Activation a : {Activation::kSiLU, Activation::kTanh, Activation::kGELU}) {
    const Mlp mlp(MlpSpec{3, {7, 5}, a}, 5);
    const ref::MlpModel m = Oracle(mlp);
    const std::vector<double> x = ref::to_double(RandomNormal(3, 1.0, 9));
    const ref::InputDerivatives id = ref::mlp_input_derivatives(m, x.data());
    std::vector<double> g(3);
    EXPECT_NEAR(id.energy, ref::mlp_input_gradient(m, x.data(), g.data()), 1e-12);
    for (int i = 0; i < 3; ++i) {
      EXPECT_NEAR(id.grad[i], g[i], 1e-12);
      std::vector<double> xp = x, xm = x, gp(3), gm(3);
      xp[i] += 1e-5;
      xm[i] -= 1e-5;
      ref::mlp_input_gradient(m, xp.data(), gp.data());
      ref::mlp_input_gradient(m, xm.data(), gm.data());
      for (int j = 0; j < 3; ++j)
        EXPECT_NEAR(id.hessian[j * 3 + i], (gp[j] - gm[j]) / 2e-5, 1e-7) << i << "," << j;
    }
  }
}

// One row's sliced loss and parameter gradient through score_matching.cuh with the channels ch.
struct RowLoss {
  float loss;
  std::vector<float> grad;
};
template <Activation A>
RowLoss SlicedRowLoss(const Mlp& mlp, const detail::SmRowParams& p, detail::SmChannelCounts ch,
                      const float* x, uint64_t row) {
  const std::vector<int>& widths = mlp.layer_widths();
  const int n_lin = mlp.num_linear_layers();
  const std::span<const float> params = mlp.parameters();
  std::vector<float> wt(params.size());
  detail::sm_transpose_weights(widths.data(), n_lin, params.data(), wt.data());
  const detail::SmNet net{params.data(), wt.data(), widths.data(), n_lin};
  const detail::SmLayout L = detail::SmLayout::make(widths.data(), n_lin, ch);
  std::vector<float> scratch(static_cast<std::size_t>(L.total), kNaN);
  RowLoss out{0.0f, std::vector<float>(params.size(), 0.0f)};
  const detail::SmBuf<detail::SmDense> s{scratch.data(), {}}, g{out.grad.data(), {}};
  out.loss = detail::sm_row_loss<A>(net, L, p, x, row, s, 1.0f, g);
  return out;
}

TEST(ScoreMatchingSliced, UnitDirectionsEqualOneChannelPerProjection) {
  // Sliced score matching with more projections than input dimensions (D <= kSmMaxDenseQ)
  // carries the D unit directions and M = sum_j v_j v_j^T; with one channel per projection (and
  // one along g for lambda > 0) it must give the same loss and gradient on the same draws. Both
  // are float sums of the same terms in other orders (<= 8 projections, <= 40-wide layers):
  // ~1e-6 relative; bounds 1e-5 of max(1, |loss|) and of max|gradient| (+1e-7). A wrong M
  // entry, factor 2 or lambda term moves them by O(1) of their size.
  for (Activation a : {Activation::kSiLU, Activation::kGELU, Activation::kReLU}) {
    for (int d = 1; d <= detail::kSmMaxDenseQ; ++d) {
      for (float lambda : {0.0f, 0.2f}) {
        const Mlp mlp(MlpSpec{d, {40, 24}, a}, 60 + d);
        ScoreLossOptions o;
        o.kind = ScoreLossKind::kSlicedScoreMatching;
        o.seed = 5;
        o.n_projections = d + 1 + (d % 2) * 3;  // 5, 3, 7, 5
        o.projection_type = d == 3 ? ProjectionType::kGaussian : ProjectionType::kRademacher;
        o.regularization_strength = lambda;
        const detail::SmRowParams p = detail::sm_row_params(o, 4);
        SCOPED_TRACE(activation_name(a) + ", d " + std::to_string(d) + ", lambda " +
                     std::to_string(lambda));
        const bool curved = detail::dispatch_activation(
            a, []<Activation A>() { return detail::activation_has_curvature<A>(); });
        const detail::SmChannelCounts basis = detail::sm_channel_counts(p, d, curved);
        ASSERT_TRUE(basis.dense);
        ASSERT_EQ(basis.T, d);
        const int P = o.n_projections;
        const detail::SmChannelCounts per_projection{P + (lambda > 0.0f ? 1 : 0), curved ? P : 0,
                                                     false};
        const std::vector<float> x = RandomNormal(static_cast<std::size_t>(3 * d), 1.0, 70 + d);
        for (uint64_t row = 0; row < 3; ++row) {
          const float* xr = x.data() + row * d;
          const auto [want, got] = detail::dispatch_activation(a, [&]<Activation A>() {
            return std::make_pair(SlicedRowLoss<A>(mlp, p, per_projection, xr, row),
                                  SlicedRowLoss<A>(mlp, p, basis, xr, row));
          });
          EXPECT_NEAR(got.loss, want.loss, 1e-5f * std::max(1.0f, std::abs(want.loss)));
          float gmax = 0.0f;
          for (float v : want.grad) gmax = std::max(gmax, std::abs(v));
          EXPECT_GT(gmax, 0.0f);
          for (std::size_t i = 0; i < want.grad.size(); ++i)
            ASSERT_NEAR(got.grad[i], want.grad[i], 1e-5f * gmax + 1e-7f) << "parameter " << i;
        }
      }
    }
  }
}

TEST(ScoreMatchingDraws, FollowTheDocumentedPhiloxKeying) {
  const uint64_t key = detail::score_matching_key(42);
  EXPECT_NE(key, detail::score_matching_key(43));
  int negative = 0;
  for (uint64_t row : {0ull, 1ull, 1000ull})
    for (uint64_t it : {0ull, 3ull})
      for (int count : {2, 5, 10})
        for (int j = 0; j < count; ++j) {
          const uint64_t words = 4 * ((count + 3) / 4);
          const float z = detail::sm_normal(key, row, it, count, j);
          EXPECT_EQ(z, detail::philox_normal(key, row, it * words + j));
          const float s = detail::sm_rademacher(key, row, it, count, j);
          EXPECT_EQ(s, z >= 0 ? 1.0f : -1.0f) << "row " << row << " j " << j;
          negative += s < 0;
        }
  EXPECT_GT(negative, 20);  // both signs occur (of 3 * 2 * 17 = 102)
}

TEST(ScoreMatchingDraws, RademacherSignIsExactOverManyDraws) {
  const uint64_t key = detail::score_matching_key(7);
  int64_t plus = 0;
  const int n = 200000;
  for (int j = 0; j < n; ++j) {
    const float z = detail::philox_normal(key, 3, j);
    const float s = detail::sm_rademacher(key, 3, 0, n, j);
    ASSERT_EQ(s, z >= 0 ? 1.0f : -1.0f) << j;
    plus += s > 0;
  }
  // Fair coin: sd sqrt(n)/2 = 224; 4 sd.
  EXPECT_NEAR(static_cast<double>(plus), n / 2.0, 4 * std::sqrt(n) / 2);
}

// ---------------------------------------------------------------------------------------------
// Against the oracle

class ScoreMatchingOracleTest : public ::testing::TestWithParam<Activation> {};

TEST_P(ScoreMatchingOracleTest, EveryLossMatchesTheOracle) {
  const Activation act = GetParam();
  const Mlp mlp(MlpSpec{3, {7, 5}, act}, 21);
  uint64_t seed = 100;
  for (const LossCase& lc : LossCases())
    for (int64_t n : {1, 31, 257})
      CheckAgainstOracle(mlp, lc, n, ++seed, 1e-5, lc.grad_rtol, n < 100);
}

TEST_P(ScoreMatchingOracleTest, TorchEbmApproxMatchesTheFormula) {
  const Activation act = GetParam();
  const Mlp mlp(MlpSpec{3, {7, 5}, act}, 22);
  ScoreLossOptions o;
  o.hessian_method = HessianMethod::kTorchEbmApprox;
  o.seed = 5;
  for (float lambda : {0.0f, 0.25f}) {
    o.regularization_strength = lambda;
    for (int64_t n : {1, 31, 257})
      CheckAgainstOracle(mlp, {"sm torchebm_approx", o}, n, 300 + n, 1e-6, 0.2, n < 100);
  }
}

INSTANTIATE_TEST_SUITE_P(Activations, ScoreMatchingOracleTest, ::testing::ValuesIn(kActivations),
                         [](const auto& info) { return activation_name(info.param); });

TEST(ScoreMatchingLoss, TutorialShapesMatchTheOracle) {
  // The tutorial's 2-64-64-1 and the 2-128-128-1 SiLU: wider sums, same bounds.
  for (const std::vector<int>& hidden : {std::vector<int>{64, 64}, std::vector<int>{128, 128}}) {
    const Mlp mlp(MlpSpec{2, hidden, Activation::kSiLU}, 31);
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < mlp.num_parameters(); i += mlp.num_parameters() / 40)
      which.push_back(i);
    for (const LossCase& lc : LossCases()) {
      SCOPED_TRACE(std::string(lc.name) + ", " + mlp.name());
      const int64_t n = 9;
      const std::vector<float> x = RandomNormal(n * 2, 1.0, 77);
      ScoreLoss loss(mlp.spec(), lc.options);
      std::vector<float> grad(mlp.num_parameters(), kNaN);
      const double got = loss.evaluate(mlp, x.data(), n, 2, grad.data());
      const ref::MlpModel model = Oracle(mlp);
      const ref::ScoreLossCase c = OracleCase(lc.options, x, n, 2, 2);
      const std::vector<double> xd = ref::to_double(x);
      double scale = 0;
      const double want = ref::score_loss(model, xd.data(), n, c, &scale);
      EXPECT_NEAR(got, want, 1e-5 * scale);
      const std::vector<double> fd =
          ref::score_loss_gradient_fd(model, xd.data(), n, c, 1e-4, which);
      EXPECT_TRUE(GradientClose(grad, which, fd, lc.grad_rtol));
    }
  }
}

TEST(ScoreMatchingLoss, ReluExactLossIsHalfSquaredGradient) {
  // ReLU's act'' is 0 a.e., so exact score matching is (0.5 + lambda) mean |g|^2 (g from the
  // library's own MLP gradient; float, 1e-5 relative).
  const Mlp mlp(MlpSpec{2, {16, 16}, Activation::kReLU}, 3);
  const int64_t n = 50;
  const std::vector<float> x = RandomNormal(n * 2, 1.0, 4);
  std::vector<float> g(n * 2);
  mlp.gradient(x.data(), n, g.data());
  double sq = 0;
  for (float v : g) sq += static_cast<double>(v) * v;
  ScoreLossOptions o;
  o.regularization_strength = 0.5f;
  ScoreLoss loss(mlp.spec(), o);
  EXPECT_NEAR(loss.evaluate(mlp, x.data(), n, 0), 1.0 * sq / n, 1e-5 * sq / n);
}

TEST(ScoreMatchingLoss, ResultsDoNotDependOnTheThreadCount) {
  const int threads = num_threads();
  for (const LossCase& lc : LossCases()) {
    const Mlp mlp(MlpSpec{2, {32, 32}, Activation::kSiLU}, 8);
    const int64_t n = 257;
    const std::vector<float> x = RandomNormal(n * 2, 1.0, 6);
    ScoreLoss loss(mlp.spec(), lc.options, n);
    std::vector<float> g1(mlp.num_parameters()), g2(mlp.num_parameters());
    set_num_threads(1);
    const double v1 = loss.evaluate(mlp, x.data(), n, 4, g1.data());
    set_num_threads(3);
    const double v2 = loss.evaluate(mlp, x.data(), n, 4, g2.data());
    EXPECT_EQ(v1, v2) << lc.name;
    EXPECT_EQ(std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)), 0) << lc.name;
    // Another iteration draws other noise.
    if (lc.options.kind != ScoreLossKind::kScoreMatching) {
      EXPECT_NE(loss.evaluate(mlp, x.data(), n, 5), v1) << lc.name;
    }
  }
  set_num_threads(threads);
}

// ---------------------------------------------------------------------------------------------
// Gaussian families

// A one-hidden-layer softplus MLP whose energy is a quadratic up to O(eps^2): hidden units
// softplus(+-eps a_j . x) for a_1 = e_1, a_2 = e_2, a_3 = (e_1 + e_2)/sqrt 2, output weights
// w. softplus(z) + softplus(-z) = 2 log 2 + z^2/4 - z^4/96 + ..., softplus(z) - softplus(-z) = z,
// so E = sum_j c_j eps^2 (a_j . x)^2 / 4 + sum_{j<=2} e_j eps x_j + O(eps^4 x^4) with
// c_j = w_{j+} + w_{j-} ... (the span of these units is every quadratic, up to O(eps^2)).
// Both losses are quadratic in w, so the minimiser comes from gradients at 6 points:
// dJ/dc = M c - h with w = B c.
constexpr double kEps = 0.05;
const double kDir[3][2] = {{1, 0}, {0, 1}, {0.70710678118654752, 0.70710678118654752}};

// w = B c: c_0..c_2 the even parts of pairs 1..3, c_3, c_4 the odd parts of pairs 1, 2.
std::vector<double> Basis(int k) {
  std::vector<double> w(6, 0.0);
  if (k < 3) {
    w[2 * k] = w[2 * k + 1] = 1.0;
  } else {
    w[2 * (k - 3)] = 1.0;
    w[2 * (k - 3) + 1] = -1.0;
  }
  return w;
}

void SetOutputWeights(Mlp& mlp, const std::vector<double>& c) {
  auto p = mlp.parameters();
  for (int j = 0; j < 3; ++j)
    for (int s = 0; s < 2; ++s) {
      const int unit = 2 * j + s;
      for (int k = 0; k < 2; ++k)
        p[mlp.weight_offset(0) + unit * 2 + k] =
            static_cast<float>((s ? -kEps : kEps) * kDir[j][k]);
      p[mlp.bias_offset(0) + unit] = 0.0f;
    }
  std::vector<double> w(6, 0.0);
  for (int k = 0; k < 5; ++k) {
    const std::vector<double> b = Basis(k);
    for (int i = 0; i < 6; ++i) w[i] += c[k] * b[i];
  }
  for (int i = 0; i < 6; ++i) p[mlp.weight_offset(1) + i] = static_cast<float>(w[i]);
  p[mlp.bias_offset(1)] = 0.0f;
}

struct GaussianFit {
  double mean[2];
  double cov[2][2];
};

// Minimises the loss over c (5 unknowns) and reads the fitted Gaussian off the model's
// Hessian and gradient at 0 (oracle, double).
GaussianFit FitGaussian(const ScoreLossOptions& o, const std::vector<float>& x, int64_t n,
                        uint64_t iteration) {
  Mlp mlp(MlpSpec{2, {6}, Activation::kSoftplus}, 1);
  ScoreLoss loss(mlp.spec(), o, n);
  std::vector<float> grad(mlp.num_parameters());
  auto reduced = [&](const std::vector<double>& c) {
    SetOutputWeights(mlp, c);
    loss.evaluate(mlp, x.data(), n, iteration, grad.data());
    std::vector<double> r(5, 0.0);
    for (int k = 0; k < 5; ++k) {
      const std::vector<double> b = Basis(k);
      for (int i = 0; i < 6; ++i) r[k] += b[i] * grad[mlp.weight_offset(1) + i];
    }
    return r;
  };
  // Columns at c = e_k / eps^2 keep the fitted scale (c ~ 1/eps^2) in view.
  const double unit = 1.0 / (kEps * kEps);
  const std::vector<double> minus_h = reduced(std::vector<double>(5, 0.0));
  std::vector<double> m(25);
  for (int k = 0; k < 5; ++k) {
    std::vector<double> c(5, 0.0);
    c[k] = unit;
    const std::vector<double> col = reduced(c);
    for (int i = 0; i < 5; ++i) m[i * 5 + k] = (col[i] - minus_h[i]) / unit;
  }
  const std::vector<double> mi = ref::invert_matrix(m, 5);
  std::vector<double> c(5, 0.0);
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 5; ++k) c[i] -= mi[i * 5 + k] * minus_h[k];
  SetOutputWeights(mlp, c);
  const ref::MlpModel model = Oracle(mlp);
  const double zero[2] = {0, 0};
  const ref::InputDerivatives id = ref::mlp_input_derivatives(model, zero);
  const std::vector<double> cov = ref::invert_matrix(id.hessian, 2);
  GaussianFit f;
  for (int i = 0; i < 2; ++i) {
    f.mean[i] = -(cov[i * 2] * id.grad[0] + cov[i * 2 + 1] * id.grad[1]);
    for (int j = 0; j < 2; ++j) f.cov[i][j] = cov[i * 2 + j];
  }
  return f;
}

const double kMean[2] = {0.5, -1.0};
const double kCov[2][2] = {{1.5, 0.6}, {0.6, 0.8}};

std::vector<float> GaussianSample(int64_t n, uint64_t seed) {
  const double l00 = std::sqrt(kCov[0][0]), l10 = kCov[1][0] / l00;
  const double l11 = std::sqrt(kCov[1][1] - l10 * l10);
  const std::vector<float> z = RandomNormal(n * 2, 1.0, seed);
  std::vector<float> x(n * 2);
  for (int64_t r = 0; r < n; ++r) {
    x[2 * r] = static_cast<float>(kMean[0] + l00 * z[2 * r]);
    x[2 * r + 1] = static_cast<float>(kMean[1] + l10 * z[2 * r] + l11 * z[2 * r + 1]);
  }
  return x;
}

TEST(ScoreMatchingGaussian, ExactLossIsMinimisedAtTheSampleMeanAndCovariance) {
  // Score matching's minimiser over Gaussians is the sample mean and the (1/n) sample
  // covariance. Against those: the family's O(eps^2 x^2) departure from a quadratic
  // (eps = 0.05, |x| <~ 4: ~1e-3 relative) and float rounding (~1e-5): bound 3e-3 (1 + |S|).
  // Against the truth: 4 standard errors, sqrt(S_ii / n) for the mean and
  // sqrt((S_ii S_jj + S_ij^2) / n) for the covariance.
  const int64_t n = 4000;
  const std::vector<float> x = GaussianSample(n, 2024);
  double mean[2] = {0, 0}, cov[2][2] = {{0, 0}, {0, 0}};
  for (int64_t r = 0; r < n; ++r)
    for (int i = 0; i < 2; ++i) mean[i] += x[2 * r + i] / static_cast<double>(n);
  for (int64_t r = 0; r < n; ++r)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        cov[i][j] += (x[2 * r + i] - mean[i]) * (x[2 * r + j] - mean[j]) / static_cast<double>(n);
  ScoreLossOptions o;
  const GaussianFit f = FitGaussian(o, x, n, 0);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(f.mean[i], mean[i], 3e-3) << "mean " << i;
    EXPECT_NEAR(f.mean[i], kMean[i], 4 * std::sqrt(kCov[i][i] / n)) << "mean " << i;
    for (int j = 0; j < 2; ++j) {
      EXPECT_NEAR(f.cov[i][j], cov[i][j], 3e-3 * (1 + std::abs(cov[i][j]))) << i << j;
      EXPECT_NEAR(f.cov[i][j], kCov[i][j],
                  4 * std::sqrt((kCov[i][i] * kCov[j][j] + kCov[i][j] * kCov[i][j]) / n))
          << i << j;
    }
  }
}

TEST(ScoreMatchingGaussian, DenoisingRecoversCovariancePlusNoiseOnlyWithTheCorrectSign) {
  // With noise sigma, denoising score matching's minimiser is the Gaussian fit of x + n:
  // mean mu, covariance S + sigma^2 I. Standard errors from 8 independent replicates (fresh
  // data and noise); the estimate (their mean) must lie within 4 of them, plus the family's
  // O(eps^2) bias (5e-3). TorchEBM's sign fits E = -(quadratic): its "covariance" is negative
  // definite, dozens of standard errors away.
  const double sigma = 0.5;
  const int reps = 8;
  const int64_t n = 4096;
  for (DenoisingSign sign : {DenoisingSign::kCorrect, DenoisingSign::kTorchEbm}) {
    ScoreLossOptions o;
    o.kind = ScoreLossKind::kDenoisingScoreMatching;
    o.noise_scale = static_cast<float>(sigma);
    o.denoising_sign = sign;
    o.seed = 99;
    double sum[6] = {}, sum2[6] = {};
    for (int r = 0; r < reps; ++r) {
      const GaussianFit f = FitGaussian(o, GaussianSample(n, 500 + r), n, r);
      const double v[6] = {f.mean[0],   f.mean[1],   f.cov[0][0],
                           f.cov[0][1], f.cov[1][1], f.cov[1][0]};
      for (int k = 0; k < 6; ++k) {
        sum[k] += v[k];
        sum2[k] += v[k] * v[k];
      }
    }
    const double target[6] = {
        kMean[0],  kMean[1], kCov[0][0] + sigma * sigma, kCov[0][1], kCov[1][1] + sigma * sigma,
        kCov[1][0]};
    const char* names[6] = {"mean0", "mean1", "cov00", "cov01", "cov11", "cov10"};
    for (int k = 2; k < 6; ++k) {
      const double mean = sum[k] / reps;
      const double se = std::sqrt(std::max(0.0, sum2[k] / reps - mean * mean) / (reps - 1));
      if (sign == DenoisingSign::kCorrect) {
        EXPECT_LT(se, 0.05) << names[k] << ": the test must resolve sigma^2 = 0.25";
        EXPECT_NEAR(mean, target[k], 4 * se + 5e-3) << names[k];
      } else if (k == 2 || k == 4) {
        EXPECT_LT(mean, 0.0) << names[k] << ": TorchEBM's sign fits the inverted density";
      }
    }
    if (sign == DenoisingSign::kCorrect)
      for (int k = 0; k < 2; ++k) {
        const double mean = sum[k] / reps;
        const double se = std::sqrt(std::max(0.0, sum2[k] / reps - mean * mean) / (reps - 1));
        EXPECT_NEAR(mean, target[k], 4 * se + 5e-3) << names[k];
      }
  }
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST(ScoreMatchingInput, BadInputIsRejectedAndNamed) {
  const Mlp mlp(MlpSpec{2, {8}, Activation::kSiLU}, 1);
  ScoreLoss loss(mlp.spec(), {});
  std::vector<float> x = RandomNormal(8, 1.0, 1);
  std::vector<float> grad(mlp.num_parameters(), 7.0f);
  ExpectInvalid([&] { loss.evaluate(mlp, x.data(), 0, 0, grad.data()); }, {"rows", "0"});
  ExpectInvalid([&] { loss.evaluate(mlp, nullptr, 4, 0, grad.data()); }, {"x is null"});
  x[5] = kNaN;
  ExpectInvalid([&] { loss.evaluate(mlp, x.data(), 4, 0, grad.data()); },
                {"non-finite", "row 2", "column 1"});
  x[5] = 0.5f;
  std::vector<float> short_params(3);
  ExpectInvalid([&] { loss.evaluate(short_params, x.data(), 4, 0, grad.data()); },
                {"parameters", "3"});
  const Mlp other(MlpSpec{2, {9}, Activation::kSiLU}, 1);
  ExpectInvalid([&] { loss.evaluate(other, x.data(), 4, 0, grad.data()); }, {"does not match"});
  for (float g : grad) EXPECT_EQ(g, 7.0f) << "grad written on error";

  ScoreLossOptions o;
  o.n_projections = 0;
  ExpectInvalid([&] { ScoreLoss(mlp.spec(), o); }, {"n_projections", "0"});
  o = {};
  o.noise_scale = 0.0f;
  ExpectInvalid([&] { ScoreLoss(mlp.spec(), o); }, {"noise_scale"});
  o.noise_scale = kNaN;
  ExpectInvalid([&] { ScoreLoss(mlp.spec(), o); }, {"noise_scale"});
  o = {};
  o.regularization_strength = -1.0f;
  ExpectInvalid([&] { ScoreLoss(mlp.spec(), o); }, {"regularization_strength"});
  o = {};
  o.kind = static_cast<ScoreLossKind>(9);
  ExpectInvalid([&] { ScoreLoss(mlp.spec(), o); }, {"loss kind", "9"});
  ExpectInvalid([&] { ScoreLoss(mlp.spec(), {}, -1); }, {"max_rows"});
}

TEST(ScoreMatchingInput, NamesRoundTrip) {
  for (auto k : {ScoreLossKind::kScoreMatching, ScoreLossKind::kSlicedScoreMatching,
                 ScoreLossKind::kDenoisingScoreMatching})
    EXPECT_EQ(parse_score_loss_kind(score_loss_kind_name(k)), k);
  EXPECT_EQ(parse_hessian_method("TorchEBM_Approx"), HessianMethod::kTorchEbmApprox);
  EXPECT_EQ(parse_projection_type("sphere"), ProjectionType::kSphere);
  EXPECT_EQ(parse_denoising_sign("torchebm"), DenoisingSign::kTorchEbm);
  EXPECT_EQ(denoising_sign_name(DenoisingSign::kCorrect), "correct");
  ExpectInvalid([] { parse_score_loss_kind("cd"); }, {"'cd'", "sm, ssm, dsm"});
  ExpectInvalid([] { parse_projection_type("cube"); }, {"'cube'", "rademacher"});
}

}  // namespace
}  // namespace cuebm
