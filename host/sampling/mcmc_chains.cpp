// MALA and HMC chains on the CPU (host/sampling/mcmc_chains.hpp): the batched path, where every
// step evaluates all proposals in one call; the per-chain accept/reject is the shared math of
// kernels/sampling/mcmc.cuh, as on the GPU.
#include "host/sampling/mcmc_chains.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "host/sampling/mcmc_chainwise.hpp"

namespace cuebm::detail {
namespace {

// E of the first `rows` chains after step t into the trace (when there is one).
template <class T>
void record_energies(float* trace, const std::vector<T>& e, int64_t rows, int t) {
  if (trace) std::copy_n(e.begin(), rows, trace + static_cast<int64_t>(t) * rows);
}

}  // namespace

MalaSchedule mala_schedule(const Schedule& step_size, const Schedule& noise_scale, int n_steps,
                           const char* who) {
  const int n = std::max(n_steps, 1);
  MalaSchedule s;
  s.eta = step_size.values(n, (std::string(who) + ": step_size").c_str());
  const std::vector<float> sigma =
      noise_scale.values(n, (std::string(who) + ": noise_scale").c_str());
  s.last_temperature = static_cast<double>(sigma[n - 1]) * sigma[n - 1];
  s.coef.resize(n);
  s.temperature.resize(n);
  for (int t = 0; t < n; ++t) {
    s.coef[t] = std::sqrt(2.0f * s.eta[t]) * sigma[t];
    s.temperature[t] = sigma[t] * sigma[t];
    if (!(s.temperature[t] >= std::numeric_limits<float>::min()))
      throw InvalidArgument(std::string(who) + ": noise_scale " + std::to_string(sigma[t]) +
                            " at step " + std::to_string(t) +
                            " is too small: sigma^2 underflows float");
  }
  return s;
}

MalaChains::MalaChains(int64_t max_rows, int dim)
    : b_(max_rows, dim), e_(max_rows), accepted_(max_rows, 0) {}

void MalaChains::start(const Energy& energy, const float* x, int64_t rows) {
  b_.n = rows;
  std::copy(x, x + rows * b_.dim, b_.x.begin());
  energy.gradient(b_.x.data(), rows, b_.g.data(), e_.data());
  std::copy_n(e_.begin(), rows, b_.e.begin());
  std::fill_n(accepted_.begin(), rows, 0);
}

void MalaChains::run(const Energy& energy, int n_steps, const MalaSchedule& s,
                     const McmcDraws& draws, float* energy_trace) {
  if (has_chainwise_path(energy)) return run_chainwise(energy, n_steps, s, draws, energy_trace);
  for (int t = 0; t < n_steps; ++t) {
    mala_step(
        b_, s.eta[t], [&](int64_t) { return s.coef[t]; }, [&](int64_t) { return s.temperature[t]; },
        [&](int64_t r, float* eps) { draws.normals(r, t, eps); },
        [&](int64_t r) { return draws.uniform(r, t); }, batched_evaluate(energy, b_.n, e_.data()),
        [&](int64_t r) { ++accepted_[r]; });
    record_energies(energy_trace, b_.e, b_.n, t);
  }
}

HmcChains::HmcChains(int64_t max_rows, int dim)
    : dim_(dim),
      x_(static_cast<std::size_t>(max_rows) * dim),
      g_(x_.size()),
      e_(max_rows),
      x1_(x_.size()),
      g1_(x_.size()),
      e1_(max_rows),
      p_(x_.size()),
      z_(dim),
      h0_(max_rows),
      accepted_(max_rows, 0) {}

void HmcChains::evaluate(const Energy& energy, const float* x, float* g, float* e) const {
  energy.gradient(x, n_, g, e);
  if (inv_t_ == 1.0f) return;
  for (int64_t k = 0; k < n_ * dim_; ++k) g[k] *= inv_t_;
  for (int64_t r = 0; r < n_; ++r) e[r] *= inv_t_;
}

void HmcChains::start(const Energy& energy, const float* x, int64_t rows, float inv_temperature) {
  n_ = rows;
  inv_t_ = inv_temperature;
  std::copy(x, x + rows * dim_, x_.begin());
  evaluate(energy, x_.data(), g_.data(), e_.data());
  std::fill_n(accepted_.begin(), rows, 0);
}

void HmcChains::run(const Energy& energy, int n_steps, const HmcSettings& hs,
                    const McmcDraws& draws, float* energy_trace) {
  if (has_chainwise_path(energy)) return run_chainwise(energy, n_steps, hs, draws, energy_trace);
  const int dim = dim_;
  const float* mass = hs.mass;
  const std::size_t nd = static_cast<std::size_t>(n_) * dim;
  for (int t = 0; t < n_steps; ++t) {
    const float h = hs.eps[t];
    for (int64_t r = 0; r < n_; ++r) {
      draws.normals(r, t, z_.data());
      double kinetic = 0;
      for (int i = 0; i < dim; ++i) {
        const std::size_t k = r * dim + i;
        p_[k] = std::sqrt(mass[i]) * z_[i];
        kinetic += hmc_kinetic(p_[k], mass[i]);
      }
      h0_[r] = static_cast<double>(e_[r]) + kinetic;
    }
    std::copy_n(x_.begin(), nd, x1_.begin());
    std::copy_n(g_.begin(), nd, g1_.begin());
    for (int l = 0; l < hs.n_leapfrog; ++l) {
      for (std::size_t k = 0; k < nd; ++k) {
        p_[k] = hmc_half_kick(p_[k], h, g1_[k]);
        x1_[k] = hmc_drift(x1_[k], p_[k], h, mass[k % dim]);
      }
      evaluate(energy, x1_.data(), g1_.data(), e1_.data());
      for (std::size_t k = 0; k < nd; ++k) p_[k] = hmc_half_kick(p_[k], h, g1_[k]);
    }
    for (int64_t r = 0; r < n_; ++r) {
      const std::size_t k0 = r * dim;
      double kinetic = 0;
      for (int i = 0; i < dim; ++i) kinetic += hmc_kinetic(p_[k0 + i], mass[i]);
      const double log_alpha = hmc_log_alpha(h0_[r], static_cast<double>(e1_[r]) + kinetic);
      const bool ok =
          std::isfinite(e1_[r]) && all_finite(&x1_[k0], dim) && all_finite(&g1_[k0], dim);
      if (ok && mcmc_accept(draws.uniform(r, t), log_alpha)) {
        std::copy(&x1_[k0], &x1_[k0] + dim, &x_[k0]);
        std::copy(&g1_[k0], &g1_[k0] + dim, &g_[k0]);
        e_[r] = e1_[r];
        ++accepted_[r];
      }
    }
    record_energies(energy_trace, e_, n_, t);
  }
}

}  // namespace cuebm::detail
