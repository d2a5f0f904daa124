// Adam's per-element update (torch.optim.Adam, non-amsgrad) shared by both backends.
#pragma once

#include <cmath>

#include "kernels/runtime/hd.cuh"

namespace cuebm::detail {

struct AdamStepConstants {
  float lr, beta1, beta2, eps, weight_decay;
  float step_size;              // lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

CUEBM_HD void adam_update(float& param, float& m, float& v, float grad, float grad_scale,
                          const AdamStepConstants& c) {
  float g = grad * grad_scale;
  if (c.weight_decay != 0.0f) g += c.weight_decay * param;
  m = m * c.beta1 + (1.0f - c.beta1) * g;
  v = v * c.beta2 + (1.0f - c.beta2) * g * g;
  const float denom = sqrtf(v) / c.bias_correction2_sqrt + c.eps;
  param -= c.step_size * (m / denom);
}

// d loss / d E_i for the CD loss with n positives and n negatives:
// positives (1 + 2 w E_i) / n, negatives (-1 + 2 w E_i) / n.
CUEBM_HD float cd_coefficient(float energy, bool positive, float reg_weight, float inv_n) {
  return ((positive ? 1.0f : -1.0f) + 2.0f * reg_weight * energy) * inv_n;
}

}  // namespace cuebm::detail
