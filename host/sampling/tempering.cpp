// Replica-exchange parallel tempering on the CPU (include/cuebm/sampling/tempering.hpp). The
// n_chains x R replicas are rows c * R + r of one batch: each step is one batched gradient call
// and the per-row MALA decision of kernels/sampling/mcmc.cuh at the row's temperature.
#include "cuebm/sampling/tempering.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "kernels/sampling/mcmc.cuh"

namespace cuebm {
namespace {

// Swap decisions: a Philox subsequence per chain, far from every MALA chain id.
constexpr uint64_t kSwapStreamBase = uint64_t{1} << 62;

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
  if (device.is_cuda())
    throw InvalidArgument("parallel_tempering: the CUDA backend has no tempering yet: use the CPU");
  const int dim = energy.dim();
  const int64_t rows = n_chains * R;
  const std::size_t nd = static_cast<std::size_t>(rows) * dim;
  std::vector<float> x(nd), g(nd), e(rows), x1(nd), g1(nd), e1(rows);
  if (x0) {
    for (int64_t c = 0; c < n_chains; ++c)
      for (int r = 0; r < R; ++r)
        std::copy(&start.x[c * dim], &start.x[c * dim] + dim, &x[(c * R + r) * dim]);
  } else {
    gaussian_initial_state(x.data(), rows, dim, o.seed, o.first_chain);
  }
  energy.gradient(x.data(), rows, g.data(), e.data());
  detail::require_finite_start(e, who);
  std::vector<int64_t> moves(R, 0), swaps(R - 1, 0), tried(R - 1, 0);
  const float eta = o.step_size;
  int64_t round = 0;
  for (int t = 0; t < o.n_steps; ++t) {
    const uint64_t step = static_cast<uint64_t>(t);
    std::vector<double> fwd(rows);
    for (int64_t row = 0; row < rows; ++row) {
      const double temp = temps[row % R];
      const float coef = static_cast<float>(std::sqrt(2.0 * eta * temp));
      double f = 0;
      for (int q = 0; 4 * q < dim; ++q) {
        const detail::Normal4 z =
            detail::mcmc_normal4(o.seed, o.first_chain + static_cast<uint64_t>(row), step, dim, q);
        for (int k = 0; k < 4 && 4 * q + k < dim; ++k) {
          const std::size_t i = row * dim + 4 * q + k;
          x1[i] = detail::mala_proposal(x[i], g[i], eta, coef, z.v[k]);
          f += detail::mala_square(x1[i], x[i], eta, g[i]);
        }
      }
      fwd[row] = f;
    }
    energy.gradient(x1.data(), rows, g1.data(), e1.data());
    for (int64_t row = 0; row < rows; ++row) {
      double rev = 0;
      bool ok = std::isfinite(e1[row]);
      for (int i = 0; i < dim; ++i) {
        const std::size_t k = row * dim + i;
        rev += detail::mala_square(x[k], x1[k], eta, g1[k]);
        ok = ok && std::isfinite(g1[k]);
      }
      const double log_alpha =
          detail::mala_log_alpha(e[row], e1[row], fwd[row], rev, eta, temps[row % R]);
      const float u =
          detail::mcmc_uniform(o.seed, o.first_chain + static_cast<uint64_t>(row), step, dim);
      if (ok && detail::mcmc_accept(u, log_alpha)) {
        std::copy(&x1[row * dim], &x1[row * dim] + dim, &x[row * dim]);
        std::copy(&g1[row * dim], &g1[row * dim] + dim, &g[row * dim]);
        e[row] = e1[row];
        ++moves[row % R];
      }
    }
    if ((t + 1) % o.swap_every != 0) continue;
    const int parity = static_cast<int>(round % 2);
    for (int64_t c = 0; c < n_chains; ++c)
      for (int r = parity; r + 1 < R; r += 2) {
        const int64_t a = c * R + r, b = a + 1;
        const double log_alpha =
            (1.0 / temps[r] - 1.0 / temps[r + 1]) * (static_cast<double>(e[a]) - e[b]);
        const float u = detail::philox_uniform(o.seed, kSwapStreamBase + o.first_chain + c,
                                               static_cast<uint64_t>(round) * R + r);
        ++tried[r];
        if (detail::mcmc_accept(u, log_alpha)) {
          std::swap_ranges(&x[a * dim], &x[a * dim] + dim, &x[b * dim]);
          std::swap_ranges(&g[a * dim], &g[a * dim] + dim, &g[b * dim]);
          std::swap(e[a], e[b]);
          ++swaps[r];
        }
      }
    ++round;
  }
  TemperingResult res;
  res.n_chains = n_chains;
  res.dim = dim;
  res.temperatures = temps;
  res.samples.resize(static_cast<std::size_t>(n_chains) * dim);
  res.energy.resize(n_chains);
  for (int64_t c = 0; c < n_chains; ++c) {
    std::copy(&x[c * R * dim], &x[c * R * dim] + dim, &res.samples[c * dim]);
    res.energy[c] = e[c * R];
  }
  for (int r = 0; r < R; ++r)
    res.move_acceptance.push_back(o.n_steps > 0 ? static_cast<double>(moves[r]) /
                                                      (static_cast<double>(o.n_steps) * n_chains)
                                                : 0.0);
  for (int r = 0; r + 1 < R; ++r)
    res.swap_acceptance.push_back(tried[r] > 0 ? static_cast<double>(swaps[r]) / tried[r] : 0.0);
  return res;
}

}  // namespace cuebm
