// Annealed importance sampling on the CPU (include/cuebm/sampling/ais.hpp). Each transition
// evaluates the energies and gradients of all chains in one batched call; the MALA step is the
// shared math of kernels/sampling/mcmc.cuh at temperature 1 of the intermediate density.
#include "cuebm/sampling/ais.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "host/sampling/mala_step.hpp"

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
  if (!(std::isfinite(o.step_size) && o.step_size > 0))
    throw InvalidArgument(w + "step_size must be finite and > 0, got " +
                          std::to_string(o.step_size));
  if (!(std::isfinite(o.temperature) && o.temperature > 0))
    throw InvalidArgument(w + "temperature must be finite and > 0, got " +
                          std::to_string(o.temperature));
}

// E_b and its gradient for all chains from E and dE/dx: (1 - b) |x|^2 / 2 + b E / T.
void tempered(const std::vector<float>& x, const std::vector<float>& e, const std::vector<float>& g,
              int dim, double b, double inv_t, std::vector<double>& eb, std::vector<float>& gb) {
  const int64_t n = static_cast<int64_t>(e.size());
  for (int64_t r = 0; r < n; ++r) {
    double sq = 0;
    for (int i = 0; i < dim; ++i) {
      const std::size_t k = r * dim + i;
      sq += static_cast<double>(x[k]) * x[k];
      gb[k] = static_cast<float>((1 - b) * x[k] + b * inv_t * g[k]);
    }
    eb[r] = (1 - b) * 0.5 * sq + b * inv_t * e[r];
  }
}

}  // namespace

AisResult ais_log_partition(const Energy& energy, const AisOptions& o, Device device) {
  check_device(device);
  validate(o);
  if (device.is_cuda())
    throw InvalidArgument("ais_log_partition: the CUDA backend has no AIS yet: use the CPU");
  const int dim = energy.dim();
  const int64_t n = o.n_chains;
  const std::size_t nd = static_cast<std::size_t>(n) * dim;
  const double inv_t = 1.0 / o.temperature;
  const float eta = o.step_size, coef = std::sqrt(2.0f * eta);
  // The batch holds E_b and its gradient (temperature 1); the raw E and dE/dx of the state and of
  // the proposals are kept beside it, so that E_b is recomputed at every new b.
  detail::MalaBatch batch(n, dim);
  std::vector<float> g(nd), e(n), g1(nd), e1(n);
  std::vector<double> logw(n, 0.0);
  gaussian_initial_state(batch.x.data(), n, dim, o.seed);
  energy.gradient(batch.x.data(), n, g.data(), e.data());
  int64_t accepted = 0, proposals = 0;
  uint64_t transition = 0;
  for (int k = 1; k <= o.n_temperatures; ++k) {
    const double b0 = static_cast<double>(k - 1) / o.n_temperatures;
    const double b1 = static_cast<double>(k) / o.n_temperatures;
    for (int64_t r = 0; r < n; ++r) {
      double sq = 0;
      for (int i = 0; i < dim; ++i) {
        const double v = batch.x[r * dim + i];
        sq += v * v;
      }
      logw[r] += (b1 - b0) * (0.5 * sq - inv_t * e[r]);
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
      proposals += n;
    }
  }
  AisResult res;
  res.log_weights = logw;
  res.acceptance = static_cast<double>(accepted) / static_cast<double>(proposals);
  double wmax = -INFINITY;
  for (double w : logw)
    if (std::isfinite(w)) wmax = std::max(wmax, w);
  if (!std::isfinite(wmax))
    throw NumericalError("ais_log_partition: every importance weight is non-finite");
  double sum = 0, sum2 = 0;
  for (double w : logw) {
    const double u = std::isfinite(w) ? std::exp(w - wmax) : 0.0;
    sum += u;
    sum2 += u * u;
  }
  const double nn = static_cast<double>(n), mean = sum / nn;
  const double var = std::max(0.0, (sum2 - nn * mean * mean) / (nn - 1));
  res.log_z = 0.5 * dim * std::log(2 * M_PI) + wmax + std::log(mean);
  res.std_error = std::sqrt(var / nn) / mean;
  res.ess = sum * sum / sum2;
  return res;
}

}  // namespace cuebm
