// The analytic energies on the device, with the per-row interface of device_model.cuh.
#pragma once

#include <cuda_runtime.h>

#include "kernels/models/analytic.cuh"

namespace cuebm::detail {

// Analytic energies: x and dE/dx in global memory in column layout (stride ld).
struct AnalyticModel {
  AnalyticParams p;  // mean/precision are device pointers
  float* xcol;
  float* gcol;
  int ld;

  __device__ float& x(int i) { return xcol[i * ld]; }
  __device__ float forward() { return analytic_energy_grad(p, xcol, ld, gcol, ld); }
  __device__ float energy_only() { return analytic_energy_grad(p, xcol, ld, nullptr, 0); }
  template <class F>
  __device__ void backward(F&& f) {
    const int q_blocks = (p.dim + 3) / 4;
    for (int q = 0; q < q_blocks; ++q) {
      float g[4];
#pragma unroll
      for (int c = 0; c < 4; ++c) g[c] = 4 * q + c < p.dim ? gcol[(4 * q + c) * ld] : 0.0f;
      f(q, make_float4(g[0], g[1], g[2], g[3]));
    }
  }
};

}  // namespace cuebm::detail
