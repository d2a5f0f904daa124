// Annealed importance sampling (Neal 2001, "Annealed importance sampling", Statistics and
// Computing 11): log Z of exp(-E(x) / T) for an energy of any dimension.
//
// Chains start from N(0, I) (Z0 = (2 pi)^(D/2)) and follow the geometric path of intermediate
// densities exp(-E_b(x)), E_b(x) = (1 - b) |x|^2 / 2 + b E(x) / T, over b_k = k / K (k = 0..K),
// with mcmc_steps MALA transitions targeting E_{b_k} after each increment. Each chain's log
// weight is sum_k (b_k - b_{k-1}) (|x_{k-1}|^2 / 2 - E(x_{k-1}) / T); then
// log Z = log Z0 + log mean exp(w), with the standard error of that mean's logarithm (delta
// method) and the effective sample size (sum w_i)^2 / sum w_i^2 of the normalised weights.
// MALA keeps every intermediate law exact, so the estimate of Z is unbiased for any step size
// (a poor one only raises the variance). Random numbers: Philox keyed by (seed, chain,
// transition), as mala_sample's. On Device::cuda one thread runs each chain through all
// temperatures in one launch, with the CPU's arithmetic and random numbers: the log weights
// equal the CPU's up to the device's last-bit differences (its sincos in the Gaussians, an MLP's
// summation order).
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/device.hpp"

namespace cuebm {

struct AisOptions {
  int64_t n_chains = 1000;
  int n_temperatures = 1000;  // K
  int mcmc_steps = 1;         // MALA transitions per temperature
  float step_size = 0.05f;    // MALA's eta (at temperature 1 of the intermediate densities)
  double temperature = 1.0;   // T of the target exp(-E / T)
  uint64_t seed = 0;
};

struct AisResult {
  double log_z = 0;
  double std_error = 0;             // of log_z
  double ess = 0;                   // effective sample size of the importance weights
  double acceptance = 0;            // mean MALA acceptance over all transitions
  std::vector<double> log_weights;  // one per chain
};

// Throws InvalidArgument for bad options (n_chains < 2, n_temperatures < 1, mcmc_steps < 1,
// n_temperatures * mcmc_steps above INT_MAX, step_size or temperature not finite and > 0) or, on
// Device::cuda, an energy the device does not support (neither an Mlp nor an AnalyticEnergy), and
// NumericalError when every weight is non-finite.
AisResult ais_log_partition(const Energy& energy, const AisOptions& options,
                            Device device = Device::cpu());

}  // namespace cuebm
