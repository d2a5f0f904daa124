// MALA and HMC on the CPU one chain at a time, for energies evaluated row by row (the analytic
// energies). For such energies a step is a few dozen flops per chain, so the batched path's
// per-step Energy::gradient call (row blocks, transposes, the thread pool) would cost more than
// the math: here each thread runs whole chains, all steps, with the per-row energy inlined. The
// decisions and the numbers are those of the batched path (the same per-chain math of
// kernels/sampling/mcmc.cuh in the same order), so results do not depend on which path ran.
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/sampling/mcmc.hpp"
#include "host/sampling/mcmc_draws.hpp"

namespace cuebm::detail {

// Per-step arrays of mala_sample: eta, sqrt(2 eta) sigma and T = sigma^2.
struct MalaStepValues {
  const std::vector<float>& eta;
  const std::vector<float>& coef;
  const std::vector<float>& temperature;
};

// Whether `energy` has a chain-at-a-time CPU path (an AnalyticEnergy).
bool has_chainwise_path(const Energy& energy);

// Run every chain from x (n x dim, updated in place) for n_steps; e receives the final energies,
// accepted the accepted proposals per chain, res.energy_trace (when sized) E after every step.
// Throws InvalidArgument (naming `who`) when an initial energy is not finite.
void mala_chainwise(const Energy& energy, std::vector<float>& x, std::vector<float>& e,
                    std::vector<int>& accepted, int n_steps, const MalaStepValues& schedule,
                    const McmcDraws& draws, McmcResult& res, const char* who);
void hmc_chainwise(const Energy& energy, std::vector<float>& x, std::vector<float>& e,
                   std::vector<int>& accepted, int n_steps, int n_leapfrog,
                   const std::vector<float>& step_size, const std::vector<float>& mass,
                   const McmcDraws& draws, McmcResult& res, const char* who);

}  // namespace cuebm::detail
