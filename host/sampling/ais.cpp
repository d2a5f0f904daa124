// Annealed importance sampling (include/cuebm/sampling/ais.hpp): validation, the CPU backend and
// the statistics both backends share (from a reduction of the log weights that the CUDA backend
// makes on the device). On the CPU each transition evaluates the energies and
// gradients of all chains in one batched call; the MALA step is the shared math of
// kernels/sampling/mcmc.cuh at temperature 1 of the intermediate density, the tempering that of
// kernels/sampling/ais.cuh. The CUDA backend (kernels/sampling/ais_kernels.cu) runs the same
// chains and hands back their log weights and that reduction.
#include "cuebm/sampling/ais.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/runtime/device_reduce.hpp"
#include "host/sampling/mala_step.hpp"
#include "kernels/sampling/ais.cuh"

#if CUEBM_HAVE_CUDA
#include "host/sampling/cuda_ais.hpp"
#endif

namespace cuebm {
namespace {

void validate(const AisOptions& o) {
  const std::string w = "ais_log_partition: ";
  if (o.n_chains < 2)
    throw InvalidArgument(w + "n_chains must be >= 2, got " + std::to_string(o.n_chains));
  if (o.n_temperatures < 1)
    throw InvalidArgument(w + "n_temperatures must be >= 1, got " +
                          std::to_string(o.n_temperatures));
  if (o.mcmc_steps < 1)
    throw InvalidArgument(w + "mcmc_steps must be >= 1, got " + std::to_string(o.mcmc_steps));
  // Each chain counts its accepted transitions in an int.
  if (static_cast<int64_t>(o.n_temperatures) * o.mcmc_steps > std::numeric_limits<int>::max())
    throw InvalidArgument(w + "n_temperatures * mcmc_steps must be <= " +
                          std::to_string(std::numeric_limits<int>::max()));
  if (!(std::isfinite(o.step_size) && o.step_size > 0))
    throw InvalidArgument(w + "step_size must be finite and > 0, got " +
                          std::to_string(o.step_size));
  if (!(std::isfinite(o.temperature) && o.temperature > 0))
    throw InvalidArgument(w + "temperature must be finite and > 0, got " +
                          std::to_string(o.temperature));
}

// E_b and its gradient for all chains from E and dE/dx (kernels/sampling/ais.cuh).
void tempered(const std::vector<float>& x, const std::vector<float>& e, const std::vector<float>& g,
              int dim, double b, double inv_t, std::vector<double>& eb, std::vector<float>& gb) {
  const int64_t n = static_cast<int64_t>(e.size());
  for (int64_t r = 0; r < n; ++r) {
    double sq = 0;
    for (int i = 0; i < dim; ++i) {
      const std::size_t k = r * dim + i;
      sq = detail::ais_add_square(sq, x[k]);
      gb[k] = detail::ais_tempered_gradient(x[k], g[k], b, inv_t);
    }
    eb[r] = detail::ais_tempered_energy(sq, e[r], b, inv_t);
  }
}

// Runs the chains on the CPU: their log weights into logw (n, zeros), and the number of accepted
// MALA proposals.
int64_t cpu_log_weights(const Energy& energy, const AisOptions& o, std::vector<double>& logw) {
  const int dim = energy.dim();
  const int64_t n = o.n_chains;
  detail::MalaBatch batch(n, dim);
  gaussian_initial_state(batch.x.data(), n, dim, o.seed);
  const std::size_t nd = static_cast<std::size_t>(n) * dim;
  const double inv_t = 1.0 / o.temperature;
  const float eta = o.step_size, coef = std::sqrt(2.0f * eta);
  // The batch holds E_b and its gradient (temperature 1); the raw E and dE/dx of the state and of
  // the proposals are kept beside it, so that E_b is recomputed at every new b.
  std::vector<float> g(nd), e(n), g1(nd), e1(n);
  energy.gradient(batch.x.data(), n, g.data(), e.data());
  int64_t accepted = 0;
  uint64_t transition = 0;
  for (int k = 1; k <= o.n_temperatures; ++k) {
    const double b0 = detail::ais_beta(k - 1, o.n_temperatures);
    const double b1 = detail::ais_beta(k, o.n_temperatures);
    for (int64_t r = 0; r < n; ++r) {
      double sq = 0;
      for (int i = 0; i < dim; ++i) sq = detail::ais_add_square(sq, batch.x[r * dim + i]);
      logw[r] = detail::ais_add_log_weight(logw[r], sq, e[r], b0, b1, inv_t);
    }
    for (int s = 0; s < o.mcmc_steps; ++s, ++transition) {
      tempered(batch.x, e, g, dim, b1, inv_t, batch.e, batch.g);
      detail::mala_step(
          batch, eta, [&](int64_t) { return coef; }, [](int64_t) { return 1.0; },
          [&](int64_t r, float* eps) {
            for (int q = 0; 4 * q < dim; ++q) {
              const detail::Normal4 z = detail::mcmc_normal4(o.seed, r, transition, dim, q);
              for (int c = 0; c < 4 && 4 * q + c < dim; ++c) eps[4 * q + c] = z.v[c];
            }
          },
          [&](int64_t r) { return detail::mcmc_uniform(o.seed, r, transition, dim); },
          [&](const std::vector<float>& x1, std::vector<float>& gb1, std::vector<double>& eb1) {
            energy.gradient(x1.data(), n, g1.data(), e1.data());
            tempered(x1, e1, g1, dim, b1, inv_t, eb1, gb1);
          },
          [&](int64_t r) {
            std::copy(&g1[r * dim], &g1[r * dim] + dim, &g[r * dim]);
            e[r] = e1[r];
            ++accepted;
          });
    }
  }
  return accepted;
}

// The reduction of the log weights (finite ones only) that the CUDA backend makes on the device,
// here left to right.
detail::LogWeightStats host_log_weight_stats(const std::vector<double>& logw) {
  detail::LogWeightStats st;
  for (double w : logw)
    if (std::isfinite(w)) {
      st.max = std::max(st.max, w);
      ++st.finite;
    }
  if (st.finite == 0) return st;
  for (double w : logw)
    if (std::isfinite(w)) {
      const double u = std::exp(w - st.max);
      st.sum += u;
      st.sum_sq += u * u;
    }
  return st;
}

// log Z, its standard error and the ESS from the reduction of the n chains' log weights
// (non-finite weights count as weight 0), whichever backend made it.
AisResult ais_statistics(const detail::LogWeightStats& st, int64_t n, int dim) {
  if (st.finite == 0)
    throw NumericalError("ais_log_partition: every importance weight is non-finite");
  AisResult res;
  const double nn = static_cast<double>(n), mean = st.sum / nn;
  const double var = std::max(0.0, (st.sum_sq - nn * mean * mean) / (nn - 1));
  res.log_z = 0.5 * dim * std::log(2 * M_PI) + st.max + std::log(mean);
  res.std_error = std::sqrt(var / nn) / mean;
  res.ess = st.sum * st.sum / st.sum_sq;
  return res;
}

}  // namespace

AisResult ais_log_partition(const Energy& energy, const AisOptions& o, Device device) {
  check_device(device);
#if !CUEBM_HAVE_CUDA
  if (device.is_cuda())
    throw InvalidArgument("ais_log_partition: the CUDA backend is not available in this build");
#endif
  validate(o);
  const int dim = energy.dim();
  const int64_t n = o.n_chains;
  std::vector<double> logw(n, 0.0);
  detail::LogWeightStats stats;
  int64_t accepted = 0;
#if CUEBM_HAVE_CUDA
  if (device.is_cuda()) {
    std::vector<float> x0(static_cast<std::size_t>(n) * dim);
    gaussian_initial_state(x0.data(), n, dim, o.seed);
    accepted = detail::ais_log_weights_cuda(energy, x0.data(), o, device.index, logw, stats);
  } else
#endif
  {
    accepted = cpu_log_weights(energy, o, logw);
    stats = host_log_weight_stats(logw);
  }
  AisResult res = ais_statistics(stats, n, dim);
  const int64_t proposals = n * o.n_temperatures * static_cast<int64_t>(o.mcmc_steps);
  res.acceptance = static_cast<double>(accepted) / static_cast<double>(proposals);
  res.log_weights = std::move(logw);
  return res;
}

}  // namespace cuebm
