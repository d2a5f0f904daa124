// One MALA step of every row of a batch on the CPU: the core that mala_sample, parallel_tempering
// and ais_log_partition share (host/sampling/mcmc.cpp, tempering.cpp, ais.cpp). Proposals come
// from the state and its gradient, all of them are evaluated in one batched call, and each row is
// accepted or rejected with the shared math of kernels/sampling/mcmc.cuh.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "kernels/sampling/mcmc.cuh"

namespace cuebm::detail {

// Whether all n values are finite: a proposal with a non-finite state or gradient is rejected.
inline bool all_finite(const float* v, int n) {
  for (int i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

// n rows of dimension dim: the state (x, its energy e in the target's units and dE/dx g) and the
// scratch of one step. Sized once, outside the sampling loop.
struct MalaBatch {
  MalaBatch(int64_t rows, int d)
      : n(rows),
        dim(d),
        x(static_cast<std::size_t>(rows) * d),
        g(x.size()),
        x1(x.size()),
        g1(x.size()),
        eps(d),
        e(rows),
        e1(rows),
        fwd(rows) {}

  int64_t n;
  int dim;
  std::vector<float> x, g, x1, g1, eps;
  std::vector<double> e, e1, fwd;
};

// Proposal x1 = x - eta g + coef(r) eps for every row r, eps from draw(r, float* eps) (dim
// Gaussians); evaluate(x1, g1, e1) fills the energies and gradients of all proposals; row r is
// accepted with probability min(1, alpha) at temperature(r), using uniform(r), when its energy
// and gradient are finite. An accepted row replaces the state, then accepted(r) is called.
template <class Coef, class Temperature, class Draw, class Uniform, class Evaluate, class Accepted>
void mala_step(MalaBatch& b, float eta, Coef&& coef, Temperature&& temperature, Draw&& draw,
               Uniform&& uniform, Evaluate&& evaluate, Accepted&& accepted) {
  const int dim = b.dim;
  for (int64_t r = 0; r < b.n; ++r) {
    draw(r, b.eps.data());
    const float c = coef(r);
    double f = 0;
    for (int i = 0; i < dim; ++i) {
      const std::size_t k = static_cast<std::size_t>(r) * dim + i;
      b.x1[k] = mala_proposal(b.x[k], b.g[k], eta, c, b.eps[i]);
      f = mala_add_square(f, b.x1[k], b.x[k], eta, b.g[k]);
    }
    b.fwd[r] = f;
  }
  evaluate(b.x1, b.g1, b.e1);
  for (int64_t r = 0; r < b.n; ++r) {
    const std::size_t k0 = static_cast<std::size_t>(r) * dim;
    double rev = 0;
    bool ok = std::isfinite(b.e1[r]);
    for (int i = 0; i < dim; ++i) {
      rev = mala_add_square(rev, b.x[k0 + i], b.x1[k0 + i], eta, b.g1[k0 + i]);
      ok = ok && std::isfinite(b.x1[k0 + i]) && std::isfinite(b.g1[k0 + i]);
    }
    const double log_alpha = mala_log_alpha(b.e[r], b.e1[r], b.fwd[r], rev, eta, temperature(r));
    if (ok && mcmc_accept(uniform(r), log_alpha)) {
      std::copy(&b.x1[k0], &b.x1[k0] + dim, &b.x[k0]);
      std::copy(&b.g1[k0], &b.g1[k0] + dim, &b.g[k0]);
      b.e[r] = b.e1[r];
      accepted(r);
    }
  }
}

// mala_step's `evaluate` for an Energy: the first `rows` proposals in one batched call, their
// energies through e_float (>= rows floats, as Energy writes them) into the batch's doubles.
inline auto batched_evaluate(const Energy& energy, int64_t rows, float* e_float) {
  return [&energy, rows, e_float](const std::vector<float>& x1, std::vector<float>& g1,
                                  std::vector<double>& e1) {
    energy.gradient(x1.data(), rows, g1.data(), e_float);
    std::copy_n(e_float, rows, e1.begin());
  };
}

}  // namespace cuebm::detail
