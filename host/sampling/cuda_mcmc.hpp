// MALA and HMC on the CUDA backend (kernels/sampling/mcmc_kernels.cu), called by mala_sample and
// hmc_sample with validated options and the per-step arrays.
// Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/sampling/mcmc.hpp"

namespace cuebm::detail {

// x0: the initial state (host, n x dim). Fills res.samples, res.energy, res.acceptance and
// res.mean_acceptance; throws InvalidArgument when an initial energy is not finite.
void mala_sample_cuda(const Energy& energy, const float* x0, int64_t n, const MalaOptions& options,
                      const std::vector<float>& eta, const std::vector<float>& noise_coef,
                      const std::vector<float>& temperature, int device, McmcResult& res);
void hmc_sample_cuda(const Energy& energy, const float* x0, int64_t n, const HmcOptions& options,
                     const std::vector<float>& step_size, const std::vector<float>& mass,
                     int device, McmcResult& res);

}  // namespace cuebm::detail
