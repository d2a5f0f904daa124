// Unadjusted Langevin dynamics: x <- x - eta grad E(x) + sqrt(2 eta) sigma eps.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/sampling/schedule.hpp"

namespace cuebm {

struct LangevinOptions {
  Schedule step_size = 1e-3f;   // eta (TorchEBM's default)
  Schedule noise_scale = 1.0f;  // sigma; the chain targets exp(-E / sigma^2)
  int n_steps = 100;
  uint64_t seed = 0;
  // Noise counter of the first step: a chain run for s steps continues exactly with
  // step_offset = s (the counter is (seed, chain id, step), rng.md).
  uint64_t step_offset = 0;
  // First chain id: chain i of this call draws the noise of chain first_chain + i.
  uint64_t first_chain = 0;
  std::optional<float> clamp_min, clamp_max;
  int thin = 0;              // > 0: keep x after steps thin, 2 thin, ... (n_steps / thin states)
  bool diagnostics = false;  // per-step mean, variance and mean energy across chains
  // Noise from a caller's buffer instead of Philox (both backends; for exact comparisons):
  // when set, eps for (step t of this call, chain row, coordinate d) is
  // noise[(t * n_chains + row) * dim + d]; it must hold n_steps * n_chains * dim floats.
  const float* noise = nullptr;
};

struct LangevinResult {
  int64_t n_chains = 0;
  int dim = 0;
  std::vector<float> samples;     // n_chains x dim
  std::vector<float> trajectory;  // n_kept x n_chains x dim
  int n_kept = 0;
  // After each step t (n_steps entries): mean and variance (unbiased, across chains) per
  // dimension (n_steps x dim), and the mean energy of x_{t+1}.
  std::vector<float> diag_mean, diag_variance;
  std::vector<double> diag_mean_energy;
  // sigma^2 of the last step: the temperature the chain samples at.
  double temperature = 0;
};

// Fills x (n x dim) with N(0, I) keyed by (seed, chain): the default initial state.
void gaussian_initial_state(float* x, int64_t n, int dim, uint64_t seed, uint64_t first_chain = 0);

// Runs n chains from x0 (n x dim; null: N(0, I) from gaussian_initial_state(seed)). Throws
// InvalidArgument for bad options or non-finite x0, NumericalError when a chain diverges.
LangevinResult langevin_sample(const Energy& energy, const float* x0, int64_t n_chains,
                               const LangevinOptions& options, Device device = Device::cpu());

// The noise the CPU sampler adds: eps for (chain, step, coordinate), bit for bit as it draws
// it (for tests and for replaying chains elsewhere). It is cuRAND's curand_normal4 on the
// Philox block keyed by (seed, chain, step), computed with vectorisable log/sincos: within
// 2e-6 * max(1, |eps|) of the same formula evaluated with libm (measured 4.8e-7).
float langevin_noise(uint64_t seed, uint64_t chain, uint64_t step, int dim, int coordinate);

}  // namespace cuebm
