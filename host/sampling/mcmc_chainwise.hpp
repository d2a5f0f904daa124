// MALA and HMC on the CPU one chain at a time, for energies evaluated row by row (the analytic
// energies): the path MalaChains::run and HmcChains::run (host/sampling/mcmc_chains.hpp) take
// for them. For such energies a step is a few dozen flops per chain, so the batched path's
// per-step Energy::gradient call (row blocks, transposes, the thread pool) would cost more than
// the math: here each thread runs whole chains, all steps, with the per-row energy inlined. The
// decisions and the numbers are those of the batched path (the same per-chain math of
// kernels/sampling/mcmc.cuh in the same order), so results do not depend on which path ran.
#pragma once

#include "cuebm/models/energy.hpp"

namespace cuebm::detail {

// Whether `energy` has a chain-at-a-time CPU path (an AnalyticEnergy).
bool has_chainwise_path(const Energy& energy);

}  // namespace cuebm::detail
