// The Langevin noise of one block of kRowBlock chains, vectorised across the rows: the same
// Philox4x32-10 blocks and Box-Muller pairs as kernels/runtime/philox.cuh (curand_normal4), with
// branch-free float approximations of log, sqrt and sincos in place of libm. The normals
// agree with the scalar libm-based box_muller to within 2e-6 * max(1, |value|).
#pragma once

#include <cstdint>

namespace cuebm::detail {

// Fills eps_t[d * kRowBlock + r] (d < dim, r < rows) with the normals the scalar sampler draws
// for coordinate d of chain first_chain_of_block + r at `step`: element d % 4 of
// normal4_from_block(philox_block(seed, chain, step * ceil(dim / 4) + d / 4)). Lanes r >= rows
// hold finite values of no meaning. The second Box-Muller pair of the last Philox block is
// skipped when dim does not use it.
void langevin_noise_block(uint64_t seed, uint64_t first_chain_of_block, uint64_t step, int dim,
                          int rows, float* eps_t);

// The vectorised building blocks on kRowBlock lanes, exposed for tests.
// log(x) for normal positive finite x.
void noise_log_lanes(const float* x, float* out);
// sqrt(x) for finite x >= 0.
void noise_sqrt_lanes(const float* x, float* out);
// sin(v) and cos(v) for v in [0, 2 pi] (accurate for |v| up to a few multiples of 2 pi).
void noise_sincos_lanes(const float* v, float* s, float* c);

}  // namespace cuebm::detail
