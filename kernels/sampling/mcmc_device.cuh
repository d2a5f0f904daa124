// Device helpers shared by the MCMC kernels (mcmc_kernels.cu: MALA and HMC; tempering_kernels.cu;
// ais_kernels.cu): the per-row model of a launch, one energy-and-gradient evaluation, the chain's
// random numbers, and the load / MALA move / accept-or-restore / store of a row whose state lives
// in global memory in column layout (value k of local row r at [k * ld + r]).
#pragma once

#include <cstdint>

#include "kernels/models/device_model.cuh"
#include "kernels/sampling/mcmc.cuh"

namespace cuebm::detail {

// The per-row model of a launch, built by each thread over its column of the model's scratch:
// the general MLP (every MLP on the MCMC paths) with activation A, or an analytic energy.
template <Activation A>
struct GenericRows {
  GenericNet net;
  __device__ GenericModel<A> model(float* scratch, int64_t local, int64_t ld, int dim) const {
    return GenericModel<A>{net, scratch + local, ld, dim};
  }
};
struct AnalyticRows {
  AnalyticParams p;
  __device__ AnalyticModel model(float* scratch, int64_t local, int64_t ld, int dim) const {
    return AnalyticModel{p, scratch + local, scratch + static_cast<int64_t>(dim) * ld + local,
                         static_cast<int>(ld)};
  }
};

// E at the model's x times `scale`, scale * dE/dx into column array g (stride ld); whether both
// are finite after scaling. scale is 1 except for HMC at a temperature (x * 1 is exact).
template <class Model>
__device__ float energy_gradient(Model& m, float* g, int64_t ld, int dim, bool& finite,
                                 float scale = 1.0f) {
  const float e = m.forward() * scale;
  finite = isfinite(e);
  m.backward([&](int q, float4 v) {
    const float c[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (4 * q + k >= dim) break;
      const float gk = c[k] * scale;
      g[(4 * q + k) * ld] = gk;
      finite = finite && isfinite(gk);
    }
  });
  return e;
}

// The D Gaussians and the uniform of (row, step t): from a caller's buffer (n_total rows' dim + 1
// floats per step, step-major) or from Philox keyed by (seed, first_chain + row, step_offset + t),
// as host/sampling/mcmc_draws.hpp draws them on the CPU.
struct DeviceDraws {
  const float* noise = nullptr;
  int64_t n_total = 0;
  int dim = 0;
  uint64_t seed = 0, first_chain = 0, step_offset = 0;

  // Gaussians 4q .. 4q + 3 (entries past dim are 0).
  __device__ Normal4 normal4(int64_t row, uint64_t t, int q) const {
    if (noise) {
      const float* src = at(row, t);
      Normal4 n;
      for (int c = 0; c < 4; ++c) n.v[c] = 4 * q + c < dim ? src[4 * q + c] : 0.0f;
      return n;
    }
    return mcmc_normal4(seed, first_chain + static_cast<uint64_t>(row), step_offset + t, dim, q);
  }
  __device__ float uniform(int64_t row, uint64_t t) const {
    if (noise) return at(row, t)[dim];
    return mcmc_uniform(seed, first_chain + static_cast<uint64_t>(row), step_offset + t, dim);
  }

 private:
  __device__ const float* at(int64_t row, uint64_t t) const {
    return noise + (static_cast<int64_t>(t) * n_total + row) * (dim + 1);
  }
};

// The row's point src[0 .. dim) into x0 and the model's x.
template <class Model>
__device__ void load_row(Model& m, const float* src, float* x0, int64_t ld, int dim) {
  for (int i = 0; i < dim; ++i) x0[i * ld] = m.x(i) = src[i];
}

// x0 (column layout) into dst[0 .. dim).
__device__ inline void store_row(float* dst, const float* x0, int64_t ld, int dim) {
  for (int i = 0; i < dim; ++i) dst[i] = x0[i * ld];
}

// Keeps the proposal at the model's x (energy e1, gradient g1) when accepted, else puts x0 back
// into the model. Returns accept.
template <class Model>
__device__ bool settle(Model& m, bool accept, float* x0, float* g0, const float* g1, int64_t ld,
                       int dim, float& e0, float e1) {
  if (accept) {
    for (int i = 0; i < dim; ++i) {
      x0[i * ld] = m.x(i);
      g0[i * ld] = g1[i * ld];
    }
    e0 = e1;
  } else {
    for (int i = 0; i < dim; ++i) m.x(i) = x0[i * ld];
  }
  return accept;
}

// One MALA step at `temperature` with step eta and noise coefficient coef, the draws of
// (row, t): the arithmetic of host/sampling/mala_step.hpp in the same order. The state (x0, its
// gradient g0 and energy e0) is updated when the proposal is accepted; g1 is scratch. Returns
// whether it was.
template <class Model>
__device__ bool mala_move(Model& m, const DeviceDraws& draws, int64_t row, uint64_t t, float eta,
                          float coef, double temperature, float* x0, float* g0, float* g1,
                          int64_t ld, float& e0) {
  const int D = draws.dim;
  double fwd = 0;
  for (int q = 0; 4 * q < D; ++q) {
    const Normal4 eps = draws.normal4(row, t, q);
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      if (4 * q + c >= D) break;
      const int i = 4 * q + c;
      const float x1 = mala_proposal(x0[i * ld], g0[i * ld], eta, coef, eps.v[c]);
      fwd = mala_add_square(fwd, x1, x0[i * ld], eta, g0[i * ld]);
      m.x(i) = x1;
    }
  }
  bool ok = true;
  const float e1 = energy_gradient(m, g1, ld, D, ok);
  double rev = 0;
  for (int i = 0; i < D; ++i) {
    rev = mala_add_square(rev, x0[i * ld], m.x(i), eta, g1[i * ld]);
    ok = ok && isfinite(m.x(i));
  }
  const double log_alpha = mala_log_alpha(e0, e1, fwd, rev, eta, temperature);
  const bool accept = ok && mcmc_accept(draws.uniform(row, t), log_alpha);
  return settle(m, accept, x0, g0, g1, ld, D, e0, e1);
}

// The local row of a one-thread-per-row launch.
__device__ inline int64_t launch_local_row() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}

}  // namespace cuebm::detail
