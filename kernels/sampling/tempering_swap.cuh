// The replica-exchange decision of parallel tempering (include/cuebm/sampling/tempering.hpp),
// shared by the CPU backend (host/sampling/tempering.cpp) and the CUDA kernels
// (kernels/sampling/tempering_kernels.cu), so that both draw the same uniform for every pair of
// every round and decide from the same double-precision exponent.
#pragma once

#include <cstdint>

#include "kernels/runtime/hd.cuh"
#include "kernels/runtime/philox.cuh"

namespace cuebm::detail {

// Swap decisions use a Philox subsequence per chain, far from every MALA chain id.
constexpr uint64_t kSwapStreamBase = uint64_t{1} << 62;

// The uniform in (0, 1] that decides pair (r, r + 1) of chain `chain` (0-based within the run)
// in swap round `round`.
CUEBM_HD float swap_uniform(uint64_t seed, uint64_t first_chain, uint64_t chain, uint64_t round,
                            int n_replicas, int r) {
  return philox_uniform(seed, kSwapStreamBase + first_chain + chain,
                        round * static_cast<uint64_t>(n_replicas) + static_cast<uint64_t>(r));
}

// log of the exchange ratio of states with energies e_lo (at t_lo) and e_hi (at t_hi).
CUEBM_HD double swap_log_alpha(double t_lo, double t_hi, double e_lo, double e_hi) {
  return (1.0 / t_lo - 1.0 / t_hi) * (e_lo - e_hi);
}

}  // namespace cuebm::detail
