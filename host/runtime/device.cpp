#include "cuebm/runtime/device.hpp"

#include <cstdlib>

#include "cuebm/runtime/error.hpp"
#include "host/runtime/thread_pool.hpp"

namespace cuebm {

#if CUEBM_HAVE_CUDA
namespace detail {
int cuda_runtime_device_count();        // kernels/runtime/device.cu
std::string cuda_unavailable_reason();  // kernels/runtime/device.cu
}  // namespace detail
bool built_with_cuda() { return true; }
int cuda_device_count() { return detail::cuda_runtime_device_count(); }
std::string cuda_unavailable_reason() { return detail::cuda_unavailable_reason(); }
#else
bool built_with_cuda() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() {
  return "this build of cuEBM has no CUDA backend (nvcc was not found when it was configured)";
}
#endif

std::string Device::to_string() const {
  return is_cuda() ? "cuda:" + std::to_string(index) : "cpu";
}

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "auto") return Device::default_device();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5) {
    char* end = nullptr;
    const long index = std::strtol(text.c_str() + 5, &end, 10);
    if (*end == '\0' && index >= 0 && index < 1024) return Device::cuda(static_cast<int>(index));
  }
  throw InvalidArgument("unknown device '" + text + "' (valid: cpu, cuda, cuda:N, auto)");
}

Device Device::default_device() {
  if (const char* env = std::getenv("CUEBM_DEVICE"); env && *env && std::string(env) != "auto")
    return parse_device(env);
  return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
}

void check_device(const Device& device) {
  if (!device.is_cuda()) return;
  if (!built_with_cuda())
    throw InvalidArgument("device " + device.to_string() +
                          " requested, but this build of cuEBM has no CUDA backend "
                          "(nvcc was not found when it was configured)");
  const int count = cuda_device_count();
  if (device.index >= count)
    throw InvalidArgument("device " + device.to_string() + " requested, but " +
                          std::to_string(count) + " usable CUDA device(s) are present" +
                          (count == 0 ? ": " + cuda_unavailable_reason() : std::string()));
}

void set_num_threads(int threads) {
  if (threads < 1)
    throw InvalidArgument("thread count must be >= 1, got " + std::to_string(threads));
  detail::set_cpu_threads(threads);
}

int num_threads() { return detail::cpu_threads(); }

}  // namespace cuebm
