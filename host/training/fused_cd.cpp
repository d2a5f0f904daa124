#include "host/training/fused_cd.hpp"

#include <algorithm>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "host/models/parallel.hpp"
#include "kernels/training/optim.cuh"

namespace cuebm::detail {

bool fused_cd_applies(int64_t rows, int k_steps) {
  const int64_t blocks = 2 * num_blocks(rows);
  return k_steps >= 1 && rows % kRowBlock == 0 && gradient_chunks(blocks) == blocks;
}

std::size_t fused_cd_partial_floats(const Mlp& model, int64_t max_batch) {
  // The largest batch it applies to: whole blocks, one block per gradient chunk.
  const int64_t blocks = std::min(max_batch / kRowBlock, kMaxGradientChunks / 2);
  return static_cast<std::size_t>(2 * blocks) * model.num_parameters();
}

void fused_cd_iteration(const Mlp& model, const float* batch, int64_t rows, ChainPlan plan,
                        float reg_weight, float* neg, float* energies, float* grad,
                        float* partials) {
  if (!fused_cd_applies(rows, plan.n_steps))
    throw InvalidArgument("fused_cd_iteration: " + std::to_string(rows) + " rows and " +
                          std::to_string(plan.n_steps) + " steps cannot be fused");
  const std::size_t p = model.num_parameters();
  const float inv_n = 1.0f / static_cast<float>(rows);
  // Row `row` of [batch; neg] starts block row / kRowBlock, whose gradient is chunk
  // row / kRowBlock: the partials Mlp::energy_and_parameter_gradient would sum.
  const auto add_block = [&](int64_t row, const float* x_t, const float* e_t, float* work) {
    float c_t[kRowBlock];
    for (int r = 0; r < kRowBlock; ++r)
      c_t[r] = cd_coefficient(e_t[r], row + r < rows, reg_weight, inv_n);
    std::copy_n(e_t, kRowBlock, energies + row);
    model.block_parameter_gradient(x_t, c_t, partials + row / kRowBlock * p, true, work);
  };
  const auto positives = [&](int64_t row0, int, const float* x_t, const float* e_t, float* work) {
    add_block(row0, x_t, e_t, work);
  };
  const auto negatives = [&](int64_t row0, int, const float* x_t, const float*, float* work) {
    float e_t[kRowBlock];
    model.block_energy(x_t, e_t, work);
    add_block(rows + row0, x_t, e_t, work);
  };
  const ChainPlan::BlockHook after_first_gradient = positives, after_last_step = negatives;
  plan.after_first_gradient = &after_first_gradient;
  plan.after_last_step = &after_last_step;
  std::copy_n(batch, rows * model.dim(), neg);
  run_chains_cpu(model, neg, rows, plan);
  sum_partials(partials, 2 * num_blocks(rows), p, grad);
}

}  // namespace cuebm::detail
