#include "reference/score_matching_oracle.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace cuebm::ref {
namespace {

// a + b e1 + c e2 + d e1 e2 with e1^2 = e2^2 = 0.
struct HyperDual {
  double v = 0, e1 = 0, e2 = 0, e12 = 0;
};

// f(x) for f with value f0, first and second derivatives f1, f2 at x.v.
HyperDual apply(const HyperDual& x, double f0, double f1, double f2) {
  return {f0, f1 * x.e1, f1 * x.e2, f1 * x.e12 + f2 * x.e1 * x.e2};
}

// E on hyper-dual inputs: x + e1 u_i + e2 u_j for unit vectors i, j.
HyperDual energy(const MlpModel& m, const double* x, int i, int j) {
  const int d = m.input_dim();
  std::vector<HyperDual> a(d);
  for (int k = 0; k < d; ++k) a[k] = {x[k], k == i ? 1.0 : 0.0, k == j ? 1.0 : 0.0, 0.0};
  const int n_lin = m.num_linear_layers();
  for (int l = 0; l < n_lin; ++l) {
    const int n_in = m.widths[l], n_out = m.widths[l + 1];
    std::vector<HyperDual> z(n_out);
    for (int o = 0; o < n_out; ++o) {
      HyperDual s{m.bias(l, o), 0, 0, 0};
      for (int k = 0; k < n_in; ++k) {
        const double w = m.weight(l, o, k);
        s.v += w * a[k].v;
        s.e1 += w * a[k].e1;
        s.e2 += w * a[k].e2;
        s.e12 += w * a[k].e12;
      }
      z[o] = s;
    }
    if (l + 1 == n_lin) return z[0];
    for (auto& zz : z)
      zz = apply(zz, activate(m.activation, zz.v), activate_derivative(m.activation, zz.v),
                 activate_second_derivative(m.activation, zz.v));
    a = std::move(z);
  }
  throw std::logic_error("unreachable");
}

std::vector<double> input_gradient(const MlpModel& m, const double* x) {
  const int d = m.input_dim();
  std::vector<double> g(d);
  for (int i = 0; i < d; ++i) g[i] = energy(m, x, i, -1).e1;
  return g;
}

double dot(const double* a, const double* b, int d) {
  double s = 0;
  for (int k = 0; k < d; ++k) s += a[k] * b[k];
  return s;
}

}  // namespace

double activate_second_derivative(Activation a, double z) {
  switch (a) {
    case Activation::kReLU:
    case Activation::kLeakyReLU:
      return 0.0;
    case Activation::kSiLU: {
      const double s = 1.0 / (1.0 + std::exp(-z));
      return s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s));
    }
    case Activation::kTanh: {
      const double t = std::tanh(z);
      return -2.0 * t * (1.0 - t * t);
    }
    case Activation::kSoftplus: {
      if (z > 20.0) return 0.0;
      const double s = 1.0 / (1.0 + std::exp(-z));
      return s * (1.0 - s);
    }
    case Activation::kGELU: {
      const double pdf = std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI);
      return pdf * (2.0 - z * z);
    }
  }
  throw std::invalid_argument("ref::activate_second_derivative: unknown activation");
}

InputDerivatives mlp_input_derivatives(const MlpModel& m, const double* x) {
  const int d = m.input_dim();
  InputDerivatives r;
  r.grad.assign(d, 0.0);
  r.hessian.assign(static_cast<std::size_t>(d) * d, 0.0);
  for (int i = 0; i < d; ++i)
    for (int j = i; j < d; ++j) {
      const HyperDual e = energy(m, x, i, j);
      r.energy = e.v;
      r.grad[i] = e.e1;
      r.hessian[i * d + j] = r.hessian[j * d + i] = e.e12;
    }
  return r;
}

double score_loss(const MlpModel& m, const double* x, int64_t n, const ScoreLossCase& c,
                  double* scale) {
  const int d = m.input_dim();
  double total = 0, total_scale = 0;
  std::vector<double> shifted(d);
  for (int64_t r = 0; r < n; ++r) {
    const double* xr = x + r * d;
    double loss = 0, mag = 0;
    std::vector<double> g;
    if (c.loss == OracleLoss::kExact || c.loss == OracleLoss::kSliced) {
      const InputDerivatives id = mlp_input_derivatives(m, xr);
      g = id.grad;
      if (c.loss == OracleLoss::kExact) {
        double tr = 0;
        for (int k = 0; k < d; ++k) tr += id.hessian[k * d + k];
        loss = 0.5 * dot(g.data(), g.data(), d) - tr;
        mag = 0.5 * dot(g.data(), g.data(), d) + std::fabs(tr);
      } else {
        const int p = c.n_projections;
        for (int j = 0; j < p; ++j) {
          const double* v = c.draws.data() + (r * p + j) * d;
          double vhv = 0;
          for (int a = 0; a < d; ++a)
            for (int b = 0; b < d; ++b) vhv += v[a] * id.hessian[a * d + b] * v[b];
          const double gv = dot(g.data(), v, d);
          loss += (-vhv + 0.5 * gv * gv) / p;
          mag += (std::fabs(vhv) + 0.5 * gv * gv) / p;
        }
      }
    } else {
      g = input_gradient(m, xr);
      const double* delta = c.draws.data() + r * d;
      for (int k = 0; k < d; ++k) shifted[k] = xr[k] + delta[k];
      const std::vector<double> gs = input_gradient(m, shifted.data());
      if (c.loss == OracleLoss::kTorchEbmApprox) {
        const double eps2d = c.approx_epsilon * c.approx_epsilon * d;
        double tr = 0;
        for (int k = 0; k < d; ++k) tr += (gs[k] - g[k]) * delta[k];
        loss = 0.5 * dot(g.data(), g.data(), d) - tr / eps2d;
        double gd = 0;
        for (int k = 0; k < d; ++k)
          gd += (std::fabs(gs[k]) + std::fabs(g[k])) * std::fabs(delta[k]);
        mag = 0.5 * dot(g.data(), g.data(), d) + gd / eps2d;
      } else {
        const double inv_var = 1.0 / (c.noise_scale * c.noise_scale);
        for (int k = 0; k < d; ++k) {
          const double t = gs[k] + c.target_sign * delta[k] * inv_var;
          loss += 0.5 * t * t;
          mag += 0.5 * (std::fabs(gs[k]) + std::fabs(delta[k]) * inv_var) *
                 (std::fabs(gs[k]) + std::fabs(delta[k]) * inv_var);
        }
      }
    }
    if (c.lambda > 0) {
      loss += c.lambda * dot(g.data(), g.data(), d);
      mag += c.lambda * dot(g.data(), g.data(), d);
    }
    total += loss;
    total_scale += mag;
  }
  if (scale) *scale = total_scale / static_cast<double>(n);
  return total / static_cast<double>(n);
}

std::vector<double> score_loss_gradient_fd(const MlpModel& m, const double* x, int64_t n,
                                           const ScoreLossCase& c, double h,
                                           const std::vector<std::size_t>& which) {
  std::vector<std::size_t> idx = which;
  if (idx.empty())
    for (std::size_t i = 0; i < m.num_parameters(); ++i) idx.push_back(i);
  std::vector<double> out;
  MlpModel work = m;
  for (const std::size_t i : idx) {
    const double theta = m.params[i];
    const double step = h * std::max(1.0, std::fabs(theta));
    work.params[i] = theta + step;
    const double up = score_loss(work, x, n, c);
    work.params[i] = theta - step;
    const double down = score_loss(work, x, n, c);
    work.params[i] = theta;
    out.push_back((up - down) / (2 * step));
  }
  return out;
}

}  // namespace cuebm::ref
