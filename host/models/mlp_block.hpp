// The CPU backend's MLP math on one block of kRowBlock rows in feature-major layout
// (value k of row r at v[k * kRowBlock + r]): forward, dE/dx and the parameter gradient.
#pragma once

#include <cstddef>
#include <vector>

#include "cuebm/models/mlp.hpp"

namespace cuebm::detail {

// Offsets of the per-layer buffers inside one block's workspace.
struct MlpBlockLayout {
  explicit MlpBlockLayout(const std::vector<int>& widths);
  std::vector<std::size_t> act;  // act[l]: input of layer l (l >= 1): [w_l][R]
  std::vector<std::size_t> pre;  // pre[l]: pre-activation of hidden layer l (l >= 1)
  std::size_t delta0 = 0, delta1 = 0;
  std::size_t transposed = 0;  // a layer input transposed to [R][w_l], for weight gradients
  std::size_t floats = 0;
};

struct MlpBlockArgs {
  const std::vector<int>& widths;
  const MlpBlockLayout& layout;
  const float* params;
  const std::size_t* weight_offset;  // per linear layer
  const std::size_t* bias_offset;
  Activation activation;
};

// Forward pass: writes E for each lane to e and keeps what backward needs in work.
void mlp_block_forward(const MlpBlockArgs& a, const float* x_t, float* e, float* work);
// After mlp_block_forward on the same work: back-propagates the per-lane output weights
// out_weight[r] (null: 1). Writes dE/dx to grad_t when not null; adds the parameter gradient
// to param_grad when not null (param_grad_first: writes it, the bits of adding it to zeros).
void mlp_block_backward(const MlpBlockArgs& a, const float* x_t, const float* out_weight,
                        float* grad_t, float* param_grad, float* work,
                        bool param_grad_first = false);

}  // namespace cuebm::detail
