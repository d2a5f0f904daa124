// MALA and HMC (include/cuebm/sampling/mcmc.hpp): validation, the initial state, and the CPU
// backend. Every step evaluates the energy and gradient of all chains' proposals in one batched
// call (the MLP's vectorised CPU blocks, in parallel); the per-chain accept/reject is the shared
// math of kernels/sampling/mcmc.cuh, as on the GPU.
#include "cuebm/sampling/mcmc.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/diagnostics.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/sampling/langevin_options.hpp"
#include "host/sampling/mala_step.hpp"
#include "host/sampling/mcmc_chainwise.hpp"
#include "host/sampling/mcmc_draws.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "kernels/sampling/mcmc.cuh"
#if CUEBM_HAVE_CUDA
#include "host/sampling/cuda_mcmc.hpp"
#endif

namespace cuebm {
namespace detail {
namespace {

bool finite_row(const float* v, int dim) {
  for (int i = 0; i < dim; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

// Row r of the proposal (x1, g1, e1) replaces the state when accepted.
void keep_if_accepted(bool accept, int64_t r, int dim, const std::vector<float>& x1,
                      const std::vector<float>& g1, const std::vector<float>& e1,
                      std::vector<float>& x, std::vector<float>& g, std::vector<float>& e,
                      std::vector<int>& accepted) {
  if (!accept) return;
  const std::size_t k0 = static_cast<std::size_t>(r) * dim;
  std::copy(&x1[k0], &x1[k0] + dim, &x[k0]);
  std::copy(&g1[k0], &g1[k0] + dim, &g[k0]);
  e[r] = e1[r];
  ++accepted[r];
}

// Step t's energies into the trace (when diagnostics asked for one).
template <class T>
void record_energies(McmcResult& res, const std::vector<T>& e, int t) {
  if (res.energy_trace.empty()) return;
  std::copy(e.begin(), e.end(), res.energy_trace.begin() + static_cast<int64_t>(t) * res.n_chains);
}

}  // namespace

void finish_cpu(McmcResult& res, std::vector<float>& x, std::vector<float>& e,
                const std::vector<int>& accepted, int n_steps) {
  res.samples = std::move(x);
  res.energy = std::move(e);
  finish_acceptance(res, accepted, n_steps);
}

void start_trace(McmcResult& res, bool diagnostics, int n_steps) {
  if (diagnostics) res.energy_trace.assign(static_cast<std::size_t>(n_steps) * res.n_chains, 0.0f);
}

void finish_diagnostics(McmcResult& res, int n_steps) {
  if (res.energy_trace.empty() || n_steps < 4) return;
  std::vector<double> draws(res.energy_trace.size());
  for (int t = 0; t < n_steps; ++t)
    for (int64_t c = 0; c < res.n_chains; ++c)
      draws[c * n_steps + t] = res.energy_trace[static_cast<int64_t>(t) * res.n_chains + c];
  res.energy_rhat = split_rhat(draws, res.n_chains, n_steps);
  res.energy_ess = ess_bulk(draws, res.n_chains, n_steps);
}

void finish_acceptance(McmcResult& res, const std::vector<int>& accepted, int n_steps) {
  res.acceptance.resize(res.n_chains);
  int64_t total = 0;  // exact, as the device path's sum of the counts
  for (int64_t r = 0; r < res.n_chains; ++r) {
    res.acceptance[r] = n_steps > 0 ? static_cast<float>(accepted[r]) / n_steps : 0.0f;
    total += accepted[r];
  }
  res.mean_acceptance = n_steps > 0
                            ? static_cast<double>(total) /
                                  (static_cast<double>(n_steps) * static_cast<double>(res.n_chains))
                            : 0.0;
}

McmcStart start_mcmc(const Energy& energy, const float* x0, int64_t n_chains, int n_steps,
                     uint64_t seed, uint64_t first_chain, const Device& device, const char* who) {
  check_device(device);
#if !CUEBM_HAVE_CUDA
  if (device.is_cuda())
    throw InvalidArgument(std::string(who) + ": the CUDA backend is not available in this build");
#endif
  if (n_chains < 1)
    throw InvalidArgument(std::string(who) + ": n_chains must be >= 1, got " +
                          std::to_string(n_chains));
  if (n_steps < 0)
    throw InvalidArgument(std::string(who) + ": n_steps must be >= 0, got " +
                          std::to_string(n_steps));
  McmcStart s;
  const int dim = energy.dim();
  s.x.resize(n_chains * dim);
  if (x0) {
    require_finite_rows(x0, n_chains, dim, (std::string(who) + ": initial state").c_str());
    std::copy(x0, x0 + n_chains * dim, s.x.begin());
  } else {
    gaussian_initial_state(s.x.data(), n_chains, dim, seed, first_chain);
  }
  return s;
}

std::vector<float> full_mass(const std::vector<float>& mass, int dim, const char* who) {
  if (!mass.empty() && mass.size() != 1 && mass.size() != static_cast<std::size_t>(dim))
    throw InvalidArgument(std::string(who) + ": mass must have 0, 1 or dim = " +
                          std::to_string(dim) + " entries, got " + std::to_string(mass.size()));
  for (float m : mass)
    if (!(std::isfinite(m) && m > 0))
      throw InvalidArgument(std::string(who) + ": mass entries must be finite and > 0, got " +
                            std::to_string(m));
  if (mass.empty()) return std::vector<float>(dim, 1.0f);
  if (mass.size() == 1) return std::vector<float>(dim, mass[0]);
  return mass;
}

void require_finite_start(const std::vector<float>& e, const char* who) {
  for (std::size_t r = 0; r < e.size(); ++r)
    if (!std::isfinite(e[r]))
      throw InvalidArgument(std::string(who) + ": the energy of chain " + std::to_string(r) +
                            "'s initial state is not finite (" + std::to_string(e[r]) + ")");
}

}  // namespace detail

McmcResult mala_sample(const Energy& energy, const float* x0, int64_t n_chains,
                       const MalaOptions& o, Device device) {
  const char* who = "mala_sample";
  detail::McmcStart start =
      detail::start_mcmc(energy, x0, n_chains, o.n_steps, o.seed, o.first_chain, device, who);
  const std::vector<float> eta =
      o.step_size.values(std::max(o.n_steps, 1), "mala_sample: step_size");
  const std::vector<float> sigma =
      o.noise_scale.values(std::max(o.n_steps, 1), "mala_sample: noise_scale");
  const int dim = energy.dim();
  McmcResult res;
  res.n_chains = n_chains;
  res.dim = dim;
  res.temperature =
      static_cast<double>(sigma[std::max(o.n_steps, 1) - 1]) * sigma[std::max(o.n_steps, 1) - 1];
  std::vector<float> coef(eta.size()), temperature(eta.size());
  for (std::size_t t = 0; t < eta.size(); ++t) {
    coef[t] = std::sqrt(2.0f * eta[t]) * sigma[t];
    temperature[t] = sigma[t] * sigma[t];
    if (!(temperature[t] >= std::numeric_limits<float>::min()))
      throw InvalidArgument("mala_sample: noise_scale " + std::to_string(sigma[t]) + " at step " +
                            std::to_string(t) + " is too small: sigma^2 underflows float");
  }
  detail::start_trace(res, o.diagnostics, o.n_steps);
#if CUEBM_HAVE_CUDA
  if (device.is_cuda()) {  // R-hat and ESS come from ranks computed on the device
    detail::mala_sample_cuda(energy, start.x.data(), n_chains, o, eta, coef, temperature,
                             device.index, res);
    return res;
  }
#endif
  const detail::McmcDraws draws(o.noise, o.seed, o.first_chain, o.step_offset, n_chains, dim);
  if (detail::has_chainwise_path(energy)) {
    std::vector<float> e(n_chains);
    std::vector<int> accepted(n_chains, 0);
    detail::mala_chainwise(energy, start.x, e, accepted, o.n_steps, {eta, coef, temperature}, draws,
                           res, who);
    detail::finish_cpu(res, start.x, e, accepted, o.n_steps);
    detail::finish_diagnostics(res, o.n_steps);
    return res;
  }
  detail::MalaBatch b(n_chains, dim);
  b.x = std::move(start.x);
  std::vector<float> e(n_chains);  // the energies as the batched call writes them
  std::vector<int> accepted(n_chains, 0);
  energy.gradient(b.x.data(), n_chains, b.g.data(), e.data());
  detail::require_finite_start(e, who);
  b.e.assign(e.begin(), e.end());
  for (int t = 0; t < o.n_steps; ++t) {
    detail::mala_step(
        b, eta[t], [&](int64_t) { return coef[t]; }, [&](int64_t) { return temperature[t]; },
        [&](int64_t r, float* eps) { draws.normals(r, t, eps); },
        [&](int64_t r) { return draws.uniform(r, t); },
        [&](const std::vector<float>& x1, std::vector<float>& g1, std::vector<double>& e1) {
          energy.gradient(x1.data(), n_chains, g1.data(), e.data());
          e1.assign(e.begin(), e.end());
        },
        [&](int64_t r) { ++accepted[r]; });
    detail::record_energies(res, b.e, t);
  }
  e.assign(b.e.begin(), b.e.end());
  detail::finish_cpu(res, b.x, e, accepted, o.n_steps);
  detail::finish_diagnostics(res, o.n_steps);
  return res;
}

McmcResult hmc_sample(const Energy& energy, const float* x0, int64_t n_chains, const HmcOptions& o,
                      Device device) {
  const char* who = "hmc_sample";
  detail::McmcStart start =
      detail::start_mcmc(energy, x0, n_chains, o.n_steps, o.seed, o.first_chain, device, who);
  if (o.n_leapfrog < 1)
    throw InvalidArgument("hmc_sample: n_leapfrog must be >= 1, got " +
                          std::to_string(o.n_leapfrog));
  const int dim = energy.dim();
  const std::vector<float> mass = detail::full_mass(o.mass, dim, who);
  const std::vector<float> eps =
      o.step_size.values(std::max(o.n_steps, 1), "hmc_sample: step_size");
  McmcResult res;
  res.n_chains = n_chains;
  res.dim = dim;
  res.temperature = 1.0;
  detail::start_trace(res, o.diagnostics, o.n_steps);
#if CUEBM_HAVE_CUDA
  if (device.is_cuda()) {  // R-hat and ESS come from ranks computed on the device
    detail::hmc_sample_cuda(energy, start.x.data(), n_chains, o, eps, mass, device.index, res);
    return res;
  }
#endif
  std::vector<float>& x = start.x;
  const detail::McmcDraws draws(o.noise, o.seed, o.first_chain, o.step_offset, n_chains, dim);
  if (detail::has_chainwise_path(energy)) {
    std::vector<float> e(n_chains);
    std::vector<int> accepted(n_chains, 0);
    detail::hmc_chainwise(energy, x, e, accepted, o.n_steps, o.n_leapfrog, eps, mass, draws, res,
                          who);
    detail::finish_cpu(res, x, e, accepted, o.n_steps);
    detail::finish_diagnostics(res, o.n_steps);
    return res;
  }
  const std::size_t nd = static_cast<std::size_t>(n_chains) * dim;
  std::vector<float> g(nd), e(n_chains), x1(nd), g1(nd), e1(n_chains), p(nd), z(dim);
  std::vector<double> h0(n_chains);
  std::vector<int> accepted(n_chains, 0);
  energy.gradient(x.data(), n_chains, g.data(), e.data());
  detail::require_finite_start(e, who);
  for (int t = 0; t < o.n_steps; ++t) {
    const float h = eps[t];
    for (int64_t r = 0; r < n_chains; ++r) {
      draws.normals(r, t, z.data());
      double kinetic = 0;
      for (int i = 0; i < dim; ++i) {
        const std::size_t k = r * dim + i;
        p[k] = std::sqrt(mass[i]) * z[i];
        kinetic += detail::hmc_kinetic(p[k], mass[i]);
      }
      h0[r] = static_cast<double>(e[r]) + kinetic;
    }
    x1 = x;
    g1 = g;
    for (int l = 0; l < o.n_leapfrog; ++l) {
      for (std::size_t k = 0; k < nd; ++k) {
        p[k] = detail::hmc_half_kick(p[k], h, g1[k]);
        x1[k] = detail::hmc_drift(x1[k], p[k], h, mass[k % dim]);
      }
      energy.gradient(x1.data(), n_chains, g1.data(), e1.data());
      for (std::size_t k = 0; k < nd; ++k) p[k] = detail::hmc_half_kick(p[k], h, g1[k]);
    }
    for (int64_t r = 0; r < n_chains; ++r) {
      const std::size_t k0 = r * dim;
      double kinetic = 0;
      for (int i = 0; i < dim; ++i) kinetic += detail::hmc_kinetic(p[k0 + i], mass[i]);
      const double log_alpha = detail::hmc_log_alpha(h0[r], static_cast<double>(e1[r]) + kinetic);
      const bool ok = std::isfinite(e1[r]) && detail::finite_row(&x1[k0], dim) &&
                      detail::finite_row(&g1[k0], dim);
      const bool accept = ok && detail::mcmc_accept(draws.uniform(r, t), log_alpha);
      detail::keep_if_accepted(accept, r, dim, x1, g1, e1, x, g, e, accepted);
    }
    detail::record_energies(res, e, t);
  }
  detail::finish_cpu(res, x, e, accepted, o.n_steps);
  detail::finish_diagnostics(res, o.n_steps);
  return res;
}

}  // namespace cuebm
