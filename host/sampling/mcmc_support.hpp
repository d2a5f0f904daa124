// What mala_sample and hmc_sample share between their CPU and CUDA paths (host/sampling/mcmc.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/device.hpp"
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
// The CPU run's final state and energies (moved) and acceptance into res.
void finish_cpu(McmcResult& res, std::vector<float>& x, std::vector<float>& e,
                const std::vector<int>& accepted, int n_steps);
// Diagnostics: start_trace sizes res.energy_trace (when asked), finish_diagnostics computes R-hat
// and ESS from the trace (n_steps >= 4).
void start_trace(McmcResult& res, bool diagnostics, int n_steps);
void finish_diagnostics(McmcResult& res, int n_steps);
// Throws InvalidArgument when a chain's initial energy is not finite.
void require_finite_start(const std::vector<float>& energies, const char* who);

}  // namespace cuebm::detail
