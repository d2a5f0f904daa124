// The per-chain math of MALA and HMC (include/cuebm/sampling/mcmc.hpp), shared by the CPU
// backend (host/sampling/mcmc.cpp) and the CUDA kernels (kernels/sampling/mcmc_kernels.cu), so
// that both take the same decisions from the same numbers. Sums over coordinates are in double,
// in increasing coordinate order.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/runtime/hd.cuh"
#include "kernels/runtime/philox.cuh"

namespace cuebm::detail {

// Philox blocks one MCMC step of a dim-D chain consumes: ceil(D / 4) for the Gaussians, one for
// the uniform. Step t of chain c uses blocks t * mcmc_blocks_per_step(D) + ... of subsequence c.
CUEBM_HD uint64_t mcmc_blocks_per_step(int dim) { return blocks_per_step(dim) + 1; }

// Gaussians 4q .. 4q + 3 of (chain, step).
CUEBM_HD Normal4 mcmc_normal4(uint64_t seed, uint64_t chain, uint64_t step, int dim, int q) {
  return normal4_from_block(
      philox_block(seed, chain, step * mcmc_blocks_per_step(dim) + static_cast<uint64_t>(q)));
}

// The uniform in (0, 1] of (chain, step): word 0 of the step's last block.
CUEBM_HD float mcmc_uniform(uint64_t seed, uint64_t chain, uint64_t step, int dim) {
  const U32x4 b =
      philox_block(seed, chain, step * mcmc_blocks_per_step(dim) + blocks_per_step(dim));
  return uniform_from_bits(b.x);
}

// Metropolis acceptance with probability min(1, exp(log_alpha)) for u uniform in (0, 1]:
// log u <= log_alpha. A NaN log_alpha (a non-finite proposal) rejects.
CUEBM_HD bool mcmc_accept(float u, double log_alpha) {
  return log(static_cast<double>(u)) <= log_alpha;
}

// MALA's proposal, Langevin's step x - eta g + coef eps (coef = sqrt(2 eta) sigma), with
// explicit fmaf so that the CPU and the GPU round it the same way.
CUEBM_HD float mala_proposal(float x, float g, float eta, float coef, float eps) {
  return fmaf(coef, eps, fmaf(-eta, g, x));
}

// MALA's proposal density terms: acc + (to - from + eta g(from))^2 for one coordinate, summed
// over coordinates into the exponent of q(to | from) = N(to; from - eta g(from), 2 eta T I).
// Both the difference and the accumulation are explicit fma, so that every compiler (host
// -ffp-contract with any -march, nvcc --fmad) rounds the same way.
CUEBM_HD double mala_add_square(double acc, float to, float from, float eta, float g_from) {
  const double d = fma(static_cast<double>(eta), static_cast<double>(g_from),
                       static_cast<double>(to) - static_cast<double>(from));
  return fma(d, d, acc);
}

// log of the MH ratio for target exp(-E / T): -(e1 - e0) / T - (rev - fwd) / (4 eta T), fwd the
// sum of mala_add_square(x1, x0, eta, g0) and rev of mala_add_square(x0, x1, eta, g1).
CUEBM_HD double mala_log_alpha(double e0, double e1, double fwd, double rev, double eta,
                               double temperature) {
  return -(e1 - e0) / temperature - (rev - fwd) / (4.0 * eta * temperature);
}

// HMC: forces are clamped to +-1e6 and H0 - H1 to +-50 (TorchEBM's guards).
CUEBM_HD float hmc_force(float g) {
  constexpr float kMaxForce = 1e6f;
  return g < -kMaxForce ? -kMaxForce : (g > kMaxForce ? kMaxForce : g);
}
// Explicit fmaf: the same rounding on every compiler.
CUEBM_HD float hmc_half_kick(float p, float eps, float g) {
  return fmaf(-0.5f * eps, hmc_force(g), p);
}
CUEBM_HD float hmc_drift(float x, float p, float eps, float mass) { return fmaf(eps, p / mass, x); }
// p_i^2 / (2 m_i), one term of the kinetic energy.
CUEBM_HD double hmc_kinetic(float p, float mass) {
  return 0.5 * static_cast<double>(p) * static_cast<double>(p) / static_cast<double>(mass);
}
CUEBM_HD double hmc_log_alpha(double h0, double h1) {
  const double d = h0 - h1;
  if (d != d) return d;  // NaN: rejected by mcmc_accept
  return d < -50.0 ? -50.0 : (d > 50.0 ? 50.0 : d);
}

}  // namespace cuebm::detail
