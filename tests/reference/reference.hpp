// An independent, plainly written double-precision oracle for the tests (namespace cuebm::ref).
// It shares no code with the library's kernels/ or host/ sources, so a bug there cannot hide
// in a shared helper: only the public Activation enum is borrowed, as a name.
//
// MLP: widths {D, h1, ..., hL, 1}; flat parameters in PyTorch's state_dict order (layer by
// layer: weight [out, in] row-major, then bias [out]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "cuebm/models/activation.hpp"

namespace cuebm::ref {

// ---------------------------------------------------------------------------------------------
// Activations in double, PyTorch semantics: Softplus beta 1 threshold 20, LeakyReLU slope 0.01,
// GELU in its erf form; the ReLU derivative at 0 is 0 and the LeakyReLU derivative at 0 is 0.01.
double activate(Activation a, double z);
double activate_derivative(Activation a, double z);

// ---------------------------------------------------------------------------------------------
// MLP energy.
struct MlpModel {
  MlpModel(std::vector<int> layer_widths, Activation act, std::span<const float> flat_params);

  int input_dim() const { return widths.front(); }
  int num_linear_layers() const { return static_cast<int>(widths.size()) - 1; }
  std::size_t num_parameters() const { return params.size(); }
  // Offsets of layer l's weight and bias in the flat vector, PyTorch order.
  std::size_t weight_offset(int l) const;
  std::size_t bias_offset(int l) const;
  double weight(int l, int out, int in) const;
  double bias(int l, int out) const;

  std::vector<int> widths;
  Activation activation;
  std::vector<double> params;

 private:
  std::vector<std::size_t> weight_offsets_, bias_offsets_;
};

// {D, h1, ..., hL, 1}
std::vector<int> mlp_widths(int input_dim, const std::vector<int>& hidden);

// E(x) for one row x (D values).
double mlp_energy(const MlpModel& m, const double* x);
// E(x) for one row; writes dE/dx (D values) by back-propagation.
double mlp_input_gradient(const MlpModel& m, const double* x, double* grad);
// grad (num_parameters values) += c * dE(x)/dtheta for one row.
void mlp_add_parameter_gradient(const MlpModel& m, const double* x, double c, double* grad);
// Gradient of sum_i coeff[i] E(x_i) with respect to the parameters (x is n x D row-major).
std::vector<double> mlp_parameter_gradient(const MlpModel& m, const double* x, int64_t n,
                                           const double* coeff);
// Per parameter, sum_i |coeff[i] dE(x_i)/dtheta|: the size of the terms the sum adds up, a
// scale for the rounding error of a float32 evaluation of mlp_parameter_gradient.
std::vector<double> mlp_parameter_gradient_magnitude(const MlpModel& m, const double* x, int64_t n,
                                                     const double* coeff);

// ---------------------------------------------------------------------------------------------
// Analytic energies. Each returns E(x) and dE/dx for one row, plus `scale`s: sums of the
// magnitudes of the terms (and of their sensitivity to rounding of arguments such as c x in
// cos(c x)) that make up E and each gradient entry. A float32 evaluation with a few
// operations per term has an error of a few float ulps of that scale.
struct AnalyticValue {
  double energy = 0;
  std::vector<double> grad;
  double energy_scale = 0;
  std::vector<double> grad_scale;
};

// 1/2 (x - mu)^T P (x - mu) with P the precision matrix (D x D row-major).
AnalyticValue gaussian(const std::vector<double>& mean, const std::vector<double>& precision,
                       const double* x);
// h sum_i (x_i^2 - b^2)^2
AnalyticValue double_well(const double* x, int d, double h, double b);
// k/2 sum_i x_i^2
AnalyticValue harmonic(const double* x, int d, double k);
// sum_{i<D-1} (a - x_i)^2 + b (x_{i+1} - x_i^2)^2
AnalyticValue rosenbrock(const double* x, int d, double a, double b);
// -a exp(-b sqrt(sum x^2 / D)) - exp(sum cos(c x) / D) + a + e; gradient 0 at x = 0.
AnalyticValue ackley(const double* x, int d, double a, double b, double c);
// a D + sum_i (x_i^2 - a cos(2 pi x_i))
AnalyticValue rastrigin(const double* x, int d, double a);

// Inverse of a general n x n matrix (row-major) by Gauss-Jordan elimination with partial
// pivoting, in double. Throws std::invalid_argument when the matrix is singular.
std::vector<double> invert_matrix(std::vector<double> a, int n);

// ---------------------------------------------------------------------------------------------
// Central finite differences in double: (f(x + h e_i) - f(x - h e_i)) / (2 h).
using ScalarFunction = std::function<double(const std::vector<double>&)>;
double central_difference(const ScalarFunction& f, std::vector<double> x, std::size_t i, double h);
std::vector<double> central_gradient(const ScalarFunction& f, const std::vector<double>& x,
                                     double h);

// Float data to double.
std::vector<double> to_double(std::span<const float> v);

}  // namespace cuebm::ref
