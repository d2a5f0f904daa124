// Replica-exchange chains on the CPU (host/sampling/tempering_chains.hpp).
#include "host/sampling/tempering_chains.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/runtime/philox.cuh"
#include "kernels/sampling/mcmc.cuh"

namespace cuebm::detail {
namespace {

// Swap decisions: a Philox subsequence per chain, far from every MALA chain id (as
// parallel_tempering's).
constexpr uint64_t kSwapStreams = uint64_t{1} << 62;

}  // namespace

TemperingChains::TemperingChains(int64_t max_chains, int n_replicas, int dim)
    : R_(n_replicas),
      b_(max_chains * n_replicas, dim),
      e_(static_cast<std::size_t>(max_chains) * n_replicas),
      coef_(n_replicas),
      moves_(n_replicas),
      swaps_(n_replicas - 1),
      tried_(n_replicas - 1) {}

void TemperingChains::start(const Energy& energy, const float* x, int64_t n_chains) {
  const int dim = b_.dim;
  n_chains_ = n_chains;
  b_.n = n_chains * R_;
  for (int64_t c = 0; c < n_chains; ++c)
    for (int r = 0; r < R_; ++r)
      std::copy(x + c * dim, x + (c + 1) * dim, &b_.x[(c * R_ + r) * dim]);
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
  const int64_t rows = b_.n;
  for (int r = 0; r < R; ++r) coef_[r] = static_cast<float>(std::sqrt(2.0 * eta * temps[r]));
  const auto chain_id = [&](int64_t row) { return first_chain + static_cast<uint64_t>(row); };
  for (int t = 0; t < n_steps; ++t) {
    const uint64_t step = step_offset + static_cast<uint64_t>(t);
    mala_step(
        b_, eta, [&](int64_t row) { return coef_[row % R]; },
        [&](int64_t row) { return temps[row % R]; },
        [&](int64_t row, float* eps) {
          for (int q = 0; 4 * q < dim; ++q) {
            const Normal4 z = mcmc_normal4(seed, chain_id(row), step, dim, q);
            for (int k = 0; k < 4 && 4 * q + k < dim; ++k) eps[4 * q + k] = z.v[k];
          }
        },
        [&](int64_t row) { return mcmc_uniform(seed, chain_id(row), step, dim); },
        [&](const std::vector<float>& x1, std::vector<float>& g1, std::vector<double>& e1) {
          energy.gradient(x1.data(), rows, g1.data(), e_.data());
          std::copy_n(e_.begin(), rows, e1.begin());
        },
        [&](int64_t row) { ++moves_[row % R]; });
    if ((step + 1) % static_cast<uint64_t>(swap_every) != 0) continue;
    const uint64_t round = (step + 1) / static_cast<uint64_t>(swap_every) - 1;
    const int parity = static_cast<int>(round % 2);
    for (int64_t c = 0; c < n_chains_; ++c)
      for (int r = parity; r + 1 < R; r += 2) {
        const int64_t lo = c * R + r, hi = lo + 1;
        const double log_alpha = (1.0 / temps[r] - 1.0 / temps[r + 1]) * (b_.e[lo] - b_.e[hi]);
        const float u = philox_uniform(seed, kSwapStreams + first_chain + c, round * R + r);
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
