// What mala_sample and hmc_sample share between their CPU and CUDA paths (host/sampling/mcmc.cpp),
// and parallel_tempering with them.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/mcmc.hpp"

namespace cuebm::detail {

struct McmcStart {
  std::vector<float> x;  // n_chains x dim: the initial state
};

// Checks the device, n_chains >= 1, n_steps >= 0 and a finite x0 (InvalidArgument naming `who`),
// then copies x0 or draws N(0, I) keyed by (seed, first_chain).
McmcStart start_mcmc(const Energy& energy, const float* x0, int64_t n_chains, int n_steps,
                     uint64_t seed, uint64_t first_chain, const Device& device, const char* who);
// The diagonal of HMC's mass matrix from HmcOptions::mass (empty, one value or dim values).
std::vector<float> full_mass(const std::vector<float>& mass, int dim, const char* who);
// res.acceptance (accepted / n_steps per chain) and res.mean_acceptance.
void finish_acceptance(McmcResult& res, const std::vector<int>& accepted, int n_steps);
// Diagnostics: start_trace sizes res.energy_trace (when asked), finish_diagnostics computes R-hat
// and ESS from the trace (n_steps >= 4).
void start_trace(McmcResult& res, bool diagnostics, int n_steps);
void finish_diagnostics(McmcResult& res, int n_steps);

// Throws InvalidArgument naming `who` and the first chain whose initial energy is not finite.
template <class T>
void require_finite_start(const std::vector<T>& energies, const char* who) {
  for (std::size_t r = 0; r < energies.size(); ++r)
    if (!std::isfinite(energies[r]))
      throw InvalidArgument(std::string(who) + ": the energy of chain " + std::to_string(r) +
                            "'s initial state is not finite (" +
                            std::to_string(static_cast<float>(energies[r])) + ")");
}

}  // namespace cuebm::detail
