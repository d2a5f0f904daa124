// Validation of Langevin options and the per-step arrays both backends read.
#pragma once

#include <vector>

#include "cuebm/sampling/langevin.hpp"

namespace cuebm::detail {

struct StepArrays {
  std::vector<float> eta, noise_coef;  // per step; noise_coef = sqrt(2 eta) sigma
  double last_sigma = 0;
};

// Throws InvalidArgument naming the bad option.
void validate_langevin_options(const LangevinOptions& options, const char* who);
StepArrays make_step_arrays(const LangevinOptions& options, int n_steps);
// Throws InvalidArgument naming the first non-finite entry of a row-major n x dim array.
void require_finite_rows(const float* x, int64_t n, int dim, const char* what);

}  // namespace cuebm::detail
