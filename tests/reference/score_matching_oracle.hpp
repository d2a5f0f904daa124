// A double-precision oracle for the score-matching losses (cuebm/training/score_matching.hpp),
// independent of the library's hand-derived passes: the MLP (ref::MlpModel) is evaluated on
// hyper-dual numbers, which give dE/dx and every Hessian entry exactly (to double rounding),
// the losses are written from g and H as behaviour.md states them, and parameter gradients are
// central finite differences of the oracle loss. The random draws are inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "reference/reference.hpp"

namespace cuebm::ref {

// Second derivative of an activation in double (0 for ReLU and LeakyReLU; softplus is linear
// above its threshold 20).
double activate_second_derivative(Activation a, double z);

// E, g = dE/dx and H (D x D row-major) at one row, from D (D + 1) / 2 hyper-dual passes.
struct InputDerivatives {
  double energy = 0;
  std::vector<double> grad;
  std::vector<double> hessian;
};
InputDerivatives mlp_input_derivatives(const MlpModel& m, const double* x);

enum class OracleLoss { kExact, kTorchEbmApprox, kSliced, kDenoising };

struct ScoreLossCase {
  OracleLoss loss = OracleLoss::kExact;
  double lambda = 0;          // + lambda mean |g(x)|^2 at the clean rows
  int n_projections = 0;      // sliced
  double noise_scale = 0;     // denoising sigma
  double target_sign = -1;    // denoising: 0.5 |g(x~) + target_sign n / sigma^2|^2
  double approx_epsilon = 0;  // approx: eps
  // Per row: approx: delta (D, the shift actually added); sliced: v (n_projections x D);
  // denoising: n (D).
  std::vector<double> draws;
};

// The mean loss over the n rows of x (n x D row-major). scale (optional): mean over rows of
// the sum of the magnitudes of the loss's terms, a scale for float rounding.
double score_loss(const MlpModel& m, const double* x, int64_t n, const ScoreLossCase& c,
                  double* scale = nullptr);

// d score_loss / d theta_i for the parameters in `which` (all when empty), by central
// differences with step h (max(1, |theta_i|) h).
std::vector<double> score_loss_gradient_fd(const MlpModel& m, const double* x, int64_t n,
                                           const ScoreLossCase& c, double h,
                                           const std::vector<std::size_t>& which = {});

}  // namespace cuebm::ref
