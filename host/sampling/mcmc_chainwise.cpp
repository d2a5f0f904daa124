// One chain at a time on the CPU (host/sampling/mcmc_chainwise.hpp): each step below is the
// batched path's (host/sampling/mcmc.cpp, mala_step.hpp) for one row, in the same order.
#include "host/sampling/mcmc_chainwise.hpp"

#include <cmath>

#include "cuebm/models/analytic.hpp"
#include "host/models/parallel.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "kernels/models/analytic.cuh"
#include "kernels/sampling/mcmc.cuh"

namespace cuebm::detail {
namespace {

// Chains per parallel task: enough work to amortise the task, small enough to balance 2-16
// threads over a few hundred chains.
constexpr int64_t kChainsPerTask = 16;

bool all_finite(const float* v, int dim) {
  for (int i = 0; i < dim; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

// The initial energies (into e), checked before any chain moves, as the batched path does.
void initial_energies(const AnalyticParams& p, const std::vector<float>& x, std::vector<float>& e,
                      const char* who) {
  const int dim = p.dim;
  parallel_for(static_cast<int64_t>(e.size()),
               [&](int64_t r) { e[r] = analytic_energy_grad(p, &x[r * dim], 1, nullptr, 0); });
  require_finite_start(e, who);
}

// body(row, scratch) for every chain, kChainsPerTask chains per task; scratch holds
// `vectors` dim-sized float vectors owned by the running thread.
template <class Body>
void for_each_chain(int64_t n, int dim, int vectors, Body&& body) {
  const int64_t tasks = (n + kChainsPerTask - 1) / kChainsPerTask;
  parallel_for(tasks, [&](int64_t task) {
    float* scratch = thread_workspace(static_cast<std::size_t>(vectors) * dim);
    const int64_t end = std::min(n, (task + 1) * kChainsPerTask);
    for (int64_t r = task * kChainsPerTask; r < end; ++r) body(r, scratch);
  });
}

float* trace_of(McmcResult& res) {
  return res.energy_trace.empty() ? nullptr : res.energy_trace.data();
}

}  // namespace

bool has_chainwise_path(const Energy& energy) {
  return dynamic_cast<const AnalyticEnergy*>(&energy) != nullptr;
}

void mala_chainwise(const Energy& energy, std::vector<float>& x, std::vector<float>& e,
                    std::vector<int>& accepted, int n_steps, const MalaStepValues& s,
                    const McmcDraws& draws, McmcResult& res, const char* who) {
  const AnalyticParams p = analytic_params(dynamic_cast<const AnalyticEnergy&>(energy));
  const int dim = p.dim;
  const int64_t n = static_cast<int64_t>(e.size());
  initial_energies(p, x, e, who);
  float* trace = trace_of(res);
  for_each_chain(n, dim, 4, [&](int64_t r, float* scratch) {
    float* x0 = &x[r * dim];
    float *g0 = scratch, *x1 = scratch + dim, *g1 = scratch + 2 * dim, *eps = scratch + 3 * dim;
    double e0 = analytic_energy_grad(p, x0, 1, g0, 1);
    int acc = 0;
    for (int t = 0; t < n_steps; ++t) {
      const float eta = s.eta[t], coef = s.coef[t];
      draws.normals(r, t, eps);
      double fwd = 0;
      for (int i = 0; i < dim; ++i) {
        x1[i] = mala_proposal(x0[i], g0[i], eta, coef, eps[i]);
        fwd += mala_square(x1[i], x0[i], eta, g0[i]);
      }
      const double e1 = analytic_energy_grad(p, x1, 1, g1, 1);
      double rev = 0;
      bool ok = std::isfinite(e1);
      for (int i = 0; i < dim; ++i) {
        rev += mala_square(x0[i], x1[i], eta, g1[i]);
        ok = ok && std::isfinite(g1[i]);
      }
      const double log_alpha = mala_log_alpha(e0, e1, fwd, rev, eta, s.temperature[t]);
      if (ok && mcmc_accept(draws.uniform(r, t), log_alpha)) {
        std::copy(x1, x1 + dim, x0);
        std::copy(g1, g1 + dim, g0);
        e0 = e1;
        ++acc;
      }
      if (trace) trace[static_cast<int64_t>(t) * n + r] = static_cast<float>(e0);
    }
    e[r] = static_cast<float>(e0);
    accepted[r] = acc;
  });
}

void hmc_chainwise(const Energy& energy, std::vector<float>& x, std::vector<float>& e,
                   std::vector<int>& accepted, int n_steps, int n_leapfrog,
                   const std::vector<float>& step_size, const std::vector<float>& mass,
                   const McmcDraws& draws, McmcResult& res, const char* who) {
  const AnalyticParams p = analytic_params(dynamic_cast<const AnalyticEnergy&>(energy));
  const int dim = p.dim;
  const int64_t n = static_cast<int64_t>(e.size());
  initial_energies(p, x, e, who);
  float* trace = trace_of(res);
  for_each_chain(n, dim, 5, [&](int64_t r, float* scratch) {
    float* x0 = &x[r * dim];
    float *g0 = scratch, *x1 = scratch + dim, *g1 = scratch + 2 * dim, *mom = scratch + 3 * dim,
          *z = scratch + 4 * dim;
    float e0 = analytic_energy_grad(p, x0, 1, g0, 1);
    int acc = 0;
    for (int t = 0; t < n_steps; ++t) {
      const float h = step_size[t];
      draws.normals(r, t, z);
      double kinetic = 0;
      for (int i = 0; i < dim; ++i) {
        mom[i] = std::sqrt(mass[i]) * z[i];
        kinetic += hmc_kinetic(mom[i], mass[i]);
        x1[i] = x0[i];
        g1[i] = g0[i];
      }
      const double h0 = static_cast<double>(e0) + kinetic;
      float e1 = e0;
      for (int l = 0; l < n_leapfrog; ++l) {
        for (int i = 0; i < dim; ++i) {
          mom[i] = hmc_half_kick(mom[i], h, g1[i]);
          x1[i] = hmc_drift(x1[i], mom[i], h, mass[i]);
        }
        e1 = analytic_energy_grad(p, x1, 1, g1, 1);
        for (int i = 0; i < dim; ++i) mom[i] = hmc_half_kick(mom[i], h, g1[i]);
      }
      kinetic = 0;
      for (int i = 0; i < dim; ++i) kinetic += hmc_kinetic(mom[i], mass[i]);
      const double log_alpha = hmc_log_alpha(h0, static_cast<double>(e1) + kinetic);
      const bool ok = std::isfinite(e1) && all_finite(x1, dim) && all_finite(g1, dim);
      if (ok && mcmc_accept(draws.uniform(r, t), log_alpha)) {
        std::copy(x1, x1 + dim, x0);
        std::copy(g1, g1 + dim, g0);
        e0 = e1;
        ++acc;
      }
      if (trace) trace[static_cast<int64_t>(t) * n + r] = e0;
    }
    e[r] = e0;
    accepted[r] = acc;
  });
}

}  // namespace cuebm::detail
