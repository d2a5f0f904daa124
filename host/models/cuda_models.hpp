// Energies on the CUDA backend (kernels/models/): E(x), dE/dx and grid energies of an Mlp or an
// AnalyticEnergy (any other Energy throws InvalidArgument), and the MLP path's test knobs.
// Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
#pragma once

#include <cstdint>
#include <string>

#include "cuebm/models/energy.hpp"
#include "cuebm/models/mlp.hpp"

namespace cuebm::detail {

// E(x) (and dE/dx when grad is not null) for n rows on `device`; host pointers in and out.
void energy_cuda(const Energy& energy, const float* x, int64_t n, float* e, int device);
void gradient_cuda(const Energy& energy, const float* x, int64_t n, float* grad, float* e,
                   int device);
// Energies on grid_points(grid) order: point (i, j) at j * nx + i is (x_i, y_j) with
// x_i = xmin + i (xmax - xmin) / (nx - 1) computed in double (x_{nx-1} = xmax). 2-D energies.
void grid_energy_cuda(const Energy& energy, double xmin, double xmax, int nx, double ymin,
                      double ymax, int ny, float* e, int device);

// ---- Test knobs (tests/test_cuda.cpp) ----
// Threads per block of the chain and energy kernels (a multiple of 32, 32..1024); 0 restores
// the automatic choice. Results must not depend on it.
void set_cuda_block_size_for_testing(int threads);
// Which MLP path the device takes for this model: "fused<W>" or "general".
std::string cuda_mlp_path(const Mlp& mlp, int device);
// Forces the general (runtime-width) MLP path even when a fused kernel exists.
void force_cuda_general_path_for_testing(bool force);

}  // namespace cuebm::detail
