// Replica-exchange parallel tempering (include/cuebm/sampling/tempering.hpp): validation, the
// initial replicas and the result. The CPU run is the chains of host/sampling/tempering_chains.hpp
// (shared with the CD trainer's negatives); the CUDA backend
// (kernels/sampling/tempering_kernels.cu) takes the same decisions from the same numbers.
#include "cuebm/sampling/tempering.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/sampling/cuda_tempering.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "host/sampling/tempering_chains.hpp"

namespace cuebm {
namespace {

std::vector<double> ladder(const TemperingOptions& o) {
  const std::string w = "parallel_tempering: ";
  std::vector<double> t = o.temperatures;
  if (t.empty()) {
    if (o.n_replicas < 2)
      throw InvalidArgument(w + "n_replicas must be >= 2, got " + std::to_string(o.n_replicas));
    if (!(std::isfinite(o.t_min) && std::isfinite(o.t_max) && 0 < o.t_min && o.t_min < o.t_max))
      throw InvalidArgument(w + "need 0 < t_min < t_max, got " + std::to_string(o.t_min) + " and " +
                            std::to_string(o.t_max));
    return detail::geometric_ladder(o.t_min, o.t_max, o.n_replicas);
  }
  if (t.size() < 2) throw InvalidArgument(w + "the ladder needs >= 2 temperatures");
  for (std::size_t r = 0; r < t.size(); ++r)
    if (!(std::isfinite(t[r]) && t[r] > 0 && (r == 0 || t[r] > t[r - 1])))
      throw InvalidArgument(w + "temperatures must be finite, > 0 and increasing; entry " +
                            std::to_string(r) + " is " + std::to_string(t[r]));
  return t;
}

// The initial replicas, rows c * R + r: x0's row c for every r, or N(0, I) per replica.
void replica_starts(const detail::McmcStart& start, bool given, int64_t n_chains, int R, int dim,
                    const TemperingOptions& o, float* x) {
  if (given) {
    detail::replicate_chains(start.x.data(), n_chains, R, dim, x);
  } else {
    gaussian_initial_state(x, n_chains * R, dim, o.seed, o.first_chain);
  }
}

// move_acceptance and swap_acceptance from the counts summed over the chains.
void finish_acceptance(TemperingResult& res, const std::vector<int64_t>& moves,
                       const std::vector<int64_t>& swaps, const std::vector<int64_t>& tried,
                       int n_steps) {
  for (std::size_t r = 0; r < moves.size(); ++r)
    res.move_acceptance.push_back(n_steps > 0 ? static_cast<double>(moves[r]) /
                                                    (static_cast<double>(n_steps) * res.n_chains)
                                              : 0.0);
  for (std::size_t r = 0; r < swaps.size(); ++r)
    res.swap_acceptance.push_back(tried[r] > 0 ? static_cast<double>(swaps[r]) / tried[r] : 0.0);
}

}  // namespace

TemperingResult parallel_tempering(const Energy& energy, const float* x0, int64_t n_chains,
                                   const TemperingOptions& o, Device device) {
  const char* who = "parallel_tempering";
  const std::vector<double> temps = ladder(o);
  const int R = static_cast<int>(temps.size());
  if (o.swap_every < 1)
    throw InvalidArgument("parallel_tempering: swap_every must be >= 1, got " +
                          std::to_string(o.swap_every));
  if (!(std::isfinite(o.step_size) && o.step_size > 0))
    throw InvalidArgument("parallel_tempering: step_size must be finite and > 0, got " +
                          std::to_string(o.step_size));
  // Validates the device, n_chains, n_steps and x0 (one replica's worth).
  const detail::McmcStart start =
      detail::start_mcmc(energy, x0, n_chains, o.n_steps, o.seed, o.first_chain, device, who);
  const int dim = energy.dim();
  const int64_t rows = n_chains * R;
  const float eta = o.step_size;
  std::vector<float> coef(R);  // sqrt(2 eta T_r)
  for (int r = 0; r < R; ++r) coef[r] = static_cast<float>(std::sqrt(2.0 * eta * temps[r]));
  TemperingResult res;
  res.n_chains = n_chains;
  res.dim = dim;
  res.temperatures = temps;
  std::vector<float> x(static_cast<std::size_t>(rows) * dim);
  replica_starts(start, x0 != nullptr, n_chains, R, dim, o, x.data());
#if CUEBM_HAVE_CUDA
  if (device.is_cuda()) {
    const detail::TemperingCounts counts =
        detail::parallel_tempering_cuda(energy, x, n_chains, o, temps, coef, device.index, res);
    // Every round tries each pair of its parity once per chain: rounds 0, 2, ... the even pairs.
    const int64_t rounds = o.n_steps / o.swap_every;
    std::vector<int64_t> tried(R - 1);
    for (int r = 0; r + 1 < R; ++r)
      tried[r] = n_chains * (r % 2 == 0 ? (rounds + 1) / 2 : rounds / 2);
    finish_acceptance(res, counts.moves, counts.swaps, tried, o.n_steps);
    return res;
  }
#endif
  detail::TemperingChains chains(n_chains, R, dim);
  chains.start_replicas(energy, x.data(), n_chains);
  detail::require_finite_start(chains.energies(), who);
  chains.run(energy, temps, eta, o.n_steps, o.swap_every, o.seed, o.first_chain, 0);
  res.samples.resize(static_cast<std::size_t>(n_chains) * dim);
  chains.coldest(res.samples.data());
  res.energy.resize(n_chains);
  for (int64_t c = 0; c < n_chains; ++c)
    res.energy[c] = static_cast<float>(chains.energies()[c * R]);
  finish_acceptance(res, chains.moves(), chains.swaps(), chains.tried(), o.n_steps);
  return res;
}

}  // namespace cuebm
