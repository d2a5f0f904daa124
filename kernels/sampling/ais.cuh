// The per-chain math of annealed importance sampling (include/cuebm/sampling/ais.hpp), shared by
// the CPU backend (host/sampling/ais.cpp) and the CUDA kernel (kernels/sampling/ais_kernels.cu)
// so that both compute the same log weights from the same numbers. Every multiply-add is an
// explicit fma: nvcc contracts a * b + c on its own (--fmad) and the host compiler may not, so
// only explicit fma rounds the same way on both.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/runtime/hd.cuh"

namespace cuebm::detail {

// b_k = k / K, the inverse temperature of the k-th intermediate density.
CUEBM_HD double ais_beta(int k, int n_temperatures) {
  return static_cast<double>(k) / static_cast<double>(n_temperatures);
}

// sq + x^2: the running |x|^2, summed in double in increasing coordinate order.
CUEBM_HD double ais_add_square(double sq, float x) {
  const double v = static_cast<double>(x);
  return fma(v, v, sq);
}

// E_b = (1 - b) |x|^2 / 2 + b E / T from sq = |x|^2 and E, inv_t = 1 / T.
CUEBM_HD double ais_tempered_energy(double sq, float e, double b, double inv_t) {
  return fma(b * inv_t, static_cast<double>(e), (1.0 - b) * 0.5 * sq);
}

// dE_b/dx_i = (1 - b) x_i + b g_i / T (g = dE/dx), rounded to float as MALA works in float.
CUEBM_HD float ais_tempered_gradient(float x, float g, double b, double inv_t) {
  return static_cast<float>(
      fma(b * inv_t, static_cast<double>(g), (1.0 - b) * static_cast<double>(x)));
}

// The log weight after the increment b0 -> b1 at state x (sq = |x|^2, E = e):
// logw + (b1 - b0) (|x|^2 / 2 - E / T).
CUEBM_HD double ais_add_log_weight(double logw, double sq, float e, double b0, double b1,
                                   double inv_t) {
  return fma(b1 - b0, fma(-inv_t, static_cast<double>(e), 0.5 * sq), logw);
}

}  // namespace cuebm::detail
