// The CPU backend's Langevin chain runner: every block of kRowBlock chains runs all its steps
// while its state stays in cache; blocks run in parallel and never share state.
#pragma once

#include <cstdint>

#include "cuebm/models/energy.hpp"

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
};

inline int diagnostics_stride(int dim) { return 2 * dim + 1; }

// Runs the chains in place on x (n x dim). Returns the lowest index of a chain whose final
// state is not finite, or -1.
int64_t run_chains_cpu(const Energy& energy, float* x, int64_t n, const ChainPlan& plan);

}  // namespace cuebm::detail
