// Replica-exchange parallel tempering (include/cuebm/sampling/tempering.hpp). On the CPU the
// n_chains x R replicas are rows c * R + r of one batch: each step is one batched gradient call
// and the per-row MALA decision of kernels/sampling/mcmc.cuh at the row's temperature. The CUDA
// backend (kernels/sampling/tempering_kernels.cu) takes the same decisions from the same numbers.
#include "cuebm/sampling/tempering.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/sampling/cuda_tempering.hpp"
#include "host/sampling/mala_step.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "kernels/sampling/tempering_swap.cuh"

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
    for (int r = 0; r < o.n_replicas; ++r)
      t.push_back(o.t_min *
                  std::pow(o.t_max / o.t_min, static_cast<double>(r) / (o.n_replicas - 1)));
    return t;
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
    for (int64_t c = 0; c < n_chains; ++c)
      for (int r = 0; r < R; ++r)
        std::copy(&start.x[c * dim], &start.x[c * dim] + dim, &x[(c * R + r) * dim]);
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
#if CUEBM_HAVE_CUDA
  if (device.is_cuda()) {
    std::vector<float> x(static_cast<std::size_t>(rows) * dim);
    replica_starts(start, x0 != nullptr, n_chains, R, dim, o, x.data());
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
  detail::MalaBatch b(rows, dim);
  replica_starts(start, x0 != nullptr, n_chains, R, dim, o, b.x.data());
  std::vector<float> e(rows);  // the energies as the batched call writes them
  energy.gradient(b.x.data(), rows, b.g.data(), e.data());
  detail::require_finite_start(e, who);
  b.e.assign(e.begin(), e.end());
  std::vector<int64_t> moves(R, 0), swaps(R - 1, 0), tried(R - 1, 0);
  int64_t round = 0;
  for (int t = 0; t < o.n_steps; ++t) {
    const uint64_t step = static_cast<uint64_t>(t);
    auto chain_id = [&](int64_t row) { return o.first_chain + static_cast<uint64_t>(row); };
    detail::mala_step(
        b, eta, [&](int64_t row) { return coef[row % R]; },
        [&](int64_t row) { return temps[row % R]; },
        [&](int64_t row, float* eps) {
          for (int q = 0; 4 * q < dim; ++q) {
            const detail::Normal4 z = detail::mcmc_normal4(o.seed, chain_id(row), step, dim, q);
            for (int k = 0; k < 4 && 4 * q + k < dim; ++k) eps[4 * q + k] = z.v[k];
          }
        },
        [&](int64_t row) { return detail::mcmc_uniform(o.seed, chain_id(row), step, dim); },
        [&](const std::vector<float>& x1, std::vector<float>& g1, std::vector<double>& e1) {
          energy.gradient(x1.data(), rows, g1.data(), e.data());
          e1.assign(e.begin(), e.end());
        },
        [&](int64_t row) { ++moves[row % R]; });
    if ((t + 1) % o.swap_every != 0) continue;
    const int parity = static_cast<int>(round % 2);
    for (int64_t c = 0; c < n_chains; ++c)
      for (int r = parity; r + 1 < R; r += 2) {
        const int64_t lo = c * R + r, hi = lo + 1;
        const double log_alpha = detail::swap_log_alpha(temps[r], temps[r + 1], b.e[lo], b.e[hi]);
        const float u = detail::swap_uniform(o.seed, o.first_chain, static_cast<uint64_t>(c),
                                             static_cast<uint64_t>(round), R, r);
        ++tried[r];
        if (detail::mcmc_accept(u, log_alpha)) {
          std::swap_ranges(&b.x[lo * dim], &b.x[lo * dim] + dim, &b.x[hi * dim]);
          std::swap_ranges(&b.g[lo * dim], &b.g[lo * dim] + dim, &b.g[hi * dim]);
          std::swap(b.e[lo], b.e[hi]);
          ++swaps[r];
        }
      }
    ++round;
  }
  res.samples.resize(static_cast<std::size_t>(n_chains) * dim);
  res.energy.resize(n_chains);
  for (int64_t c = 0; c < n_chains; ++c) {
    std::copy(&b.x[c * R * dim], &b.x[c * R * dim] + dim, &res.samples[c * dim]);
    res.energy[c] = static_cast<float>(b.e[c * R]);
  }
  finish_acceptance(res, moves, swaps, tried, o.n_steps);
  return res;
}

}  // namespace cuebm
