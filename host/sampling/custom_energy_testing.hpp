// Energies written against the custom-energy contract (cuebm/custom_energy.hpp), shared by the
// tests and kernels/sampling/custom_energy_instances.cu, which instantiates the CUDA template for
// them.
#pragma once

#include <cmath>
#include <cstdint>

#include "cuebm/runtime/host_device.hpp"
#include "cuebm/sampling/langevin.hpp"

namespace cuebm::detail {

// k/2 |x|^2: the same gradient, k x_i, as AnalyticEnergy::harmonic computes it.
struct HarmonicTestEnergy {
  int dim;
  float k;
  CUEBM_HOST_DEVICE float energy(const float* x) const {
    float e = 0;
    for (int i = 0; i < dim; ++i) e += x[i] * x[i];
    return 0.5f * k * e;
  }
  CUEBM_HOST_DEVICE void grad(const float* x, float* g) const {
    for (int i = 0; i < dim; ++i) g[i] = k * x[i];
  }
};

// A ring in 2-D: E(x) = (|x| - r)^2 / (2 s^2); the gradient is 0 at the origin.
struct RingTestEnergy {
  float r, s;
  CUEBM_HOST_DEVICE float energy(const float* x) const {
    const float d = sqrtf(x[0] * x[0] + x[1] * x[1]) - r;
    return d * d / (2.0f * s * s);
  }
  CUEBM_HOST_DEVICE void grad(const float* x, float* g) const {
    const float rho = sqrtf(x[0] * x[0] + x[1] * x[1]);
    const float f = rho > 0.0f ? (rho - r) / (s * s * rho) : 0.0f;
    g[0] = f * x[0];
    g[1] = f * x[1];
  }
};

// Test entry points (defined in the CUDA build only): langevin_chain_cuda on the current device
// for host state x (n x dim, in place); they allocate and synchronise, the template does not.
void harmonic_chain_cuda_for_testing(const HarmonicTestEnergy& e, float* x, int64_t n,
                                     const LangevinOptions& options);
void ring_chain_cuda_for_testing(const RingTestEnergy& e, float* x, int64_t n,
                                 const LangevinOptions& options);
// langevin_chain_cuda captured into a CUDA graph on a non-blocking stream, then the graph
// replayed `replays` times on x (in place); throws CudaError when the capture fails.
void harmonic_chain_cuda_graph_for_testing(const HarmonicTestEnergy& e, float* x, int64_t n,
                                           const LangevinOptions& options, int replays);

}  // namespace cuebm::detail
