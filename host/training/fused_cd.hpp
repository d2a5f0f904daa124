// CD's CPU iteration with Langevin negatives started from the batch, in one parallel pass:
// each block of chains also computes its share of the loss gradient. The first Langevin step's
// forward pass of a block is the positive rows' forward pass (the chains start at the data), so
// it is not repeated, and each block's negatives are differentiated while still in cache.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuebm/models/mlp.hpp"
#include "host/sampling/chain_runner.hpp"

namespace cuebm::detail {

// Whether fused_cd_iteration gives the bits of the unfused iteration for `rows` rows: at least
// one step, whole blocks of rows (no block mixes positives and negatives) and one block per
// gradient chunk of the 2 x rows rows (gradient_chunks in host/models/parallel.hpp).
bool fused_cd_applies(int64_t rows, int k_steps);

// Floats of partial sums fused_cd_iteration needs for every batch of up to max_batch rows it
// applies to (0 when it applies to none).
std::size_t fused_cd_partial_floats(const Mlp& model, int64_t max_batch);

// Runs the chains of `plan` from the batch into neg (rows x dim) and writes the energies of
// [batch; neg] to energies (2 x rows) and the gradient of CD's loss (coefficients
// cd_coefficient(E, positive, reg_weight, 1 / rows)) to grad: the same bits as run_chains_cpu
// followed by Mlp::energy_and_parameter_gradient on the 2 x rows rows. Requires
// fused_cd_applies(rows, plan.n_steps); partials holds fused_cd_partial_floats floats.
void fused_cd_iteration(const Mlp& model, const float* batch, int64_t rows, ChainPlan plan,
                        float reg_weight, float* neg, float* energies, float* grad,
                        float* partials);

}  // namespace cuebm::detail
