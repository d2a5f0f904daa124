// The CUDA backend's devices (kernels/runtime/device.cu): how many can run this build's kernels,
// why none can, and what one is.
// Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
#pragma once

#include <cstddef>
#include <string>

namespace cuebm::detail {

// Number of usable CUDA devices: 0 when cudaGetDeviceCount fails (no driver, no device, a
// driver too old for the runtime) or device 0 has no image of this build's kernels.
int cuda_runtime_device_count();
// Why no device is usable (the CUDA error named), empty when one is.
std::string cuda_unavailable_reason();
// Name, SM count, opt-in shared memory per block; throws CudaError for a bad index.
struct CudaDeviceInfo {
  std::string name;
  int sm_count = 0;
  int compute_major = 0, compute_minor = 0;
  std::size_t shared_per_block_optin = 0;  // bytes
  std::size_t global_memory = 0;           // bytes
};
CudaDeviceInfo cuda_device_info(int device);

}  // namespace cuebm::detail
