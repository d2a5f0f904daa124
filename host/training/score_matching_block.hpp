// The CPU backend's score-matching losses on a block of up to kRowBlock rows at once, feature-
// major (value i of row r at v[i * kRowBlock + r]), so every inner loop runs over the block's
// rows and vectorises. The math is score_matching.cuh's per-row math in the same order of
// operations per row (fmaf for fmaf, the same sums in the same order), so each row's loss and
// gradient terms equal the per-row code's; the parameter gradient is summed over the rows of each
// chunk in row order, as the per-row code does. One exception: a loss that adds two directional
// gradients per row (denoising with lambda > 0) adds the block's first ones before its second
// ones, which rounds the chunk sums differently.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuebm/models/activation.hpp"
#include "kernels/training/score_matching.cuh"

namespace cuebm::detail {

// Whether the blocked path computes this loss (TorchEBM's approx Hessian stays per-row).
bool sm_block_supported(const SmRowParams& p);

// Workspace floats of one block for the layout L (SmLayout::make of the loss's channels).
std::size_t sm_block_floats(const SmLayout& L);

// Where a block's parameter gradient goes: row `row` adds to
// partials + (row / rows_per_chunk) * num_params. partials null: no gradient.
struct SmBlockGradient {
  float* partials;
  std::size_t num_params;
  int64_t rows_per_chunk;
};

// The losses of rows [row0, row0 + rows) of x (row-major, n x D), 1 <= rows <= kRowBlock, into
// row_loss[0, rows); adds their parameter gradients as `grad` says. work: sm_block_floats(L).
void sm_block_loss(Activation activation, const SmNet& net, const SmLayout& L, const SmRowParams& p,
                   const float* x, int64_t row0, int rows, float* work, float* row_loss,
                   const SmBlockGradient& grad);

}  // namespace cuebm::detail
