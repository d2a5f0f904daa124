#include "cuebm/training/optim.hpp"

#include <cmath>

#include "cuebm/runtime/error.hpp"
#include "kernels/training/optim.cuh"

namespace cuebm {

Adam::Adam(std::size_t n_params, const AdamOptions& o) : options_(o), m_(n_params), v_(n_params) {
  if (!(o.lr > 0) || !std::isfinite(o.lr))
    throw InvalidArgument("Adam: lr must be finite and > 0, got " + std::to_string(o.lr));
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1))
    throw InvalidArgument("Adam: betas must be in [0, 1), got (" + std::to_string(o.beta1) + ", " +
                          std::to_string(o.beta2) + ")");
  if (!(o.eps >= 0) || !(o.weight_decay >= 0))
    throw InvalidArgument("Adam: eps and weight_decay must be >= 0");
}

void Adam::step(std::span<float> params, std::span<const float> grad) {
  if (params.size() != m_.size() || grad.size() != m_.size())
    throw InvalidArgument("Adam::step: expected " + std::to_string(m_.size()) +
                          " parameters and gradients, got " + std::to_string(params.size()) +
                          " and " + std::to_string(grad.size()));
  ++t_;
  const double bc1 = 1.0 - std::pow(static_cast<double>(options_.beta1), static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(static_cast<double>(options_.beta2), static_cast<double>(t_));
  const detail::AdamStepConstants c{options_.lr,
                                    options_.beta1,
                                    options_.beta2,
                                    options_.eps,
                                    options_.weight_decay,
                                    static_cast<float>(options_.lr / bc1),
                                    static_cast<float>(std::sqrt(bc2))};
  // Distinct arrays: telling the compiler so lets it vectorise the update (sqrt and division
  // are correctly rounded in vector form too, so the bits do not change).
  float* __restrict p = params.data();
  float* __restrict m = m_.data();
  float* __restrict v = v_.data();
  const float* __restrict g = grad.data();
  const std::size_t n = params.size();
#pragma GCC ivdep
  for (std::size_t i = 0; i < n; ++i) detail::adam_update(p[i], m[i], v[i], g[i], 1.0f, c);
}

void Adam::load_state(int64_t steps, std::span<const float> m, std::span<const float> v) {
  if (m.size() != m_.size() || v.size() != v_.size() || steps < 0)
    throw InvalidArgument("Adam::load_state: state does not match " + std::to_string(m_.size()) +
                          " parameters");
  t_ = steps;
  m_.assign(m.begin(), m.end());
  v_.assign(v.begin(), v.end());
}

double grad_norm(std::span<const float> grad) {
  // Eight running sums rather than one: a single sum is a chain of dependent additions, 4 us
  // for the tutorial's 4353 parameters, in every CD iteration.
  constexpr std::size_t kSums = 8;
  double s[kSums] = {};
  const std::size_t whole = grad.size() - grad.size() % kSums;
  for (std::size_t i = 0; i < whole; i += kSums)
    for (std::size_t k = 0; k < kSums; ++k) s[k] += static_cast<double>(grad[i + k]) * grad[i + k];
  for (std::size_t i = whole; i < grad.size(); ++i)
    s[i - whole] += static_cast<double>(grad[i]) * grad[i];
  return std::sqrt(((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
}

double clip_grad_norm(std::span<float> grad, double max_norm) {
  const double norm = grad_norm(grad);
  if (norm > max_norm) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    for (float& g : grad) g *= scale;
  }
  return norm;
}

}  // namespace cuebm
