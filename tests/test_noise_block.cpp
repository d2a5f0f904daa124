// The vectorised Langevin noise (host/sampling/noise_block.hpp) against the scalar Philox and
// libm-based Box-Muller of kernels/runtime/philox.cuh, and its log, sqrt and sincos helpers against
// double precision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/sampling/noise_block.hpp"
#include "kernels/runtime/philox.cuh"

namespace {

using cuebm::kRowBlock;
using cuebm::detail::langevin_noise_block;

constexpr double kTol = 2e-6;  // relative to max(1, |value|)

double tolerance(double ref) { return kTol * std::max(1.0, std::fabs(ref)); }

// The scalar sampler's normal for coordinate d of (seed, chain, step).
float scalar_normal(uint64_t seed, uint64_t chain, uint64_t step, int dim, int d) {
  using namespace cuebm::detail;
  const U32x4 b = philox_block(seed, chain, step * blocks_per_step(dim) + d / 4);
  return normal4_from_block(b).v[d % 4];
}

TEST(NoiseBlock, MatchesScalarPhiloxBoxMuller) {
  const int dims[] = {1, 2, 3, 4, 5, 8, 9};
  const uint64_t seeds[] = {0, 1234, 0xdeadbeefcafef00dull};
  const uint64_t first_chains[] = {0, 1000, 0xfffffff0ull, 0x123456789abcdef0ull};
  const uint64_t steps[] = {0, 7, 0x1ffffffffull, 0xfedcba9876543210ull};
  const float kSentinel = -12345.0f;
  int64_t checked = 0;
  for (int dim : dims)
    for (uint64_t seed : seeds)
      for (uint64_t first : first_chains)
        for (uint64_t step : steps)
          for (int rows = 1; rows <= kRowBlock; ++rows) {
            std::vector<float> eps(static_cast<std::size_t>(dim) * kRowBlock, kSentinel);
            langevin_noise_block(seed, first, step, dim, rows, eps.data());
            for (int d = 0; d < dim; ++d)
              for (int r = 0; r < kRowBlock; ++r) {
                const float got = eps[d * kRowBlock + r];
                if (r >= rows) {
                  ASSERT_TRUE(got == kSentinel || std::isfinite(got));
                  continue;
                }
                const float want = scalar_normal(seed, first + r, step, dim, d);
                ASSERT_NEAR(got, want, tolerance(want))
                    << "dim " << dim << " seed " << seed << " chain " << first + r << " step "
                    << step << " coordinate " << d << " rows " << rows;
                ++checked;
              }
          }
  EXPECT_GT(checked, 100000);
}

TEST(NoiseBlock, MatchesPublicLangevinNoise) {
  // Chains crossing a 2^32 boundary inside the block: the counter's high word differs by lane.
  const uint64_t first = 0x2ffffffefull;
  std::vector<float> eps(5 * kRowBlock);
  for (uint64_t step = 0; step < 20; ++step) {
    langevin_noise_block(99, first, step, 5, kRowBlock, eps.data());
    for (int r = 0; r < kRowBlock; ++r)
      for (int d = 0; d < 5; ++d) {
        const float want = cuebm::langevin_noise(99, first + r, step, 5, d);
        ASSERT_NEAR(eps[d * kRowBlock + r], want, tolerance(want)) << "row " << r << " d " << d;
      }
  }
}

// Every uniform the Box-Muller pair can see, sampled: u = a 2^-32 + 2^-33 with a stepping
// through [0, 2^32) (including both ends), v likewise; the pair from noise_*_lanes equals the
// scalar libm box_muller.
TEST(NoiseBlock, HelpersMatchScalarBoxMullerOverTheWholeRange) {
  using namespace cuebm::detail;
  std::vector<uint32_t> words;
  for (uint64_t a = 0; a < (uint64_t{1} << 32); a += 65521)
    words.push_back(static_cast<uint32_t>(a));
  for (uint32_t a = 0; a < 64; ++a) words.push_back(0xffffffffu - a);
  while (words.size() % kRowBlock != 0) words.push_back(0xffffffffu);
  float u[kRowBlock], v[kRowBlock], lg[kRowBlock], t[kRowBlock], rad[kRowBlock];
  float s[kRowBlock], c[kRowBlock];
  for (std::size_t i0 = 0; i0 < words.size(); i0 += kRowBlock) {
    for (int i = 0; i < kRowBlock; ++i) {
      const uint32_t a = words[i0 + i], b = ~a * 2654435761u;
      u[i] = static_cast<float>(a) * kTwoPow32Inv + kTwoPow32Inv / 2.0f;
      v[i] = static_cast<float>(b) * kTwoPow32Inv2Pi + kTwoPow32Inv2Pi / 2.0f;
    }
    cuebm::detail::noise_log_lanes(u, lg);
    for (int i = 0; i < kRowBlock; ++i) t[i] = -2.0f * lg[i];
    cuebm::detail::noise_sqrt_lanes(t, rad);
    cuebm::detail::noise_sincos_lanes(v, s, c);
    for (int i = 0; i < kRowBlock; ++i) {
      const float r_ref = std::sqrt(-2.0f * std::log(u[i]));
      const float n0 = r_ref * std::sin(v[i]), n1 = r_ref * std::cos(v[i]);
      ASSERT_NEAR(rad[i] * s[i], n0, tolerance(n0)) << "u " << u[i] << " v " << v[i];
      ASSERT_NEAR(rad[i] * c[i], n1, tolerance(n1)) << "u " << u[i] << " v " << v[i];
      ASSERT_NEAR(rad[i], r_ref, 1e-6 * std::max(1.0f, r_ref)) << "u " << u[i];
    }
  }
}

TEST(NoiseBlock, LogAtSpecialValues) {
  const float specials[] = {0x1p-33f,        0x1p-32f * 3.0f + 0x1p-33f,
                            0.25f,           0.5f,
                            0.70710677f,     0.70710683f,
                            0.75f,           1.0f - 0x1p-24f,
                            1.0f - 0x1p-23f, 1.0f};
  float x[kRowBlock], out[kRowBlock];
  for (int i = 0; i < kRowBlock; ++i) x[i] = specials[i % std::size(specials)];
  cuebm::detail::noise_log_lanes(x, out);
  for (int i = 0; i < kRowBlock; ++i) {
    const double want = std::log(static_cast<double>(x[i]));
    // A few ulp of the result, and exact zero at 1.
    EXPECT_NEAR(out[i], want, 4e-7 * std::max(std::fabs(want), 1e-30)) << "x " << x[i];
  }
  EXPECT_EQ(out[std::size(specials) - 1], 0.0f);
  // Near 1 log u ~ -(1 - u): relative accuracy, not just absolute.
  EXPECT_NEAR(out[7] / -0x1p-24, 1.0, 1e-6);
}

TEST(NoiseBlock, SqrtAtSpecialValues) {
  const float specials[] = {0.0f, 0x1p-24f, 1e-10f, 0.5f, 1.0f, 2.0f, 45.7477f, 46.0f};
  float x[kRowBlock], out[kRowBlock];
  for (int i = 0; i < kRowBlock; ++i) x[i] = specials[i % std::size(specials)];
  cuebm::detail::noise_sqrt_lanes(x, out);
  for (int i = 0; i < kRowBlock; ++i) {
    const double want = std::sqrt(static_cast<double>(x[i]));
    EXPECT_NEAR(out[i], want, 2.5e-7 * want) << "x " << x[i];
  }
  EXPECT_EQ(out[0], 0.0f);
}

TEST(NoiseBlock, SincosAtSpecialValues) {
  constexpr double kPi = std::numbers::pi;
  const float specials[] = {0.0f,
                            0x1p-32f * 3.14159265f,
                            static_cast<float>(kPi / 4),
                            static_cast<float>(kPi / 2),
                            static_cast<float>(3 * kPi / 4),
                            static_cast<float>(kPi),
                            static_cast<float>(5 * kPi / 4),
                            static_cast<float>(3 * kPi / 2),
                            static_cast<float>(7 * kPi / 4),
                            std::nextafter(static_cast<float>(2 * kPi), 0.0f),
                            static_cast<float>(2 * kPi),
                            6.2831850f,
                            1.0f,
                            2.5f,
                            4.0f,
                            5.5f};
  float v[kRowBlock], s[kRowBlock], c[kRowBlock];
  for (int i = 0; i < kRowBlock; ++i) v[i] = specials[i % std::size(specials)];
  cuebm::detail::noise_sincos_lanes(v, s, c);
  for (int i = 0; i < kRowBlock; ++i) {
    const double x = v[i];
    // Absolute error a few float ulps of 1 (the Box-Muller tolerance is absolute below 1).
    EXPECT_NEAR(s[i], std::sin(x), 1.5e-7) << "v " << v[i];
    EXPECT_NEAR(c[i], std::cos(x), 1.5e-7) << "v " << v[i];
  }
  // Signs where the value is tiny: sin(2 pi - tiny) < 0, sin(tiny) > 0, cos(pi/2 - ...) > 0.
  EXPECT_LT(s[9], 0.0f);
  EXPECT_GT(s[1], 0.0f);
  EXPECT_EQ(s[0], 0.0f);
  EXPECT_EQ(c[0], 1.0f);
}

}  // namespace
