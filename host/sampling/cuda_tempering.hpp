// Parallel tempering on the CUDA backend (kernels/sampling/tempering_kernels.cu), called by
// parallel_tempering (host/sampling/tempering.cpp) with validated options.
// Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/sampling/tempering.hpp"

namespace cuebm::detail {

// A chain's replicas are threads of one block: at most this many per chain on the GPU.
constexpr int kMaxCudaReplicas = 64;

// Accepted MALA moves at each temperature and accepted swaps of each pair (r, r + 1), summed
// over the chains.
struct TemperingCounts {
  std::vector<int64_t> moves;  // R
  std::vector<int64_t> swaps;  // R - 1
};

// x_init: (n_chains * R) x dim, replica r of chain c in row c * R + r; temperatures: the ladder
// (R entries); coef: sqrt(2 eta T_r) as float. Fills res.samples and res.energy and returns the
// counts. Throws InvalidArgument for more than kMaxCudaReplicas replicas, an energy the device
// has no model of, or a non-finite initial energy.
TemperingCounts parallel_tempering_cuda(const Energy& energy, const std::vector<float>& x_init,
                                        int64_t n_chains, const TemperingOptions& options,
                                        const std::vector<double>& temperatures,
                                        const std::vector<float>& coef, int device,
                                        TemperingResult& res);

}  // namespace cuebm::detail
