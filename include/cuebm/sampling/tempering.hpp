// Replica-exchange parallel tempering: every chain runs R replicas of the state at the
// temperatures of a ladder T_0 = target < T_1 < ... < T_{R-1}; each step moves every replica
// with MALA at its own temperature (exact for exp(-E / T_r)), and every `swap_every` steps
// adjacent replicas (r, r + 1) swap states with probability
// min(1, exp((1 / T_r - 1 / T_{r+1}) (E_r - E_{r+1}))), pairs r even and r odd in alternate
// rounds. Hot replicas cross barriers and hand their states down, so the T_0 replica samples a
// multimodal target whose barriers trap a single chain. Returns the T_0 replicas.
//
// Random numbers: replica r of chain c draws its MALA noise as mala_sample's chain
// first_chain + c * R + r would; swap decisions use a separate Philox stream per chain.
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/device.hpp"

namespace cuebm {

struct TemperingOptions {
  // The ladder: `temperatures` when given (increasing, all > 0), else n_replicas temperatures
  // geometric from t_min (the target) to t_max.
  std::vector<double> temperatures;
  int n_replicas = 8;
  double t_min = 1.0, t_max = 10.0;
  float step_size = 0.01f;  // MALA's eta, the same at every temperature
  int n_steps = 1000;
  int swap_every = 1;  // m: a swap round after every m steps
  uint64_t seed = 0;
  uint64_t first_chain = 0;
};

struct TemperingResult {
  int64_t n_chains = 0;
  int dim = 0;
  std::vector<double> temperatures;     // the ladder used
  std::vector<float> samples;           // n_chains x dim: the T_0 replicas after the last step
  std::vector<float> energy;            // n_chains: their energies
  std::vector<double> swap_acceptance;  // R - 1: accepted / attempted swaps of pair (r, r + 1)
  std::vector<double> move_acceptance;  // R: MALA acceptance at each temperature
};

// x0: n_chains x dim starting states given to every replica (null: N(0, I) per replica, keyed by
// (seed, chain id first_chain + c * R + r)). Throws InvalidArgument for bad options (fewer than
// 2 replicas, a ladder not increasing or not positive, swap_every < 1, n_steps < 0, bad step
// size), a non-finite x0 or initial energy. On Device::cuda (at most 64 replicas: a chain's
// replicas are threads of one block, and more throws InvalidArgument) the whole run is one kernel
// launch per chunk of chains and takes the CPU's decisions from the same random numbers.
TemperingResult parallel_tempering(const Energy& energy, const float* x0, int64_t n_chains,
                                   const TemperingOptions& options, Device device = Device::cpu());

}  // namespace cuebm
