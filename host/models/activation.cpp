#include "cuebm/models/activation.hpp"

#include <algorithm>
#include <cctype>

#include "cuebm/runtime/error.hpp"
#include "host/runtime/names.hpp"

namespace cuebm {
namespace {
constexpr std::pair<Activation, const char*> kNames[] = {{Activation::kReLU, "relu"},
                                                         {Activation::kSiLU, "silu"},
                                                         {Activation::kTanh, "tanh"},
                                                         {Activation::kSoftplus, "softplus"},
                                                         {Activation::kLeakyReLU, "leaky_relu"},
                                                         {Activation::kGELU, "gelu"}};
}  // namespace

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

Activation parse_activation(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& [a, n] : kNames)
    if (lower == n) return a;
  throw InvalidArgument("unknown activation '" + std::string(name) +
                        "' (valid: " + join_names(activation_names()) + ")");
}

std::string activation_name(Activation activation) {
  for (const auto& [a, n] : kNames)
    if (a == activation) return n;
  return "unknown";
}

std::vector<std::string> activation_names() {
  std::vector<std::string> v;
  for (const auto& [a, n] : kNames) v.emplace_back(n);
  return v;
}

}  // namespace cuebm
