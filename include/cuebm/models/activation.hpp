// Hidden-layer activations of the MLP energy (PyTorch semantics).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cuebm {

enum class Activation { kReLU, kSiLU, kTanh, kSoftplus, kLeakyReLU, kGELU };

// "relu", "silu", "tanh", "softplus", "leaky_relu", "gelu" (case-insensitive); anything else
// throws InvalidArgument naming the value and the valid names.
Activation parse_activation(std::string_view name);
std::string activation_name(Activation activation);
std::vector<std::string> activation_names();

}  // namespace cuebm
