// Device discovery and properties.
#include <cuda_runtime.h>

#include <string>

#include "host/runtime/cuda_device.hpp"
#include "kernels/runtime/cuda_check.cuh"

namespace cuebm::detail {

namespace {

__global__ void probe_kernel() {}

struct Availability {
  int count = 0;
  std::string reason;  // why no device is usable; empty when count > 0
};

std::string describe(const char* call, cudaError_t st) {
  return std::string(call) + " failed: " + cudaGetErrorName(st) + " (" + cudaGetErrorString(st) +
         ")";
}

// Devices present and able to run this build's kernels: a device 0 the binary has no image for
// (an sm_75 card for an sm_80;90 build) or a driver too old for the runtime must not be chosen
// by --device auto. Probed once per process.
Availability probe() {
  Availability a;
  cudaError_t st = cudaGetDeviceCount(&a.count);
  if (st != cudaSuccess) {
    a.count = 0;
    a.reason = describe("cudaGetDeviceCount", st);
    (void)cudaGetLastError();
    return a;
  }
  if (a.count == 0) {
    a.reason = "cudaGetDeviceCount reports 0 devices";
    return a;
  }
  // Device 0 is the one --device auto picks; probing only it creates no context on the others.
  int previous = 0;
  cudaGetDevice(&previous);
  cudaFuncAttributes attr{};
  st = cudaSetDevice(0);
  if (st == cudaSuccess) st = cudaFuncGetAttributes(&attr, probe_kernel);
  if (st != cudaSuccess) {
    cudaDeviceProp prop{};
    const bool named = cudaGetDeviceProperties(&prop, 0) == cudaSuccess;
    a.reason = "CUDA device 0" +
               (named ? " (" + std::string(prop.name) + ", sm_" + std::to_string(prop.major) +
                            std::to_string(prop.minor) + ")"
                      : std::string()) +
               " cannot run this build's kernels: " + describe("cudaFuncGetAttributes", st);
    a.count = 0;
    (void)cudaGetLastError();  // the probe's own, non-sticky error
  }
  cudaSetDevice(previous);
  return a;
}

const Availability& availability() {
  static const Availability a = probe();
  return a;
}

}  // namespace

int cuda_runtime_device_count() { return availability().count; }
std::string cuda_unavailable_reason() { return availability().reason; }

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
