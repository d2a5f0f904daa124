// ExpectInvalid: the call must throw cuebm::InvalidArgument whose message contains every needle
// (the error names the problem).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"

namespace cuebm::testing_support {

template <class F>
void ExpectInvalid(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message '" << msg << "' lacks '" << n << "'";
  }
}

}  // namespace cuebm::testing_support
