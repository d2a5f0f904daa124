// User-defined energies: Langevin chains on an energy written as a plain C++ type, run on the
// CPU backend by langevin_chain<Energy> (any C++ compiler) and on a CUDA device by
// langevin_chain_cuda<Energy> (include/cuebm/sampling/custom_energy_cuda.hpp, nvcc only).
//
// The contract an Energy type must meet (checked by the concept cuebm::CustomEnergy):
//   struct Ring {
//     float r, s;  // parameters: plain data members
//     CUEBM_HOST_DEVICE float energy(const float* x) const;      // E(x), x holds dim floats
//     CUEBM_HOST_DEVICE void grad(const float* x, float* g) const;  // g[0..dim) = dE/dx
//   };
//  - trivially copyable: the CUDA backend passes the object to its kernel by value, so it must
//    not own host memory (no std::vector, no virtual functions); pointers it holds must point
//    to memory the device can read when it runs on the device;
//  - energy and grad are const, thread-safe, never throw, and depend only on x and the
//    object: chains call them concurrently, one row at a time;
//  - grad must write every g[d], d < dim; it may assume x and g do not alias. On the CUDA
//    backend x and g live in the calling thread's registers/local memory (at most MaxDim
//    floats, a template parameter of langevin_chain_cuda, 32 by default);
//  - the dimension is the `dim` argument of the call (the type may ignore it or store it);
//  - CUEBM_HOST_DEVICE (cuebm/host_device.hpp) expands to __host__ __device__ under nvcc and
//    to nothing otherwise, so the same type compiles for both backends.
// energy() is not called by the chains; it is part of the contract so that users and tests can
// evaluate the density the chains target, exp(-E(x) / sigma^2).
//
// The chains are the library's Langevin chains (cuebm/langevin.hpp): x <- x - eta grad E(x) +
// sqrt(2 eta) sigma eps, eps the Philox normal of (seed, first_chain + chain, step_offset +
// step) exactly as langevin_sample draws it. On the CPU backend the result equals
// langevin_sample on an Energy subclass that computes the same gradient, bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/runtime/host_device.hpp"
#include "cuebm/sampling/langevin.hpp"

namespace cuebm {

template <class E>
concept CustomEnergy = std::is_trivially_copyable_v<E> &&
    requires(const E& e, const float* x, float* g) {
  { e.energy(x) } -> std::convertible_to<float>;
  e.grad(x, g);
};

namespace detail {

// Per-step arrays and clamp bounds of a custom-energy chain
// (host/sampling/custom_energy_support.cpp).
struct CustomChainSteps {
  std::vector<float> eta, noise_coef;  // per step; noise_coef = sqrt(2 eta) sigma
  double temperature = 0;              // sigma^2 of the last step
  bool clamp = false;
  float clamp_min = 0, clamp_max = 0;
};

// Validates the options (as langevin_sample does) and dim >= 1, n >= 1; throws InvalidArgument
// naming `who` and the bad value. Options a backend does not support are rejected by it.
CustomChainSteps custom_chain_steps(const LangevinOptions& options, int dim, int64_t n,
                                    const char* who);
// Fills res (n_chains, dim, samples from x0 or N(0, I) keyed by seed/first_chain, trajectory
// storage when options.thin > 0, temperature). Throws InvalidArgument for a non-finite x0 or
// diagnostics (not supported for custom energies).
CustomChainSteps prepare_custom_chain(const LangevinOptions& options, int dim, const float* x0,
                                      int64_t n, const char* who, LangevinResult& res);
// The CPU sampler's noise for kRowBlock chains: eps_t[d * kRowBlock + r] for chain
// first_chain + r, r < rows (see host/sampling/noise_block.hpp); eps_t holds dim * kRowBlock
// floats.
void custom_noise_block(uint64_t seed, uint64_t first_chain, uint64_t step, int dim, int rows,
                        float* eps_t);
// Throws NumericalError naming the first chain of res whose state is not finite.
void check_custom_chain_finite(const LangevinResult& res, int n_steps, const char* who);

}  // namespace detail

// Runs n Langevin chains of dimension dim on the CPU backend (OpenMP, in parallel over blocks
// of kRowBlock chains; results do not depend on the thread count). x0: n x dim row-major, or
// null for N(0, I) as langevin_sample. Supports every LangevinOptions field except diagnostics
// (InvalidArgument). Throws InvalidArgument for n < 1, dim < 1, bad options or a non-finite
// x0, NumericalError when a chain diverges.
template <CustomEnergy Energy>
LangevinResult langevin_chain(const Energy& energy, int dim, const float* x0, int64_t n,
                              const LangevinOptions& options) {
  LangevinResult res;
  const detail::CustomChainSteps steps =
      detail::prepare_custom_chain(options, dim, x0, n, "langevin_chain", res);
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
  const std::size_t row_floats = static_cast<std::size_t>(dim);
  float* samples = res.samples.data();
  float* trajectory = res.trajectory.empty() ? nullptr : res.trajectory.data();
  const float lo = steps.clamp_min, hi = steps.clamp_max;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (int64_t b = 0; b < blocks; ++b) {
    std::vector<float> eps_t(row_floats * kRowBlock), g(row_floats);
    const int64_t row0 = b * kRowBlock, rows = std::min<int64_t>(kRowBlock, n - row0);
    for (int t = 0; t < options.n_steps; ++t) {
      const float eta = steps.eta[t], coef = steps.noise_coef[t];
      if (!options.noise)
        detail::custom_noise_block(options.seed, options.first_chain + row0,
                                   options.step_offset + t, dim, static_cast<int>(rows),
                                   eps_t.data());
      for (int64_t r = 0; r < rows; ++r) {
        float* x = samples + (row0 + r) * dim;
        energy.grad(x, g.data());
        const float* eps_row = options.noise
                                   ? options.noise + (static_cast<int64_t>(t) * n + row0 + r) * dim
                                   : nullptr;
        for (int d = 0; d < dim; ++d) {
          const float eps = eps_row ? eps_row[d] : eps_t[d * kRowBlock + r];
          float xi = x[d] - eta * g[d] + coef * eps;
          if (steps.clamp) xi = xi < lo ? lo : (xi > hi ? hi : xi);
          x[d] = xi;
        }
      }
      if (trajectory && (t + 1) % options.thin == 0)
        std::copy(samples + row0 * dim, samples + (row0 + rows) * dim,
                  trajectory + ((t + 1) / options.thin - 1) * n * dim + row0 * dim);
    }
  }
  detail::check_custom_chain_finite(res, options.n_steps, "langevin_chain");
  return res;
}

}  // namespace cuebm
