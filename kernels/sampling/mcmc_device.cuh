// Device helpers shared by the MCMC kernels (mcmc_kernels.cu and the tempering and AIS kernels):
// one energy-and-gradient evaluation of a per-thread model (kernels/models/device_model.cuh).
#pragma once

#include <cstdint>

namespace cuebm::detail {

// E at the model's x, dE/dx into column array g (stride ld); whether both are finite.
template <class Model>
__device__ float energy_gradient(Model& m, float* g, int64_t ld, int dim, bool& finite) {
  const float e = m.forward();
  finite = isfinite(e);
  m.backward([&](int q, float4 v) {
    const float c[4] = {v.x, v.y, v.z, v.w};
    for (int k = 0; k < 4 && 4 * q + k < dim; ++k) {
      g[(4 * q + k) * ld] = c[k];
      finite = finite && isfinite(c[k]);
    }
  });
  return e;
}

}  // namespace cuebm::detail
