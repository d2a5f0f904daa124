// The Langevin noise as a header: Philox4x32-10 and cuRAND's Box-Muller (curand_normal4), the
// same functions as the library's kernels/runtime/philox.cuh, for device code the user compiles
// (include/cuebm/sampling/custom_energy_cuda.hpp). Host and device agree on the Philox bits exactly
// and on the normals to about 1e-6 (the device uses __sincosf, see shared/spec/rng.md).
#pragma once

#include <cmath>
#include <cstdint>

#include "cuebm/runtime/host_device.hpp"

namespace cuebm::rng {

struct Philox4 {
  uint32_t x, y, z, w;
};

// Philox4x32-10 on counter c with key (k0, k1).
CUEBM_HOST_DEVICE inline Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c.x;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c.z;
    c = Philox4{static_cast<uint32_t>(p1 >> 32) ^ c.y ^ k0, static_cast<uint32_t>(p1),
                static_cast<uint32_t>(p0 >> 32) ^ c.w ^ k1, static_cast<uint32_t>(p0)};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

// What curand4 returns after curand_init(seed, subsequence, 4 * block).
CUEBM_HOST_DEVICE inline Philox4 philox_block(uint64_t seed, uint64_t subsequence, uint64_t block) {
  const Philox4 ctr{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                    static_cast<uint32_t>(subsequence), static_cast<uint32_t>(subsequence >> 32)};
  return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// cuRAND's Box-Muller pair from two words.
CUEBM_HOST_DEVICE inline void box_muller(uint32_t a, uint32_t b, float& n0, float& n1) {
  constexpr float kInv = 2.3283064e-10f;  // 2^-32
  constexpr float kInv2Pi = 2.3283064e-10f * 6.2831855f;
  const float u = static_cast<float>(a) * kInv + kInv / 2.0f;
  const float v = static_cast<float>(b) * kInv2Pi + kInv2Pi / 2.0f;
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

// The noise of Langevin step `step` of chain `chain` for coordinates 4q .. 4q + 3 of a dim-D
// chain: curand_normal4 after curand_init(seed, chain, 4 * (step * ceil(D / 4) + q)).
CUEBM_HOST_DEVICE inline void langevin_noise4(uint64_t seed, uint64_t chain, uint64_t step, int dim,
                                              int q, float out[4]) {
  const uint64_t blocks = (static_cast<uint64_t>(dim) + 3) / 4;
  const Philox4 b = philox_block(seed, chain, step * blocks + static_cast<uint64_t>(q));
  box_muller(b.x, b.y, out[0], out[1]);
  box_muller(b.z, b.w, out[2], out[3]);
}

}  // namespace cuebm::rng
