// One chain at a time on the CPU (host/sampling/mcmc_chainwise.hpp): MalaChains::run_chainwise
// and HmcChains::run_chainwise. Each step below is the batched path's (mcmc_chains.cpp,
// mala_step.hpp) for one row, in the same order, from and into the same state buffers.
#include "host/sampling/mcmc_chainwise.hpp"

#include <algorithm>
#include <cmath>

#include "cuebm/models/analytic.hpp"
#include "host/models/parallel.hpp"
#include "host/sampling/mcmc_chains.hpp"
#include "kernels/models/analytic.cuh"
#include "kernels/sampling/mcmc.cuh"

namespace cuebm::detail {
namespace {

// Chains per parallel task: enough work to amortise the task, small enough to balance 2-16
// threads over a few hundred chains.
constexpr int64_t kChainsPerTask = 16;

AnalyticParams params_of(const Energy& energy) {
  return analytic_params(dynamic_cast<const AnalyticEnergy&>(energy));
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

// The proposal (x1, g1, e1) replaces the state (x0, g0, e0) when accepted; returns `accept`.
template <class E>
bool keep_if(bool accept, int dim, const float* x1, const float* g1, E e1, float* x0, float* g0,
             E& e0) {
  if (!accept) return false;
  std::copy(x1, x1 + dim, x0);
  std::copy(g1, g1 + dim, g0);
  e0 = e1;
  return true;
}

}  // namespace

bool has_chainwise_path(const Energy& energy) {
  return dynamic_cast<const AnalyticEnergy*>(&energy) != nullptr;
}

void MalaChains::run_chainwise(const Energy& energy, int n_steps, const MalaSchedule& s,
                               const McmcDraws& draws, float* trace) {
  const AnalyticParams p = params_of(energy);
  const int dim = b_.dim;
  const int64_t n = b_.n;
  for_each_chain(n, dim, 3, [&](int64_t r, float* scratch) {
    float *x0 = &b_.x[r * dim], *g0 = &b_.g[r * dim];
    float *x1 = scratch, *g1 = scratch + dim, *eps = scratch + 2 * dim;
    double e0 = b_.e[r];
    for (int t = 0; t < n_steps; ++t) {
      const float eta = s.eta[t], coef = s.coef[t];
      draws.normals(r, t, eps);
      double fwd = 0;
      for (int i = 0; i < dim; ++i) {
        x1[i] = mala_proposal(x0[i], g0[i], eta, coef, eps[i]);
        fwd = mala_add_square(fwd, x1[i], x0[i], eta, g0[i]);
      }
      const double e1 = analytic_energy_grad(p, x1, 1, g1, 1);
      double rev = 0;
      bool ok = std::isfinite(e1);
      for (int i = 0; i < dim; ++i) {
        rev = mala_add_square(rev, x0[i], x1[i], eta, g1[i]);
        ok = ok && std::isfinite(x1[i]) && std::isfinite(g1[i]);
      }
      const double log_alpha = mala_log_alpha(e0, e1, fwd, rev, eta, s.temperature[t]);
      const bool accept = ok && mcmc_accept(draws.uniform(r, t), log_alpha);
      accepted_[r] += keep_if(accept, dim, x1, g1, e1, x0, g0, e0);
      if (trace) trace[static_cast<int64_t>(t) * n + r] = static_cast<float>(e0);
    }
    b_.e[r] = e0;
  });
}

void HmcChains::run_chainwise(const Energy& energy, int n_steps, const HmcSettings& hs,
                              const McmcDraws& draws, float* trace) {
  const AnalyticParams p = params_of(energy);
  const int dim = dim_;
  const float* mass = hs.mass;
  // HmcChains::evaluate for one row: E and dE/dx scaled by 1 / T.
  const auto evaluate_row = [&](const float* x, float* g) {
    float e = analytic_energy_grad(p, x, 1, g, 1);
    if (inv_t_ == 1.0f) return e;
    for (int i = 0; i < dim; ++i) g[i] *= inv_t_;
    return e * inv_t_;
  };
  // The task's chains advance in lockstep, phase by phase: each chain's arithmetic is the
  // batched path's, and the independent chains in every inner loop hide the latency of the
  // leapfrog's dependent chain (a division and an energy per step), which one chain at a time
  // exposes.
  const int64_t tasks = (n_ + kChainsPerTask - 1) / kChainsPerTask;
  parallel_for(tasks, [&](int64_t task) {
    const int64_t r0 = task * kChainsPerTask, m = std::min(n_, r0 + kChainsPerTask) - r0;
    float* scratch = thread_workspace(static_cast<std::size_t>(4 * dim + 2) * kChainsPerTask);
    float *x1 = scratch, *g1 = x1 + kChainsPerTask * dim, *mom = g1 + kChainsPerTask * dim,
          *z = mom + kChainsPerTask * dim, *e1 = z + kChainsPerTask * dim;
    double h0[kChainsPerTask];
    for (int t = 0; t < n_steps; ++t) {
      const float h = hs.eps[t];
      for (int64_t c = 0; c < m; ++c) {
        const int64_t r = r0 + c;
        float *zc = z + c * dim, *mc = mom + c * dim;
        draws.normals(r, t, zc);
        double kinetic = 0;
        for (int i = 0; i < dim; ++i) {
          mc[i] = std::sqrt(mass[i]) * zc[i];
          kinetic += hmc_kinetic(mc[i], mass[i]);
        }
        std::copy_n(&x_[r * dim], dim, x1 + c * dim);
        std::copy_n(&g_[r * dim], dim, g1 + c * dim);
        h0[c] = static_cast<double>(e_[r]) + kinetic;
        e1[c] = e_[r];
      }
      for (int l = 0; l < hs.n_leapfrog; ++l) {
        for (int64_t c = 0; c < m * dim; ++c) {
          mom[c] = hmc_half_kick(mom[c], h, g1[c]);
          x1[c] = hmc_drift(x1[c], mom[c], h, mass[c % dim]);
        }
        for (int64_t c = 0; c < m; ++c) e1[c] = evaluate_row(x1 + c * dim, g1 + c * dim);
        for (int64_t c = 0; c < m * dim; ++c) mom[c] = hmc_half_kick(mom[c], h, g1[c]);
      }
      for (int64_t c = 0; c < m; ++c) {
        const int64_t r = r0 + c;
        const float *xc = x1 + c * dim, *gc = g1 + c * dim, *mc = mom + c * dim;
        double kinetic = 0;
        for (int i = 0; i < dim; ++i) kinetic += hmc_kinetic(mc[i], mass[i]);
        const double log_alpha = hmc_log_alpha(h0[c], static_cast<double>(e1[c]) + kinetic);
        const bool ok = std::isfinite(e1[c]) && all_finite(xc, dim) && all_finite(gc, dim);
        const bool accept = ok && mcmc_accept(draws.uniform(r, t), log_alpha);
        accepted_[r] += keep_if(accept, dim, xc, gc, e1[c], &x_[r * dim], &g_[r * dim], e_[r]);
        if (trace) trace[static_cast<int64_t>(t) * n_ + r] = e_[r];
      }
    }
  });
}

}  // namespace cuebm::detail
