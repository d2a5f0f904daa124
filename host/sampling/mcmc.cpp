// MALA and HMC (include/cuebm/sampling/mcmc.hpp): validation, the initial state and the result;
// the CPU run is the chains of host/sampling/mcmc_chains.hpp (shared with the CD trainer's
// negatives), the CUDA run host/sampling/cuda_mcmc.hpp.
#include "cuebm/sampling/mcmc.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/diagnostics.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/sampling/langevin_options.hpp"
#include "host/sampling/mcmc_chains.hpp"
#include "host/sampling/mcmc_draws.hpp"
#include "host/sampling/mcmc_support.hpp"
#if CUEBM_HAVE_CUDA
#include "host/sampling/cuda_mcmc.hpp"
#endif

namespace cuebm {
namespace detail {
namespace {

float* trace_of(McmcResult& res) {
  return res.energy_trace.empty() ? nullptr : res.energy_trace.data();
}

// The chains' final state, energies, acceptance and diagnostics into res.
template <class Chains>
McmcResult finish_cpu(McmcResult res, const Chains& chains, int n_steps) {
  const int64_t n = res.n_chains;
  res.samples.assign(chains.states(), chains.states() + n * res.dim);
  res.energy.resize(n);
  std::copy_n(chains.energies().begin(), n, res.energy.begin());
  finish_acceptance(res, chains.accepted(), n_steps);
  finish_diagnostics(res, n_steps);
  return res;
}

}  // namespace

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

}  // namespace detail

McmcResult mala_sample(const Energy& energy, const float* x0, int64_t n_chains,
                       const MalaOptions& o, Device device) {
  const char* who = "mala_sample";
  const detail::McmcStart start =
      detail::start_mcmc(energy, x0, n_chains, o.n_steps, o.seed, o.first_chain, device, who);
  const detail::MalaSchedule s = detail::mala_schedule(o.step_size, o.noise_scale, o.n_steps, who);
  const int dim = energy.dim();
  McmcResult res;
  res.n_chains = n_chains;
  res.dim = dim;
  res.temperature = s.last_temperature;
  detail::start_trace(res, o.diagnostics, o.n_steps);
#if CUEBM_HAVE_CUDA
  if (device.is_cuda()) {  // R-hat and ESS come from ranks computed on the device
    detail::mala_sample_cuda(energy, start.x.data(), n_chains, o, s.eta, s.coef, s.temperature,
                             device.index, res);
    return res;
  }
#endif
  detail::MalaChains chains(n_chains, dim);
  chains.start(energy, start.x.data(), n_chains);
  detail::require_finite_start(chains.energies(), who);
  const detail::McmcDraws draws(o.noise, o.seed, o.first_chain, o.step_offset, n_chains, dim);
  chains.run(energy, o.n_steps, s, draws, detail::trace_of(res));
  return detail::finish_cpu(std::move(res), chains, o.n_steps);
}

McmcResult hmc_sample(const Energy& energy, const float* x0, int64_t n_chains, const HmcOptions& o,
                      Device device) {
  const char* who = "hmc_sample";
  const detail::McmcStart start =
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
  detail::HmcChains chains(n_chains, dim);
  chains.start(energy, start.x.data(), n_chains);
  detail::require_finite_start(chains.energies(), who);
  const detail::McmcDraws draws(o.noise, o.seed, o.first_chain, o.step_offset, n_chains, dim);
  chains.run(energy, o.n_steps, {eps.data(), mass.data(), o.n_leapfrog}, draws,
             detail::trace_of(res));
  return detail::finish_cpu(std::move(res), chains, o.n_steps);
}

}  // namespace cuebm
