// The CPU's blocked score-matching path (host/training/score_matching_block.*, used by
// ScoreLoss::evaluate) against score_matching.cuh's row-at-a-time math (sm_row_loss), summed
// here exactly as the CPU backend did before the blocked path: min(n, 64) chunks of
// consecutive rows, each a float gradient sum and a double loss sum in row order, the chunks
// added in order in double.
//
// Tolerances. The blocked path does each row's arithmetic in the per-row code's order (fmaf for
// fmaf) and sums each chunk's rows in row order, and both are compiled with -ffp-contract=off
// (no contraction but the explicit fmaf: one the compiler chose would depend on what it
// inlined where, and moved results by an ulp of an intermediate), so the two agree to the last
// bit except that denoising with lambda > 0 adds its two directional
// gradients per block instead of per row, which reorders each chunk's float sum (at most
// ~rows_per_chunk ulps of the chunk's terms). Bounds: loss within 1e-6 relative to
// max(1, |loss|) (float row losses, ~1e-7 per ulp); gradient within 1e-5 of max|gradient| +
// 1e-7 (chunk sums of float terms, the terms up to a few times max|gradient|). A wrong channel,
// coefficient, row mapping or chunk owner changes entries by O(1) of their size (a planted
// wrong output-layer coefficient: differences ~1e-2 against bounds ~2e-7). Measured with GCC 12:
// every case bit-identical except denoising with lambda > 0 at chunks of 2+ rows (1.5e-8).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/training/score_matching.hpp"
#include "kernels/models/activation.cuh"
#include "kernels/training/score_matching.cuh"

namespace cuebm {
namespace {

struct RowResult {
  double loss = 0.0;
  std::vector<float> grad;
};

// The pre-blocked CPU evaluation, serially.
RowResult RowAtATime(const Mlp& mlp, const ScoreLossOptions& o, const std::vector<float>& x,
                     int64_t n, uint64_t iteration) {
  const std::vector<int> widths = mlp.layer_widths();
  const int n_lin = static_cast<int>(widths.size()) - 1;
  const std::span<const float> params = mlp.parameters();
  const detail::SmRowParams p = detail::sm_row_params(o, iteration);
  const bool curved = detail::dispatch_activation(
      mlp.spec().activation, []<Activation A>() { return detail::activation_has_curvature<A>(); });
  const detail::SmChannelCounts ch = detail::sm_channel_counts(p, widths[0], curved);
  const detail::SmLayout layout = detail::SmLayout::make(widths.data(), n_lin, ch);
  std::vector<float> wt(params.size());
  detail::sm_transpose_weights(widths.data(), n_lin, params.data(), wt.data());
  const detail::SmNet net{params.data(), wt.data(), widths.data(), n_lin};
  std::vector<float> scratch(static_cast<std::size_t>(layout.total));
  const int64_t chunks = std::min<int64_t>(n, 64), per_chunk = (n + chunks - 1) / chunks;
  std::vector<double> sum(params.size(), 0.0);
  double total = 0.0;
  std::vector<float> acc(params.size());
  for (int64_t c = 0; c < chunks; ++c) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    double loss = 0.0;
    for (int64_t r = std::min(n, c * per_chunk); r < std::min(n, (c + 1) * per_chunk); ++r)
      detail::dispatch_activation(mlp.spec().activation, [&]<Activation A>() {
        const detail::SmBuf<detail::SmDense> s{scratch.data(), {}}, g{acc.data(), {}};
        loss += detail::sm_row_loss<A>(net, layout, p, x.data() + r * widths[0],
                                       static_cast<uint64_t>(r), s, 1.0f, g);
      });
    total += loss;
    for (std::size_t i = 0; i < acc.size(); ++i) sum[i] += acc[i];
  }
  RowResult out;
  const double inv_n = 1.0 / static_cast<double>(n);
  out.loss = total * inv_n;
  out.grad.resize(params.size());
  for (std::size_t i = 0; i < sum.size(); ++i) out.grad[i] = static_cast<float>(sum[i] * inv_n);
  return out;
}

struct Case {
  std::string name;
  ScoreLossOptions options;
};

std::vector<Case> Cases() {
  std::vector<Case> v;
  ScoreLossOptions o;
  o.seed = 11;
  v.push_back({"sm", o});
  o.regularization_strength = 0.1f;
  v.push_back({"sm lambda", o});
  o = {};
  o.seed = 12;
  o.kind = ScoreLossKind::kSlicedScoreMatching;
  v.push_back({"ssm rademacher", o});
  o.projection_type = ProjectionType::kSphere;
  o.n_projections = 3;
  v.push_back({"ssm sphere", o});
  o.projection_type = ProjectionType::kGaussian;
  o.regularization_strength = 0.2f;
  v.push_back({"ssm gaussian lambda", o});
  o = {};
  o.seed = 13;
  o.kind = ScoreLossKind::kDenoisingScoreMatching;
  o.noise_scale = 0.1f;
  v.push_back({"dsm", o});
  o.denoising_sign = DenoisingSign::kTorchEbm;
  o.regularization_strength = 0.05f;
  v.push_back({"dsm torchebm lambda", o});
  return v;
}

void ExpectBlockedMatchesRows(const MlpSpec& spec, int64_t n, uint64_t seed) {
  const Mlp mlp(spec, seed);
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(n * spec.input_dim));
  for (float& v : x) v = dist(gen);
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name + ", " + mlp.name() + ", n " + std::to_string(n));
    ScoreLoss loss(spec, c.options);
    std::vector<float> grad(loss.num_parameters());
    const uint64_t iteration = 3;
    const double got = loss.evaluate(mlp, x.data(), n, iteration, grad.data());
    const RowResult want = RowAtATime(mlp, c.options, x, n, iteration);
    EXPECT_NEAR(got, want.loss, 1e-6 * std::max(1.0, std::abs(want.loss)));
    float gmax = 0.0f;
    for (float g : want.grad) gmax = std::max(gmax, std::abs(g));
    const double tol = 1e-5 * gmax + 1e-7;
    int bad = 0;
    double worst = 0.0;
    for (std::size_t i = 0; i < grad.size(); ++i) {
      const double diff = std::abs(static_cast<double>(grad[i]) - want.grad[i]);
      worst = std::max(worst, diff);
      bad += diff > tol;
    }
    EXPECT_EQ(bad, 0) << "worst gradient difference " << worst << " > " << tol;
    // The loss without the gradient is the same number.
    EXPECT_EQ(loss.evaluate(mlp, x.data(), n, iteration), got);
  }
}

TEST(ScoreMatchingBlock, MatchesTheRowAtATimeMath) {
  // Widths that exercise every tile shape: 70 = 64 + 4 + 2 (outputs by 8/4/1, inputs by
  // 64/16/1), input dims 2 and 17 (one 16-wide input tile plus a remainder).
  const Activation acts[] = {Activation::kReLU,     Activation::kSiLU,      Activation::kTanh,
                             Activation::kSoftplus, Activation::kLeakyReLU, Activation::kGELU};
  uint64_t seed = 100;
  for (Activation a : acts) ExpectBlockedMatchesRows({2, {70, 6}, a}, 37, ++seed);
  ExpectBlockedMatchesRows({17, {20, 70}, Activation::kSiLU}, 31, ++seed);
}

TEST(ScoreMatchingBlock, BatchSizesAroundTheBlockAndChunkBoundaries) {
  // 1 row; 33 (chunks of 1, a block of 32 and one of 1); 250 (chunks of 4 and the last short);
  // 3001 (chunks of 47 rows: blocks inside a chunk); 65 (chunks of 2, some empty).
  uint64_t seed = 200;
  for (int64_t n : {1, 33, 65, 250, 3001})
    ExpectBlockedMatchesRows({3, {24, 16}, Activation::kSiLU}, n, ++seed);
}

}  // namespace
}  // namespace cuebm
