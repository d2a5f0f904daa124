// Exact samplers: the Metropolis-adjusted Langevin algorithm (MALA) and Hamiltonian Monte Carlo
// (HMC). Unlike unadjusted Langevin (langevin.hpp), each proposal is accepted or rejected per
// chain with the Metropolis-Hastings ratio, so the chains sample their target exactly whatever
// the step size (a large step only lowers the acceptance rate).
//
// Random numbers: step t of chain c draws its D Gaussians and its uniform from Philox keyed by
// logical ids as Langevin's are (rng.md): subsequence first_chain + c, blocks (step_offset + t) x
// (ceil(D / 4) + 1) onwards (ceil(D / 4) blocks of Gaussians, then one for the uniform; so the
// Gaussians differ from Langevin's for the same seed). Results do not depend on the batch, the
// device's launch plan or the thread count. For exact comparisons both backends take the draws
// from a caller's buffer instead (`noise`).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/sampling/schedule.hpp"

namespace cuebm {

// MALA: proposal x' = x - eta grad E(x) + sqrt(2 eta) sigma eps (Langevin's step), accepted with
// probability min(1, exp(-(E(x') - E(x)) / T) q(x | x') / q(x' | x)) for the target
// exp(-E / T), T = sigma^2, with q(a | b) = N(a; b - eta grad E(b), 2 eta T I).
struct MalaOptions {
  Schedule step_size = 1e-2f;   // eta
  Schedule noise_scale = 1.0f;  // sigma; the chain targets exp(-E / sigma^2)
  int n_steps = 100;
  uint64_t seed = 0;
  uint64_t step_offset = 0;  // a chain run for s steps continues exactly with step_offset = s
  uint64_t first_chain = 0;
  // Draws from a buffer instead of Philox: step t of chain row reads D Gaussians then one uniform
  // in (0, 1] at noise[(t * n_chains + row) * (dim + 1)]; n_steps * n_chains * (dim + 1) floats.
  const float* noise = nullptr;
  // Keep the energy after every step and report its split R-hat and bulk ESS (diagnostics.hpp).
  bool diagnostics = false;
};

// HMC (behaviour.md): momentum p ~ N(0, M); H = E(x) + p^T M^-1 p / 2; n_leapfrog steps of size
// eps (half kick, drift x += eps M^-1 p, half kick, forces clamped to +-1e6), accepted with
// probability min(1, exp(H0 - H1)) (H0 - H1 clamped to +-50, as TorchEBM). The target is exp(-E).
// One gradient per leapfrog step: the last one is kept for the next step's first half kick.
struct HmcOptions {
  Schedule step_size = 1e-3f;  // eps (TorchEBM's default)
  int n_leapfrog = 10;         // L
  // The mass matrix M: empty = identity, one value = scalar, dim values = diagonal; all > 0.
  std::vector<float> mass;
  int n_steps = 100;
  uint64_t seed = 0;
  uint64_t step_offset = 0;
  uint64_t first_chain = 0;
  // As MalaOptions::noise: D Gaussians (the momentum, before scaling by sqrt(M)) then one uniform.
  const float* noise = nullptr;
  bool diagnostics = false;  // as MalaOptions::diagnostics
};

struct McmcResult {
  int64_t n_chains = 0;
  int dim = 0;
  std::vector<float> samples;     // n_chains x dim, the state after the last step
  std::vector<float> energy;      // n_chains: E of that state
  std::vector<float> acceptance;  // n_chains: accepted proposals / n_steps (0 when n_steps = 0)
  double mean_acceptance = 0;     // over all chains
  double temperature = 1;         // T the chains sample at (MALA: sigma^2 of the last step)
  // With diagnostics: E after step t of chain c at energy_trace[t * n_chains + c], and the split
  // rank-normalised R-hat and bulk ESS of that trace over the chains (NaN below 4 steps).
  std::vector<float> energy_trace;
  double energy_rhat = NAN, energy_ess = NAN;
};

// Run n_chains chains from x0 (n_chains x dim; null: N(0, I) from gaussian_initial_state(seed,
// first_chain)). Throw InvalidArgument for bad options or a non-finite x0 or E(x0); a proposal
// whose energy or gradient is not finite is rejected (counted in the acceptance rate).
McmcResult mala_sample(const Energy& energy, const float* x0, int64_t n_chains,
                       const MalaOptions& options, Device device = Device::cpu());
McmcResult hmc_sample(const Energy& energy, const float* x0, int64_t n_chains,
                      const HmcOptions& options, Device device = Device::cpu());

}  // namespace cuebm
