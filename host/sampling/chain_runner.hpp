// The CPU backend's Langevin chain runner: every block of kRowBlock chains runs all its steps
// while its state stays in cache; blocks run in parallel and never share state.
#pragma once

#include <cstdint>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/function_ref.hpp"

namespace cuebm::detail {

struct ChainPlan {
  int n_steps = 0;
  const float* eta = nullptr;         // per step
  const float* noise_coef = nullptr;  // per step: sqrt(2 eta) sigma
  uint64_t seed = 0, step_offset = 0, first_chain = 0;
  bool clamp = false;
  float clamp_min = 0, clamp_max = 0;
  int thin = 0;
  float* trajectory = nullptr;  // (n_steps / thin) x n x dim, or null
  // Per block b: n_steps x (2 dim + 1) doubles {sum x, sum x^2, sum E(x_{t+1})}, or null.
  double* diagnostics = nullptr;
  // When set, eps of (step t, row, coordinate d) is noise[(t * n + row) * dim + d] (not Philox).
  const float* noise = nullptr;
  // Called per block with its first row, its number of rows, x_t, e_t and the energy's
  // workspace: after the first step's gradient (x_t the initial state, e_t its energies, work
  // holding its forward pass) and after the last step (x_t the final state, e_t null). They
  // run on the CPU backend's threads, concurrently for different blocks, and must not throw.
  // CD's fused iteration uses them (host/training/fused_cd.hpp).
  using BlockHook =
      FunctionRef<void(int64_t row0, int rows, const float* x_t, const float* e_t, float* work)>;
  const BlockHook* after_first_gradient = nullptr;
  const BlockHook* after_last_step = nullptr;
};

inline int diagnostics_stride(int dim) { return 2 * dim + 1; }

// Runs the chains in place on x (n x dim). Returns the lowest index of a chain whose final
// state is not finite, or -1.
int64_t run_chains_cpu(const Energy& energy, float* x, int64_t n, const ChainPlan& plan);

}  // namespace cuebm::detail
