// One Langevin update and its noise, shared by both backends.
#pragma once

#include <cstdint>

#include "kernels/runtime/hd.cuh"
#include "kernels/runtime/philox.cuh"

namespace cuebm::detail {

// x - eta * g + noise_coef * eps, noise_coef = sqrt(2 eta) * sigma.
CUEBM_HD float langevin_update(float x, float g, float eta, float noise_coef, float eps) {
  return x - eta * g + noise_coef * eps;
}

CUEBM_HD float clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

// The Philox block that holds coordinates 4q..4q+3 of (chain, step) for a dim-D chain: the
// block curand_normal4 reads after curand_init(seed, chain, 4 * (step * ceil(D/4) + q)).
CUEBM_HD Normal4 langevin_noise4(uint64_t seed, uint64_t chain, uint64_t step, int dim, int q) {
  return normal4_from_block(philox_block(seed, chain, step * blocks_per_step(dim) + q));
}

}  // namespace cuebm::detail
