// The double-precision oracle of reference.hpp: straightforward loops, no blocking, no
// vectorisation, no code shared with the library.
#include "reference/reference.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <utility>

namespace cuebm::ref {

namespace {
constexpr double kPi = std::numbers::pi;
constexpr double kE = std::numbers::e;

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
}  // namespace

double activate(Activation a, double z) {
  switch (a) {
    case Activation::kReLU:
      return z > 0.0 ? z : 0.0;
    case Activation::kSiLU:
      return z * sigmoid(z);
    case Activation::kTanh:
      return std::tanh(z);
    case Activation::kSoftplus:
      return z > 20.0 ? z : std::log1p(std::exp(z));
    case Activation::kLeakyReLU:
      return z > 0.0 ? z : 0.01 * z;
    case Activation::kGELU:
      return 0.5 * z * (1.0 + std::erf(z / std::numbers::sqrt2));
  }
  throw std::invalid_argument("ref::activate: unknown activation");
}

double activate_derivative(Activation a, double z) {
  switch (a) {
    case Activation::kReLU:
      return z > 0.0 ? 1.0 : 0.0;
    case Activation::kSiLU: {
      const double s = sigmoid(z);
      return s + z * s * (1.0 - s);
    }
    case Activation::kTanh: {
      const double t = std::tanh(z);
      return 1.0 - t * t;
    }
    case Activation::kSoftplus:
      return z > 20.0 ? 1.0 : sigmoid(z);
    case Activation::kLeakyReLU:
      return z > 0.0 ? 1.0 : 0.01;
    case Activation::kGELU: {
      const double cdf = 0.5 * (1.0 + std::erf(z / std::numbers::sqrt2));
      const double pdf = std::exp(-0.5 * z * z) / std::sqrt(2.0 * kPi);
      return cdf + z * pdf;
    }
  }
  throw std::invalid_argument("ref::activate_derivative: unknown activation");
}

// ---------------------------------------------------------------------------------------------
// MLP

MlpModel::MlpModel(std::vector<int> layer_widths, Activation act,
                   std::span<const float> flat_params)
    : widths(std::move(layer_widths)), activation(act) {
  std::size_t total = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    total += static_cast<std::size_t>(widths[l + 1]) * widths[l] + widths[l + 1];
  if (widths.size() < 2 || widths.back() != 1 || flat_params.size() != total)
    throw std::invalid_argument("ref::MlpModel: " + std::to_string(flat_params.size()) +
                                " parameters do not fit the widths (expected " +
                                std::to_string(total) + ")");
  params.assign(flat_params.begin(), flat_params.end());
  std::size_t off = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    weight_offsets_.push_back(off);
    off += static_cast<std::size_t>(widths[l + 1]) * widths[l];
    bias_offsets_.push_back(off);
    off += widths[l + 1];
  }
}

std::size_t MlpModel::weight_offset(int l) const { return weight_offsets_[l]; }

std::size_t MlpModel::bias_offset(int l) const { return bias_offsets_[l]; }

double MlpModel::weight(int l, int out, int in) const {
  return params[weight_offset(l) + static_cast<std::size_t>(out) * widths[l] + in];
}

double MlpModel::bias(int l, int out) const { return params[bias_offset(l) + out]; }

std::vector<int> mlp_widths(int input_dim, const std::vector<int>& hidden) {
  std::vector<int> w{input_dim};
  w.insert(w.end(), hidden.begin(), hidden.end());
  w.push_back(1);
  return w;
}

namespace {

// Forward pass keeping every layer's pre-activation z[l] (l = 1..L+1) and activation h[l]
// (h[0] = x; the last layer has no activation).
struct Forward {
  std::vector<std::vector<double>> z, h;
};

Forward forward(const MlpModel& m, const double* x) {
  const int n_lin = m.num_linear_layers();
  Forward f;
  f.z.resize(n_lin + 1);
  f.h.resize(n_lin + 1);
  f.h[0].assign(x, x + m.widths[0]);
  for (int l = 0; l < n_lin; ++l) {
    const int in = m.widths[l], out = m.widths[l + 1];
    std::vector<double>& z = f.z[l + 1];
    z.assign(out, 0.0);
    for (int o = 0; o < out; ++o) {
      double s = m.bias(l, o);
      for (int i = 0; i < in; ++i) s += m.weight(l, o, i) * f.h[l][i];
      z[o] = s;
    }
    f.h[l + 1].resize(out);
    const bool last = l + 1 == n_lin;
    for (int o = 0; o < out; ++o) f.h[l + 1][o] = last ? z[o] : activate(m.activation, z[o]);
  }
  return f;
}

// Back-propagation of dE/dz for every layer: delta[l] = dE/dz[l], l = 1..L+1.
std::vector<std::vector<double>> backward(const MlpModel& m, const Forward& f) {
  const int n_lin = m.num_linear_layers();
  std::vector<std::vector<double>> delta(n_lin + 1);
  delta[n_lin] = {1.0};
  for (int l = n_lin - 1; l >= 1; --l) {  // delta[l] from delta[l + 1] through layer l
    const int width = m.widths[l], out = m.widths[l + 1];
    delta[l].assign(width, 0.0);
    for (int j = 0; j < width; ++j) {
      double s = 0.0;
      for (int o = 0; o < out; ++o) s += m.weight(l, o, j) * delta[l + 1][o];
      delta[l][j] = s * activate_derivative(m.activation, f.z[l][j]);
    }
  }
  return delta;
}

}  // namespace

double mlp_energy(const MlpModel& m, const double* x) { return forward(m, x).h.back()[0]; }

double mlp_input_gradient(const MlpModel& m, const double* x, double* grad) {
  const Forward f = forward(m, x);
  const auto delta = backward(m, f);
  const int d = m.widths[0], h1 = m.widths[1];
  for (int i = 0; i < d; ++i) {
    double s = 0.0;
    for (int o = 0; o < h1; ++o) s += m.weight(0, o, i) * delta[1][o];
    grad[i] = s;
  }
  return f.h.back()[0];
}

void mlp_add_parameter_gradient(const MlpModel& m, const double* x, double c, double* grad) {
  const Forward f = forward(m, x);
  const auto delta = backward(m, f);
  for (int l = 0; l < m.num_linear_layers(); ++l) {
    const int in = m.widths[l], out = m.widths[l + 1];
    const std::size_t w0 = m.weight_offset(l), b0 = m.bias_offset(l);
    for (int o = 0; o < out; ++o) {
      // dE/dW[o][i] = delta[o] * input[i]; dE/db[o] = delta[o].
      for (int i = 0; i < in; ++i)
        grad[w0 + static_cast<std::size_t>(o) * in + i] += c * delta[l + 1][o] * f.h[l][i];
      grad[b0 + o] += c * delta[l + 1][o];
    }
  }
}

std::vector<double> mlp_parameter_gradient(const MlpModel& m, const double* x, int64_t n,
                                           const double* coeff) {
  std::vector<double> g(m.num_parameters(), 0.0);
  for (int64_t i = 0; i < n; ++i)
    mlp_add_parameter_gradient(m, x + i * m.widths[0], coeff[i], g.data());
  return g;
}

std::vector<double> mlp_parameter_gradient_magnitude(const MlpModel& m, const double* x, int64_t n,
                                                     const double* coeff) {
  std::vector<double> total(m.num_parameters(), 0.0), row(m.num_parameters());
  for (int64_t i = 0; i < n; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    mlp_add_parameter_gradient(m, x + i * m.widths[0], coeff[i], row.data());
    for (std::size_t j = 0; j < row.size(); ++j) total[j] += std::abs(row[j]);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Analytic energies

AnalyticValue gaussian(const std::vector<double>& mean, const std::vector<double>& precision,
                       const double* x) {
  const int d = static_cast<int>(mean.size());
  AnalyticValue v;
  v.grad.assign(d, 0.0);
  v.grad_scale.assign(d, 0.0);
  for (int i = 0; i < d; ++i) {
    for (int j = 0; j < d; ++j) {
      const double p = precision[static_cast<std::size_t>(i) * d + j];
      v.grad[i] += p * (x[j] - mean[j]);
      v.grad_scale[i] += std::abs(p) * (std::abs(x[j]) + std::abs(mean[j]));
    }
  }
  for (int i = 0; i < d; ++i) {
    v.energy += 0.5 * (x[i] - mean[i]) * v.grad[i];
    v.energy_scale += 0.5 * (std::abs(x[i]) + std::abs(mean[i])) * v.grad_scale[i];
  }
  return v;
}

AnalyticValue double_well(const double* x, int d, double h, double b) {
  AnalyticValue v;
  v.grad.resize(d);
  v.grad_scale.resize(d);
  for (int i = 0; i < d; ++i) {
    const double u = x[i] * x[i] - b * b, s = x[i] * x[i] + b * b;
    v.energy += h * u * u;
    v.energy_scale += std::abs(h) * s * s;
    v.grad[i] = 4.0 * h * x[i] * u;
    v.grad_scale[i] = 4.0 * std::abs(h * x[i]) * s;
  }
  return v;
}

AnalyticValue harmonic(const double* x, int d, double k) {
  AnalyticValue v;
  v.grad.resize(d);
  v.grad_scale.resize(d);
  for (int i = 0; i < d; ++i) {
    v.energy += 0.5 * k * x[i] * x[i];
    v.energy_scale += 0.5 * std::abs(k) * x[i] * x[i];
    v.grad[i] = k * x[i];
    v.grad_scale[i] = std::abs(k * x[i]);
  }
  return v;
}

AnalyticValue rosenbrock(const double* x, int d, double a, double b) {
  AnalyticValue v;
  v.grad.assign(d, 0.0);
  v.grad_scale.assign(d, 0.0);
  for (int i = 0; i + 1 < d; ++i) {
    const double u = a - x[i], w = x[i + 1] - x[i] * x[i];
    const double us = std::abs(a) + std::abs(x[i]), ws = std::abs(x[i + 1]) + x[i] * x[i];
    v.energy += u * u + b * w * w;
    v.energy_scale += us * us + std::abs(b) * ws * ws;
    // d/dx_i: -2 (a - x_i) - 4 b x_i (x_{i+1} - x_i^2); d/dx_{i+1}: 2 b (x_{i+1} - x_i^2).
    v.grad[i] += -2.0 * u - 4.0 * b * x[i] * w;
    v.grad_scale[i] += 2.0 * us + 4.0 * std::abs(b * x[i]) * ws;
    v.grad[i + 1] += 2.0 * b * w;
    v.grad_scale[i + 1] += 2.0 * std::abs(b) * ws;
  }
  return v;
}

AnalyticValue ackley(const double* x, int d, double a, double b, double c) {
  double sq = 0.0, cs = 0.0, arg = 0.0;
  for (int i = 0; i < d; ++i) {
    sq += x[i] * x[i];
    cs += std::cos(c * x[i]);
    arg += std::abs(c * x[i]);
  }
  const double r = std::sqrt(sq / d);
  const double t1 = std::exp(-b * r), t2 = std::exp(cs / d);
  AnalyticValue v;
  v.energy = -a * t1 - t2 + a + kE;
  v.energy_scale =
      std::abs(a) * t1 * (1.0 + std::abs(b) * r) + t2 * (1.0 + arg / d) + std::abs(a) + kE;
  v.grad.resize(d);
  v.grad_scale.resize(d);
  // dE/dx_i = a b t1 x_i / (D r) + t2 c sin(c x_i) / D; the first term is 0/0 at r = 0,
  // where the gradient is defined as 0.
  const double k1 = r > 0.0 ? a * b * t1 / (d * r) : 0.0;
  const double k2 = t2 * c / d;
  for (int i = 0; i < d; ++i) {
    v.grad[i] = k1 * x[i] + k2 * std::sin(c * x[i]);
    v.grad_scale[i] = std::abs(k1 * x[i]) * (2.0 + std::abs(b) * r) +
                      std::abs(k2) * (1.0 + std::abs(c * x[i]) + arg / d);
  }
  return v;
}

AnalyticValue rastrigin(const double* x, int d, double a) {
  AnalyticValue v;
  v.grad.resize(d);
  v.grad_scale.resize(d);
  v.energy = a * d;
  v.energy_scale = std::abs(a) * d;
  for (int i = 0; i < d; ++i) {
    const double t = 2.0 * kPi * x[i];
    v.energy += x[i] * x[i] - a * std::cos(t);
    v.energy_scale += x[i] * x[i] + std::abs(a) * (1.0 + std::abs(t));
    v.grad[i] = 2.0 * x[i] + 2.0 * kPi * a * std::sin(t);
    v.grad_scale[i] = 2.0 * std::abs(x[i]) + 2.0 * kPi * std::abs(a) * (1.0 + std::abs(t));
  }
  return v;
}

std::vector<double> invert_matrix(std::vector<double> a, int n) {
  // Augment [A | I] and reduce to [I | A^-1].
  const int w = 2 * n;
  std::vector<double> m(static_cast<std::size_t>(n) * w, 0.0);
  double norm = 0.0;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      m[static_cast<std::size_t>(i) * w + j] = a[static_cast<std::size_t>(i) * n + j];
      norm = std::max(norm, std::abs(a[static_cast<std::size_t>(i) * n + j]));
    }
    m[static_cast<std::size_t>(i) * w + n + i] = 1.0;
  }
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    for (int r = col + 1; r < n; ++r)
      if (std::abs(m[static_cast<std::size_t>(r) * w + col]) >
          std::abs(m[static_cast<std::size_t>(pivot) * w + col]))
        pivot = r;
    const double p = m[static_cast<std::size_t>(pivot) * w + col];
    if (!(std::abs(p) > 1e-14 * norm))
      throw std::invalid_argument("ref::invert_matrix: singular matrix");
    if (pivot != col)
      for (int j = 0; j < w; ++j)
        std::swap(m[static_cast<std::size_t>(pivot) * w + j],
                  m[static_cast<std::size_t>(col) * w + j]);
    for (int j = 0; j < w; ++j) m[static_cast<std::size_t>(col) * w + j] /= p;
    for (int r = 0; r < n; ++r) {
      if (r == col) continue;
      const double f = m[static_cast<std::size_t>(r) * w + col];
      if (f == 0.0) continue;
      for (int j = 0; j < w; ++j)
        m[static_cast<std::size_t>(r) * w + j] -= f * m[static_cast<std::size_t>(col) * w + j];
    }
  }
  std::vector<double> inv(static_cast<std::size_t>(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      inv[static_cast<std::size_t>(i) * n + j] = m[static_cast<std::size_t>(i) * w + n + j];
  return inv;
}

// ---------------------------------------------------------------------------------------------
// Finite differences

double central_difference(const ScalarFunction& f, std::vector<double> x, std::size_t i, double h) {
  const double x0 = x[i];
  x[i] = x0 + h;
  const double fp = f(x);
  x[i] = x0 - h;
  const double fm = f(x);
  return (fp - fm) / (2.0 * h);
}

std::vector<double> central_gradient(const ScalarFunction& f, const std::vector<double>& x,
                                     double h) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) g[i] = central_difference(f, x, i, h);
  return g;
}

std::vector<double> to_double(std::span<const float> v) {
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace cuebm::ref
