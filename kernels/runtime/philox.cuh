// Philox4x32-10 (Salmon et al., SC'11) and cuRAND's Box-Muller on top of it.
// Counter layout follows curand_init(seed, subsequence, offset): the 128-bit counter is
// (block index within the subsequence as the low 64 bits, subsequence as the high 64 bits),
// the key is the seed (low word, high word). See shared/spec/rng.md.
#pragma once

#include <cmath>
#include <cstdint>

#include "cuebm/runtime/device_random.hpp"
#include "kernels/runtime/hd.cuh"

namespace cuebm::detail {

// Philox itself and cuRAND's Box-Muller live in the public header, so a user's device code
// draws the same noise (include/cuebm/runtime/device_random.hpp).
using U32x4 = rng::Philox4;
using rng::box_muller;
using rng::philox4x32_10;
using rng::philox_block;

constexpr float kTwoPow32Inv = 2.3283064e-10f;  // 2^-32, as cuRAND writes it
constexpr float kTwoPow32Inv2Pi = 2.3283064e-10f * 6.2831855f;

// curand_uniform's map: (0, 1].
CUEBM_HD float uniform_from_bits(uint32_t w) {
  return static_cast<float>(w) * kTwoPow32Inv + kTwoPow32Inv / 2.0f;
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
