// Tests of the shared Philox4x32-10 (kernels/runtime/philox.cuh), the host random streams
// (host/runtime/random.hpp) and the Langevin noise (include/cuebm/sampling/langevin.hpp) against
// the published known answers and cuRAND anchors of shared/spec/rng.md and, when the build has
// libcurand, bit for bit against cuRAND's host generator (which needs no GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuebm/sampling/langevin.hpp"
#include "host/runtime/random.hpp"
#include "kernels/runtime/philox.cuh"

#if defined(CUEBM_HAVE_CURAND_HOST)
#include <curand.h>
#endif

namespace cuebm {
namespace {

using detail::U32x4;

std::vector<uint32_t> Words(U32x4 b) { return {b.x, b.y, b.z, b.w}; }

// How far two float Box-Muller evaluations of the same words may differ: a few ulp of the
// result (1e-6 (1 + |n|)) plus r times one ulp of the angle v in [4, 2 pi) (2^-21), since
// whether v = w C + C/2 is contracted into an FMA is the compiler's choice (rng.md: host and
// device normals agree to about 1e-6). u_word is the word that gives the radius r.
double BoxMullerTolerance(uint32_t u_word, double n) {
  const double u = static_cast<double>(u_word) * 0x1p-32 + 0x1p-33;
  return 1e-6 * (1.0 + std::abs(n)) + std::sqrt(-2.0 * std::log(u)) * 0x1p-21;
}

// ---------------------------------------------------------------------------------------------
// The generator

TEST(PhiloxTest, KnownAnswers) {
  // Salmon et al.'s Random123 known-answer vectors (rng.md).
  EXPECT_EQ(Words(detail::philox4x32_10(U32x4{0, 0, 0, 0}, 0, 0)),
            (std::vector<uint32_t>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Words(detail::philox4x32_10(U32x4{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                                        0xffffffff, 0xffffffff)),
            (std::vector<uint32_t>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Words(detail::philox4x32_10(U32x4{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                                        0xa4093822, 0x299f31d0)),
            (std::vector<uint32_t>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(PhiloxTest, BlockCounterLayoutIsCurandInit) {
  // curand_init(seed, subsequence, 4 * block): counter (block lo, block hi, subsequence lo,
  // subsequence hi), key (seed lo, seed hi). High words included.
  const uint64_t seeds[] = {0, 1234, 0x0123456789abcdefull};
  const uint64_t subs[] = {0, 3, 0x00000005fffffffbull};
  const uint64_t blocks[] = {0, 7, 0x0000000300000011ull};
  for (uint64_t seed : seeds)
    for (uint64_t sub : subs)
      for (uint64_t block : blocks) {
        const U32x4 ctr{static_cast<uint32_t>(block & 0xffffffffu),
                        static_cast<uint32_t>(block >> 32),
                        static_cast<uint32_t>(sub & 0xffffffffu), static_cast<uint32_t>(sub >> 32)};
        EXPECT_EQ(Words(detail::philox_block(seed, sub, block)),
                  Words(detail::philox4x32_10(ctr, static_cast<uint32_t>(seed & 0xffffffffu),
                                              static_cast<uint32_t>(seed >> 32))))
            << "seed " << seed << " subsequence " << sub << " block " << block;
      }
}

TEST(PhiloxTest, CurandAnchors) {
  // rng.md: seed 1234, offset 0.
  EXPECT_EQ(Words(detail::philox_block(1234, 0, 0)),
            (std::vector<uint32_t>{0x2090b348, 0xda7cf0ab, 0x4401906f, 0xcbca470e}));
  EXPECT_EQ(detail::philox_block(1234, 1, 0).x, 0xd115a128u);
  EXPECT_EQ(detail::philox_block(1234, 2, 0).x, 0x8b438957u);
  EXPECT_EQ(detail::philox_block(1234, 3, 0).x, 0xa8faf0a4u);
  const detail::Normal4 n = detail::normal4_from_block(detail::philox_block(1234, 0, 0));
  const double expected[4] = {-1.61649048, 1.22915542, -1.56054044, 0.464621365};
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(n.v[k], expected[k], 1e-6) << "normal " << k;
}

TEST(PhiloxTest, UniformMapIsCurandUniform) {
  // w 2^-32 + 2^-33: the smallest word maps to 2^-33, the largest rounds to 1 (range (0, 1]).
  EXPECT_EQ(detail::uniform_from_bits(0u), std::ldexp(1.0f, -33));
  EXPECT_EQ(detail::uniform_from_bits(0xffffffffu), 1.0f);
  EXPECT_EQ(detail::uniform_from_bits(0x80000000u), 0.5f + std::ldexp(1.0f, -33));
}

TEST(PhiloxTest, BoxMullerMatchesADoublePrecisionEvaluation) {
  // curand_normal4's Box-Muller with u, v rounded to float as cuRAND rounds them, then r, sin
  // and cos in double: the float library agrees to within BoxMullerTolerance.
  const float two_pow_m32 = std::ldexp(1.0f, -32);
  const float two_pi_scaled = two_pow_m32 * 6.2831855f;
  int bad = 0;
  for (uint64_t block = 0; block < 4096 && bad < 5; ++block) {
    const U32x4 b = detail::philox_block(99, block % 5, block);
    const detail::Normal4 got = detail::normal4_from_block(b);
    const uint32_t w[4] = {b.x, b.y, b.z, b.w};
    for (int pair = 0; pair < 2; ++pair) {
      const float u = static_cast<float>(w[2 * pair]) * two_pow_m32 + two_pow_m32 / 2.0f;
      const float v = static_cast<float>(w[2 * pair + 1]) * two_pi_scaled + two_pi_scaled / 2.0f;
      const double r = std::sqrt(-2.0 * std::log(static_cast<double>(u)));
      const double ref[2] = {r * std::sin(static_cast<double>(v)),
                             r * std::cos(static_cast<double>(v))};
      for (int k = 0; k < 2; ++k) {
        const double g = got.v[2 * pair + k];
        if (!(std::abs(g - ref[k]) <= BoxMullerTolerance(w[2 * pair], ref[k]))) {
          ++bad;
          ADD_FAILURE() << "block " << block << " normal " << 2 * pair + k << ": " << g << " vs "
                        << ref[k];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Against libcurand's host generator

#if defined(CUEBM_HAVE_CURAND_HOST)

// Word n of cuRAND's host Philox output: word n mod 4 of block (n/4) / 65536 of subsequence
// (n/4) mod 65536 (the device streams interleaved, rng.md).
uint32_t InterleavedWord(uint64_t seed, uint64_t n) {
  const uint64_t q = n / 4;
  return Words(detail::philox_block(seed, q % 65536, q / 65536))[n % 4];
}

class CurandHost : public ::testing::Test {
 protected:
  void SetUp() override {
    const curandStatus_t s = curandCreateGeneratorHost(&gen_, CURAND_RNG_PSEUDO_PHILOX4_32_10);
    if (s != CURAND_STATUS_SUCCESS)
      GTEST_SKIP() << "curandCreateGeneratorHost failed with status " << static_cast<int>(s);
    created_ = true;
  }
  void TearDown() override {
    if (created_) curandDestroyGenerator(gen_);
  }
  void Reseed(uint64_t seed) {
    ASSERT_EQ(curandSetPseudoRandomGeneratorSeed(gen_, seed), CURAND_STATUS_SUCCESS);
    ASSERT_EQ(curandSetGeneratorOffset(gen_, 0), CURAND_STATUS_SUCCESS);
  }

  // Two blocks of every one of the 65536 interleaved subsequences.
  static constexpr std::size_t kWords = 4 * 65536 * 2;
  curandGenerator_t gen_{};
  bool created_ = false;
};

TEST_F(CurandHost, WordsMatchBitForBit) {
  for (uint64_t seed : {uint64_t{1234}, uint64_t{0x0123456789abcdefull}}) {
    Reseed(seed);
    std::vector<unsigned int> words(kWords);
    ASSERT_EQ(curandGenerate(gen_, words.data(), words.size()), CURAND_STATUS_SUCCESS);
    std::size_t bad = 0;
    for (std::size_t n = 0; n < kWords; ++n)
      if (words[n] != InterleavedWord(seed, n) && bad++ < 5)
        ADD_FAILURE() << "seed " << seed << ", word " << n << ": curand " << words[n] << ", philox "
                      << InterleavedWord(seed, n);
    EXPECT_EQ(bad, 0u) << "seed " << seed;
  }
}

TEST_F(CurandHost, UniformsMatchBitForBitAndNormalsToFloatRounding) {
  const uint64_t seed = 1234;
  Reseed(seed);
  std::vector<float> u(kWords);
  ASSERT_EQ(curandGenerateUniform(gen_, u.data(), u.size()), CURAND_STATUS_SUCCESS);
  Reseed(seed);
  std::vector<float> normals(kWords);
  ASSERT_EQ(curandGenerateNormal(gen_, normals.data(), normals.size(), 0.0f, 1.0f),
            CURAND_STATUS_SUCCESS);
  std::size_t bad_u = 0, bad_n = 0;
  for (std::size_t n = 0; n < kWords; ++n) {
    const uint64_t q = n / 4;
    const U32x4 b = detail::philox_block(seed, q % 65536, q / 65536);
    const float want_u = detail::uniform_from_bits(Words(b)[n % 4]);
    if (u[n] != want_u && bad_u++ < 5)
      ADD_FAILURE() << "uniform " << n << ": curand " << u[n] << ", cuebm " << want_u;
    // Host math on both sides, up to the rounding of the angle (BoxMullerTolerance).
    const float want_n = detail::normal4_from_block(b).v[n % 4];
    const uint32_t u_word = Words(b)[n % 4 < 2 ? 0 : 2];
    if (!(std::abs(normals[n] - want_n) <= BoxMullerTolerance(u_word, want_n)) && bad_n++ < 5)
      ADD_FAILURE() << "normal " << n << ": curand " << normals[n] << ", cuebm " << want_n;
  }
  EXPECT_EQ(bad_u, 0u);
  EXPECT_EQ(bad_n, 0u);
}

#else

TEST(CurandHost, WordsMatchBitForBit) { GTEST_SKIP() << "built without libcurand"; }

#endif

// ---------------------------------------------------------------------------------------------
// Host streams and the Langevin noise

TEST(RandomStreamTest, ReadsItsPhiloxSubsequenceInOrder) {
  const uint64_t seed = 0xfeedfacecafebeefull, sub = 17;
  // The Langevin tag keys Philox with the seed itself (so it equals curand_init(seed, ...)).
  EXPECT_EQ(stream_key(seed, StreamTag::kLangevin), seed);
  for (StreamTag tag : {StreamTag::kLangevin, StreamTag::kDataset, StreamTag::kParams}) {
    const uint64_t key = stream_key(seed, tag);
    RandomStream bits(seed, tag, sub), normals(seed, tag, sub);
    for (uint64_t j = 0; j < 50; ++j) {
      const U32x4 b = detail::philox_block(key, sub, j);
      const detail::Normal4 n = detail::normal4_from_block(b);
      for (int k = 0; k < 4; ++k) {
        ASSERT_EQ(bits.next_u32(), Words(b)[k]) << "block " << j << " word " << k;
        ASSERT_EQ(normals.normal(), n.v[k]) << "block " << j << " normal " << k;
      }
    }
  }
  // Distinct tags and distinct seeds give distinct keys.
  EXPECT_NE(stream_key(seed, StreamTag::kDataset), stream_key(seed, StreamTag::kShuffle));
  EXPECT_NE(stream_key(seed, StreamTag::kDataset), stream_key(seed + 1, StreamTag::kDataset));
  EXPECT_NE(stream_key(seed, StreamTag::kDataset), seed);
}

TEST(RandomStreamTest, NormalMomentsWithinFourStandardErrors) {
  // n = 400000 draws: SE(mean) = 1/sqrt(n), SE(var) ~ sqrt(2/n), SE(E x^4) = sqrt(96/n).
  const int n = 400000;
  RandomStream rng(7, StreamTag::kInitNoise, 3);
  double s1 = 0, s2 = 0, s4 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = rng.normal();
    ASSERT_TRUE(std::isfinite(x));
    s1 += x;
    s2 += x * x;
    s4 += x * x * x * x;
  }
  const double mean = s1 / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 4.0 / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, 4.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(s4 / n, 3.0, 4.0 * std::sqrt(96.0 / n));
}

TEST(RandomStreamTest, UniformsWithinFourStandardErrors) {
  const int n = 200000;
  RandomStream rng(11, StreamTag::kShuffle);
  double sf = 0, sd = 0;
  for (int i = 0; i < n; ++i) {
    const float u = rng.uniform();
    ASSERT_TRUE(u > 0.0f && u <= 1.0f) << u;
    const double v = rng.uniform_double();
    ASSERT_TRUE(v >= 0.0 && v < 1.0) << v;
    sf += u;
    sd += v;
  }
  const double se = std::sqrt(1.0 / 12.0 / n);  // U(0, 1): variance 1/12
  EXPECT_NEAR(sf / n, 0.5, 4.0 * se);
  EXPECT_NEAR(sd / n, 0.5, 4.0 * se);
  // uniform_int(7): every value in range; each count Binomial(n, 1/7) within 4 SE.
  const int k = 7;
  std::vector<int> count(k, 0);
  for (int i = 0; i < n; ++i) {
    const uint64_t r = rng.uniform_int(k);
    ASSERT_LT(r, static_cast<uint64_t>(k));
    ++count[r];
  }
  const double p = 1.0 / k, se_count = std::sqrt(n * p * (1 - p));
  for (int v = 0; v < k; ++v) EXPECT_NEAR(count[v], n * p, 4.0 * se_count) << "value " << v;
}

TEST(PhiloxNoise, LangevinNoiseIsThePhiloxNormalOfChainStepAndCoordinate) {
  // Chain c's noise at step t, dimension D: curand_init(seed, c, 4 (t ceil(D/4) + q)) and
  // curand_normal4, coordinate i = 4 q + k taking normal k.
  const uint64_t seed = 0x5eedull;
  for (int d : {1, 2, 3, 4, 5, 8, 9}) {
    const uint64_t blocks_per_step = (static_cast<uint64_t>(d) + 3) / 4;
    for (uint64_t chain : {uint64_t{0}, uint64_t{1}, uint64_t{7}, uint64_t{123456789012}}) {
      for (uint64_t step : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{1000}}) {
        for (int i = 0; i < d; ++i) {
          const U32x4 b = detail::philox_block(seed, chain, step * blocks_per_step + i / 4);
          const float want = detail::normal4_from_block(b).v[i % 4];
          // The sampler's vectorised log/sincos versus libm: a few float ulps (langevin.hpp).
          ASSERT_NEAR(langevin_noise(seed, chain, step, d, i), want,
                      2e-6 * std::max(1.0f, std::abs(want)))
              << "dim " << d << " chain " << chain << " step " << step << " coordinate " << i;
        }
      }
    }
  }
}

TEST(PhiloxNoise, LangevinNoiseMomentsAcrossChains) {
  // 20000 chains x 2 steps x 3 coordinates: mean 0 (SE 1/sqrt(n)), variance 1 (SE sqrt(2/n)).
  double s1 = 0, s2 = 0;
  int n = 0;
  for (uint64_t chain = 0; chain < 20000; ++chain)
    for (uint64_t step = 0; step < 2; ++step)
      for (int i = 0; i < 3; ++i, ++n) {
        const double x = langevin_noise(42, chain, step, 3, i);
        s1 += x;
        s2 += x * x;
      }
  EXPECT_NEAR(s1 / n, 0.0, 4.0 / std::sqrt(n));
  EXPECT_NEAR(s2 / n - (s1 / n) * (s1 / n), 1.0, 4.0 * std::sqrt(2.0 / n));
}

}  // namespace
}  // namespace cuebm
