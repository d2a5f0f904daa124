// Device discovery and properties.
#include <cuda_runtime.h>

#include "../host/cuda_backend.hpp"
#include "cuda_check.cuh"

namespace cuebm::detail {

int cuda_runtime_device_count() {
  int count = 0;
  // No driver, no device, or a driver too old for this runtime: report zero devices. The
  // sticky error state is cleared by cudaGetLastError so later calls are unaffected.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

CudaDeviceInfo cuda_device_info(int device) {
  cudaDeviceProp prop{};
  CUEBM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  int optin = 0;
  CUEBM_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  CudaDeviceInfo info;
  info.name = prop.name;
  info.sm_count = prop.multiProcessorCount;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.shared_per_block_optin = static_cast<std::size_t>(optin);
  info.global_memory = prop.totalGlobalMem;
  return info;
}

}  // namespace cuebm::detail
