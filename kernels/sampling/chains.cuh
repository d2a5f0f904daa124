// Langevin chains on the device, for every model: the arguments of a launch (ChainArgs), the
// per-row chain loop (run_chain) and its update, shared by the fused, team, general and
// analytic chain kernels.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "cuebm/sampling/langevin.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/langevin.cuh"

namespace cuebm::detail {

// Langevin chains (kernels/sampling/langevin_kernels.cu). Rows are addressed by their index in the
// whole call so that chain ids, the noise buffer, the trajectory and the diagnostics groups do
// not depend on how the rows are split into launches.
struct ChainArgs {
  float* x = nullptr;  // n_total x dim, row-major, updated in place
  int64_t n_total = 0;
  int dim = 0;
  int n_steps = 0;
  const float* eta = nullptr;         // device, per step
  const float* noise_coef = nullptr;  // device, per step
  uint64_t seed = 0, step_offset = 0, first_chain = 0;
  bool clamp = false;
  float clamp_min = 0, clamp_max = 0;
  int thin = 0;
  float* trajectory = nullptr;  // (n_steps / thin) x n_total x dim, or null
  // Per group of 32 rows g: n_steps x (2 dim + 1) doubles {sum x, sum x^2, sum E(x_{t+1})}.
  double* diag = nullptr;
  const float* noise = nullptr;  // n_steps x n_total x dim, or null (Philox)
};

// ChainArgs for the n rows of x (row-major, dim columns) over n_steps steps of per-step eta and
// noise coefficients on the device, with o's seed, step and chain offsets and clamping.
inline ChainArgs make_chain_args(const LangevinOptions& o, float* x, int64_t n, int dim,
                                 int n_steps, const float* eta, const float* coef) {
  ChainArgs a;
  a.x = x;
  a.n_total = n;
  a.dim = dim;
  a.n_steps = n_steps;
  a.eta = eta;
  a.noise_coef = coef;
  a.seed = o.seed;
  a.step_offset = o.step_offset;
  a.first_chain = o.first_chain;
  a.clamp = o.clamp_min || o.clamp_max;
  a.clamp_min = o.clamp_min.value_or(-INFINITY);
  a.clamp_max = o.clamp_max.value_or(INFINITY);
  return a;
}

// Runs the chains of all n_total rows; scratch as eval_scratch_floats(m, n_total).
void launch_chains(const DeviceModel& m, const ChainArgs& a, float* scratch, int64_t scratch_floats,
                   cudaStream_t stream);

__device__ inline double warp_sum_lanes(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;  // every lane holds the same sum (IEEE addition commutes)
}

// One Langevin update of coordinates 4q .. 4q + 3 of `row` at step t, g their dE/dx: noise from
// the buffer when given, else Philox keyed by (chain, step, q); clamped when asked.
template <class Model>
__device__ void langevin_update_quad(Model& m, const ChainArgs& a, int64_t row, bool valid, int t,
                                     float eta, float coef, int q, float4 g) {
  const int D = a.dim;
  float4 eps;
  if (a.noise) {
    const float* nrow = a.noise + (static_cast<int64_t>(t) * a.n_total + row) * D;
    eps.x = valid && 4 * q < D ? nrow[4 * q] : 0.0f;
    eps.y = valid && 4 * q + 1 < D ? nrow[4 * q + 1] : 0.0f;
    eps.z = valid && 4 * q + 2 < D ? nrow[4 * q + 2] : 0.0f;
    eps.w = valid && 4 * q + 3 < D ? nrow[4 * q + 3] : 0.0f;
  } else {
    const uint64_t step = a.step_offset + static_cast<uint64_t>(t);
    const Normal4 n4 =
        langevin_noise4(a.seed, a.first_chain + static_cast<uint64_t>(row), step, D, q);
    eps = make_float4(n4.v[0], n4.v[1], n4.v[2], n4.v[3]);
  }
  auto update = [&](int i, float gi, float ei) {
    if (i < D) {
      float v = langevin_update(m.x(i), gi, eta, coef, ei);
      if (a.clamp) v = clampf(v, a.clamp_min, a.clamp_max);
      m.x(i) = v;
    }
  };
  update(4 * q, g.x, eps.x);
  update(4 * q + 1, g.y, eps.y);
  update(4 * q + 2, g.z, eps.z);
  update(4 * q + 3, g.w, eps.w);
}

// The chain loop of one row, shared by every model. All 32 lanes of a warp call it (rows past
// the end run on zeros and write nothing) so the diagnostics' shuffles see full warps.
template <class Model>
__device__ void run_chain(Model& m, const ChainArgs& a, int64_t row, bool valid) {
  const int D = a.dim;
  const int stride = 2 * D + 1;
  const int64_t group = row >> 5;
  const bool lane0 = (threadIdx.x & 31) == 0;
  for (int t = 0; t < a.n_steps; ++t) {
    const float e = m.forward();
    if (a.diag && t > 0) {
      const double s = warp_sum_lanes(valid ? static_cast<double>(e) : 0.0);
      if (lane0) a.diag[(group * a.n_steps + (t - 1)) * stride + 2 * D] = s;
    }
    const float eta = a.eta[t], coef = a.noise_coef[t];
    m.backward(
        [&](int q, float4 g) { langevin_update_quad(m, a, row, valid, t, eta, coef, q, g); });
    if (a.diag) {
      double* out = a.diag + (group * a.n_steps + t) * stride;
      for (int d = 0; d < D; ++d) {
        const double v = valid ? static_cast<double>(m.x(d)) : 0.0;
        const double s = warp_sum_lanes(v), s2 = warp_sum_lanes(v * v);
        if (lane0) {
          out[d] = s;
          out[D + d] = s2;
        }
      }
    }
    if (a.trajectory && (t + 1) % a.thin == 0 && valid) {
      float* tr = a.trajectory + (static_cast<int64_t>((t + 1) / a.thin - 1) * a.n_total + row) * D;
      for (int d = 0; d < D; ++d) tr[d] = m.x(d);
    }
  }
  if (a.diag && a.n_steps > 0) {
    const float e = m.forward();
    const double s = warp_sum_lanes(valid ? static_cast<double>(e) : 0.0);
    if (lane0) a.diag[(group * a.n_steps + (a.n_steps - 1)) * stride + 2 * D] = s;
  }
  if (valid)
    for (int d = 0; d < D; ++d) a.x[row * D + d] = m.x(d);
}

}  // namespace cuebm::detail
