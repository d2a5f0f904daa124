// GPU tests call CUEBM_REQUIRE_CUDA() first: without a usable CUDA device they are skipped
// with the reason printed (they always compile).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "cuebm/runtime/device.hpp"

namespace cuebm::testing_support {

inline bool cuda_available(std::string* why) {
  if (!built_with_cuda()) {
    *why = "this build of cuEBM has no CUDA backend (configured without nvcc)";
    return false;
  }
  if (cuda_device_count() == 0) {
    *why = cuda_unavailable_reason();
    return false;
  }
  return true;
}

}  // namespace cuebm::testing_support

#define CUEBM_REQUIRE_CUDA()                                    \
  do {                                                          \
    std::string cuebm_why_;                                     \
    if (!::cuebm::testing_support::cuda_available(&cuebm_why_)) \
      GTEST_SKIP() << "no CUDA device: " << cuebm_why_;         \
  } while (0)
