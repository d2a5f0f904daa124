// The non-template half of cuebm/custom_energy.hpp: option validation, initial states and the
// CPU sampler's block noise, shared with langevin_sample so both draw the same numbers.
#include <algorithm>
#include <cmath>
#include <string>

#include "cuebm/sampling/custom_energy.hpp"
#include "host/sampling/langevin_options.hpp"
#include "host/sampling/noise_block.hpp"

namespace cuebm::detail {

CustomChainSteps custom_chain_steps(const LangevinOptions& options, int dim, int64_t n,
                                    const char* who) {
  const std::string w(who);
  validate_langevin_options(options, who);
  if (dim < 1) throw InvalidArgument(w + ": dim must be >= 1, got " + std::to_string(dim));
  if (n < 1) throw InvalidArgument(w + ": n must be >= 1, got " + std::to_string(n));
  const StepArrays a = make_step_arrays(options, options.n_steps);
  CustomChainSteps s;
  s.eta = a.eta;
  s.noise_coef = a.noise_coef;
  s.temperature = a.last_sigma * a.last_sigma;
  s.clamp = options.clamp_min || options.clamp_max;
  s.clamp_min = options.clamp_min.value_or(-INFINITY);
  s.clamp_max = options.clamp_max.value_or(INFINITY);
  return s;
}

CustomChainSteps prepare_custom_chain(const LangevinOptions& options, int dim, const float* x0,
                                      int64_t n, const char* who, LangevinResult& res) {
  CustomChainSteps s = custom_chain_steps(options, dim, n, who);
  if (options.diagnostics)
    throw InvalidArgument(std::string(who) +
                          ": diagnostics are not supported for custom energies (compute them "
                          "from the trajectory, thin > 0)");
  res.n_chains = n;
  res.dim = dim;
  res.samples.resize(static_cast<std::size_t>(n) * dim);
  if (x0) {
    require_finite_rows(x0, n, dim, (std::string(who) + ": initial state").c_str());
    std::copy(x0, x0 + n * dim, res.samples.begin());
  } else {
    gaussian_initial_state(res.samples.data(), n, dim, options.seed, options.first_chain);
  }
  if (options.thin > 0) {
    res.n_kept = options.n_steps / options.thin;
    res.trajectory.resize(static_cast<std::size_t>(res.n_kept) * n * dim);
  }
  res.temperature = s.temperature;
  return s;
}

void custom_noise_block(uint64_t seed, uint64_t first_chain, uint64_t step, int dim, int rows,
                        float* eps_t) {
  langevin_noise_block(seed, first_chain, step, dim, rows, eps_t);
}

void check_custom_chain_finite(const LangevinResult& res, int n_steps, const char* who) {
  for (std::size_t i = 0; i < res.samples.size(); ++i)
    if (!std::isfinite(res.samples[i]))
      throw NumericalError(std::string(who) + ": chain " + std::to_string(i / res.dim) +
                           " diverged (not finite after " + std::to_string(n_steps) +
                           " steps of the custom energy); reduce step_size");
}

}  // namespace cuebm::detail
