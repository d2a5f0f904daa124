// Which device --device auto picks: a CUDA device only when one can run this build's kernels,
// else the CPU with the reason (the CUDA error) available to print. The emulated build runs
// this again with an sm_75 card (tests/CMakeLists.txt, CUEBM_EXPECT_UNUSABLE_CUDA=1), for which
// the binary has no kernel image.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

bool expect_unusable() {
  const char* env = std::getenv("CUEBM_EXPECT_UNUSABLE_CUDA");
  return env && std::string(env) == "1";
}

TEST(CudaAvailability, AutoPicksAUsableDeviceOrTheCpuWithAReason) {
  const int count = cuda_device_count();
  const std::string reason = cuda_unavailable_reason();
  const char* forced = std::getenv("CUEBM_DEVICE");
  if (forced && *forced && std::string(forced) != "auto") GTEST_SKIP() << "CUEBM_DEVICE is set";
  if (count > 0) {
    EXPECT_TRUE(reason.empty()) << reason;
    EXPECT_EQ(Device::default_device(), Device::cuda(0));
  } else {
    EXPECT_FALSE(reason.empty());
    EXPECT_EQ(Device::default_device(), Device::cpu());
    try {
      check_device(Device::cuda(0));
      FAIL() << "cuda:0 accepted without a usable device";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  }
  if (expect_unusable()) {
    EXPECT_TRUE(built_with_cuda());
    EXPECT_EQ(count, 0);
    EXPECT_NE(reason.find("cudaErrorNoKernelImageForDevice"), std::string::npos) << reason;
    EXPECT_NE(reason.find("sm_75"), std::string::npos) << reason;
  }
}

}  // namespace
}  // namespace cuebm
