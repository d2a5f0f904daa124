// Where computations run: the CPU backend or a CUDA device.
#pragma once

#include <string>

namespace cuebm {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceKind::kCuda, index}; }
  // CUDA device 0 when this build has CUDA and a device is present, else the CPU. The
  // environment variable CUEBM_DEVICE ("cpu", "cuda", "cuda:N") overrides the choice.
  static Device default_device();

  bool is_cuda() const { return kind == DeviceKind::kCuda; }
  std::string to_string() const;  // "cpu" or "cuda:N"
  bool operator==(const Device&) const = default;
};

// "cpu", "cuda", "cuda:N" or "auto"; anything else throws InvalidArgument.
Device parse_device(const std::string& text);
// True when this library was built with its CUDA backend.
bool built_with_cuda();
// Number of usable CUDA devices: 0 in a CPU-only build, without a driver or device, with a
// driver too old for the runtime, or when device 0 has no image of this build's kernels (a
// probe kernel's attributes are queried once). Device::default_device() then picks the CPU.
int cuda_device_count();
// Why no CUDA device is usable, naming the CUDA error; empty when one is.
std::string cuda_unavailable_reason();
// Throws InvalidArgument when `device` cannot be used here, naming why.
void check_device(const Device& device);

// Threads of the CPU backend, the calling thread included (default: OMP_NUM_THREADS when set,
// else the processors this process may run on). Results never depend on it. The threads claim
// blocks of rows one at a time, sleep after a short spin, and fewer of them run while they keep
// waiting for CPUs, so a core taken by another program slows a run down instead of stalling it
// (host/runtime/thread_pool.hpp).
void set_num_threads(int threads);
int num_threads();

}  // namespace cuebm
