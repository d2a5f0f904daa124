// Formatting helpers for error messages.
#pragma once

#include <string>
#include <vector>

namespace cuebm {
// "a, b, c"
std::string join_names(const std::vector<std::string>& names);
}  // namespace cuebm
