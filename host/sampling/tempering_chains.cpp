// Replica-exchange chains on the CPU (host/sampling/tempering_chains.hpp).
#include "host/sampling/tempering_chains.hpp"

#include <algorithm>
#include <cmath>

#include "host/sampling/mcmc_draws.hpp"
#include "kernels/sampling/mcmc.cuh"
#include "kernels/sampling/tempering_swap.cuh"

namespace cuebm::detail {

std::vector<double> geometric_ladder(double t_min, double t_max, int R) {
  std::vector<double> t;
  for (int r = 0; r < R; ++r)
    t.push_back(t_min * std::pow(t_max / t_min, static_cast<double>(r) / (R - 1)));
  return t;
}

void replicate_chains(const float* x, int64_t n_chains, int R, int dim, float* replicas) {
  for (int64_t c = 0; c < n_chains; ++c)
    for (int r = 0; r < R; ++r)
      std::copy(x + c * dim, x + (c + 1) * dim, replicas + (c * R + r) * dim);
}

TemperingChains::TemperingChains(int64_t max_chains, int n_replicas, int dim)
    : R_(n_replicas),
      b_(max_chains * n_replicas, dim),
      e_(static_cast<std::size_t>(max_chains) * n_replicas),
      coef_(n_replicas),
      moves_(n_replicas),
      swaps_(n_replicas - 1),
      tried_(n_replicas - 1) {}

void TemperingChains::start(const Energy& energy, const float* x, int64_t n_chains) {
  replicate_chains(x, n_chains, R_, b_.dim, b_.x.data());
  evaluate_start(energy, n_chains);
}

void TemperingChains::start_replicas(const Energy& energy, const float* replicas,
                                     int64_t n_chains) {
  std::copy(replicas, replicas + n_chains * R_ * b_.dim, b_.x.begin());
  evaluate_start(energy, n_chains);
}

void TemperingChains::evaluate_start(const Energy& energy, int64_t n_chains) {
  n_chains_ = n_chains;
  b_.n = n_chains * R_;
  energy.gradient(b_.x.data(), b_.n, b_.g.data(), e_.data());
  std::copy_n(e_.begin(), b_.n, b_.e.begin());
  std::fill(moves_.begin(), moves_.end(), 0);
  std::fill(swaps_.begin(), swaps_.end(), 0);
  std::fill(tried_.begin(), tried_.end(), 0);
}

void TemperingChains::run(const Energy& energy, const std::vector<double>& temps, float eta,
                          int n_steps, int swap_every, uint64_t seed, uint64_t first_chain,
                          uint64_t step_offset) {
  const int R = R_, dim = b_.dim;
  for (int r = 0; r < R; ++r) coef_[r] = static_cast<float>(std::sqrt(2.0 * eta * temps[r]));
  const McmcDraws draws(nullptr, seed, first_chain, step_offset, b_.n, dim);
  for (int t = 0; t < n_steps; ++t) {
    mala_step(
        b_, eta, [&](int64_t row) { return coef_[row % R]; },
        [&](int64_t row) { return temps[row % R]; },
        [&](int64_t row, float* eps) { draws.normals(row, t, eps); },
        [&](int64_t row) { return draws.uniform(row, t); },
        batched_evaluate(energy, b_.n, e_.data()), [&](int64_t row) { ++moves_[row % R]; });
    const uint64_t step = step_offset + static_cast<uint64_t>(t);
    if ((step + 1) % static_cast<uint64_t>(swap_every) != 0) continue;
    const uint64_t round = (step + 1) / static_cast<uint64_t>(swap_every) - 1;
    const int parity = static_cast<int>(round % 2);
    for (int64_t c = 0; c < n_chains_; ++c)
      for (int r = parity; r + 1 < R; r += 2) {
        const int64_t lo = c * R + r, hi = lo + 1;
        const double log_alpha = swap_log_alpha(temps[r], temps[r + 1], b_.e[lo], b_.e[hi]);
        const float u = swap_uniform(seed, first_chain, static_cast<uint64_t>(c), round, R, r);
        ++tried_[r];
        if (mcmc_accept(u, log_alpha)) {
          std::swap_ranges(&b_.x[lo * dim], &b_.x[lo * dim] + dim, &b_.x[hi * dim]);
          std::swap_ranges(&b_.g[lo * dim], &b_.g[lo * dim] + dim, &b_.g[hi * dim]);
          std::swap(b_.e[lo], b_.e[hi]);
          ++swaps_[r];
        }
      }
  }
}

void TemperingChains::coldest(float* out) const {
  const int dim = b_.dim;
  for (int64_t c = 0; c < n_chains_; ++c)
    std::copy(&b_.x[c * R_ * dim], &b_.x[c * R_ * dim] + dim, out + c * dim);
}

}  // namespace cuebm::detail
