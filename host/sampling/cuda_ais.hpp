// Annealed importance sampling on the CUDA backend (kernels/sampling/ais_kernels.cu), called by
// ais_log_partition (host/sampling/ais.cpp) with validated options.
// Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/sampling/ais.hpp"
#include "host/runtime/device_reduce.hpp"

namespace cuebm::detail {

// Runs the options.n_chains AIS chains of `energy` on CUDA device `device` from x0 (host,
// n_chains x dim, the N(0, I) initial state), one thread per chain through all temperatures.
// Fills log_weights (n_chains) and stats (their log-mean-exp reduction, made on the device) and
// returns the number of accepted MALA proposals. Throws InvalidArgument for an energy the device
// does not support.
int64_t ais_log_weights_cuda(const Energy& energy, const float* x0, const AisOptions& options,
                             int device, std::vector<double>& log_weights, LogWeightStats& stats);

}  // namespace cuebm::detail
