// Philox4x32-10 (Salmon et al., SC'11) and cuRAND's Box-Muller on top of it.
// Counter layout follows curand_init(seed, subsequence, offset): the 128-bit counter is
// (block index within the subsequence as the low 64 bits, subsequence as the high 64 bits),
// the key is the seed (low word, high word). See shared/spec/rng.md.
#pragma once

#include <cmath>
#include <cstdint>

#include "hd.cuh"

namespace cuebm::detail {

struct U32x4 {
  uint32_t x, y, z, w;
};

CUEBM_HD void mul_hi_lo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

CUEBM_HD U32x4 philox4x32_10(U32x4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo(kM0, c.x, hi0, lo0);
    mul_hi_lo(kM1, c.z, hi1, lo1);
    c = U32x4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

// Block `block` of subsequence `subsequence` for `seed`: what curand4 returns after
// curand_init(seed, subsequence, 4 * block).
CUEBM_HD U32x4 philox_block(uint64_t seed, uint64_t subsequence, uint64_t block) {
  const U32x4 ctr{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                  static_cast<uint32_t>(subsequence), static_cast<uint32_t>(subsequence >> 32)};
  return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

constexpr float kTwoPow32Inv = 2.3283064e-10f;  // 2^-32, as cuRAND writes it
constexpr float kTwoPow32Inv2Pi = 2.3283064e-10f * 6.2831855f;

// curand_uniform's map: (0, 1].
CUEBM_HD float uniform_from_bits(uint32_t w) {
  return static_cast<float>(w) * kTwoPow32Inv + kTwoPow32Inv / 2.0f;
}

CUEBM_HD void box_muller(uint32_t a, uint32_t b, float& n0, float& n1) {
  const float u = static_cast<float>(a) * kTwoPow32Inv + kTwoPow32Inv / 2.0f;
  const float v = static_cast<float>(b) * kTwoPow32Inv2Pi + kTwoPow32Inv2Pi / 2.0f;
#if defined(__CUDA_ARCH__)
  const float r = sqrtf(-2.0f * logf(u));
  float s, c;
  __sincosf(v, &s, &c);
#else
  const float r = std::sqrt(-2.0f * std::log(u));
  const float s = std::sin(v), c = std::cos(v);
#endif
  n0 = r * s;
  n1 = r * c;
}

struct Normal4 {
  float v[4];
};

// curand_normal4 on the block: two Box-Muller pairs.
CUEBM_HD Normal4 normal4_from_block(U32x4 b) {
  Normal4 n;
  box_muller(b.x, b.y, n.v[0], n.v[1]);
  box_muller(b.z, b.w, n.v[2], n.v[3]);
  return n;
}

// Standard normal number `index` of (seed, subsequence), index counted in normals:
// normals 4j..4j+3 come from block j.
CUEBM_HD float philox_normal(uint64_t seed, uint64_t subsequence, uint64_t index) {
  const Normal4 n = normal4_from_block(philox_block(seed, subsequence, index / 4));
  return n.v[index % 4];
}

CUEBM_HD float philox_uniform(uint64_t seed, uint64_t subsequence, uint64_t index) {
  const U32x4 b = philox_block(seed, subsequence, index / 4);
  const uint32_t w[4] = {b.x, b.y, b.z, b.w};
  return uniform_from_bits(w[index % 4]);
}

// Blocks of Philox output one Langevin step consumes per chain: ceil(dim / 4).
CUEBM_HD uint64_t blocks_per_step(int dim) { return (static_cast<uint64_t>(dim) + 3) / 4; }

}  // namespace cuebm::detail
