// Activations and their derivatives with PyTorch's conventions, shared by both backends.
#pragma once

#include <cmath>
#if !defined(__CUDA_ARCH__)
#include <bit>
#endif

#include "cuebm/models/activation.hpp"
#include "kernels/runtime/hd.cuh"

namespace cuebm::detail {

#if !defined(__CUDA_ARCH__)
// expf for the CPU backend as straight-line float arithmetic (Cephes' polynomial, about 1 ulp
// on [-87, 88]), so loops over a block vectorise (with -fno-trapping-math); libm's expf is an
// opaque call.
inline float host_expf(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // x log2(e) + 0.5 + 126 > 0 on the clamped range, so truncation is floor.
  const int ni = static_cast<int>(x * 1.44269504088896341f + 126.5f) - 126;
  const float n = static_cast<float>(ni);
  x -= n * 0.693359375f;
  x -= n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * x + 1.3981999507e-3f;
  p = p * x + 8.3334519073e-3f;
  p = p * x + 4.1665795894e-2f;
  p = p * x + 1.6666665459e-1f;
  p = p * x + 5.0000001201e-1f;
  const float y = p * x * x + x + 1.0f;
  return y * std::bit_cast<float>((ni + 127) << 23);
}
#endif

CUEBM_HD float sigmoidf(float z) {
#if defined(__CUDA_ARCH__)
  return 1.0f / (1.0f + expf(-z));
#else
  return 1.0f / (1.0f + host_expf(-z));
#endif
}

template <Activation A>
CUEBM_HD float activate(float z) {
  if constexpr (A == Activation::kReLU) {
    return z > 0.0f ? z : 0.0f;
  } else if constexpr (A == Activation::kSiLU) {
    return z * sigmoidf(z);
  } else if constexpr (A == Activation::kTanh) {
    return tanhf(z);
  } else if constexpr (A == Activation::kSoftplus) {
    return z > 20.0f ? z : log1pf(expf(z));  // beta 1, threshold 20
  } else if constexpr (A == Activation::kLeakyReLU) {
    return z > 0.0f ? z : 0.01f * z;
  } else {
    return 0.5f * z * (1.0f + erff(z * 0.70710678118654752f));  // GELU, erf form
  }
}

// d activate / dz, from the pre-activation z. ReLU's derivative at 0 is 0, LeakyReLU's is
// the negative slope, as in PyTorch's backward.
template <Activation A>
CUEBM_HD float activate_derivative(float z) {
  if constexpr (A == Activation::kReLU) {
    return z > 0.0f ? 1.0f : 0.0f;
  } else if constexpr (A == Activation::kSiLU) {
    const float s = sigmoidf(z);
    return s * (1.0f + z * (1.0f - s));
  } else if constexpr (A == Activation::kTanh) {
    const float t = tanhf(z);
    return 1.0f - t * t;
  } else if constexpr (A == Activation::kSoftplus) {
    return z > 20.0f ? 1.0f : sigmoidf(z);
  } else if constexpr (A == Activation::kLeakyReLU) {
    return z > 0.0f ? 1.0f : 0.01f;
  } else {
    const float cdf = 0.5f * (1.0f + erff(z * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * expf(-0.5f * z * z);
    return cdf + z * pdf;
  }
}

// Calls f.template operator()<A>() with the activation as a compile-time constant: the one
// runtime-to-template switch for activations.
template <class F>
CUEBM_HD auto dispatch_activation(Activation a, F&& f) {
  switch (a) {
    case Activation::kSiLU:
      return f.template operator()<Activation::kSiLU>();
    case Activation::kTanh:
      return f.template operator()<Activation::kTanh>();
    case Activation::kSoftplus:
      return f.template operator()<Activation::kSoftplus>();
    case Activation::kLeakyReLU:
      return f.template operator()<Activation::kLeakyReLU>();
    case Activation::kGELU:
      return f.template operator()<Activation::kGELU>();
    case Activation::kReLU:
    default:
      return f.template operator()<Activation::kReLU>();
  }
}

// The first three derivatives of an activation at the pre-activation z, for the score-matching
// losses (kernels/training/score_matching.cuh): the input Hessian needs the second derivative,
// and the parameter gradient through it the third. Same forms as activate_derivative.
struct ActivationJet {
  float d1, d2, d3;
};

// ReLU and LeakyReLU are piecewise linear: their second and third derivatives are 0 almost
// everywhere (PyTorch's double backward gives 0 everywhere), so such an MLP's input Hessian is
// 0 almost everywhere.
template <Activation A>
constexpr bool activation_has_curvature() {
  return A != Activation::kReLU && A != Activation::kLeakyReLU;
}

template <Activation A>
CUEBM_HD ActivationJet activation_jet(float z) {
  if constexpr (!activation_has_curvature<A>()) {
    return {activate_derivative<A>(z), 0.0f, 0.0f};
  } else if constexpr (A == Activation::kSiLU) {
    // s = sigmoid(z), p = s (1 - s), m = 1 - 2 s: d1 = s (1 + z (1 - s)), d2 = p (2 + z m),
    // d3 = p (m (3 + z m) - 2 z p).
    const float s = sigmoidf(z), p = s * (1.0f - s), m = 1.0f - 2.0f * s;
    return {s * (1.0f + z * (1.0f - s)), p * (2.0f + z * m),
            p * (m * (3.0f + z * m) - 2.0f * z * p)};
  } else if constexpr (A == Activation::kTanh) {
    const float t = tanhf(z), q = 1.0f - t * t;
    return {q, -2.0f * t * q, q * (6.0f * t * t - 2.0f)};
  } else if constexpr (A == Activation::kSoftplus) {
    if (z > 20.0f) return {1.0f, 0.0f, 0.0f};  // the linear branch above the threshold
    const float s = sigmoidf(z), p = s * (1.0f - s);
    return {s, p, p * (1.0f - 2.0f * s)};
  } else {
    // GELU: d1 = Phi + z phi, d2 = phi (2 - z^2), d3 = z phi (z^2 - 4).
    const float cdf = 0.5f * (1.0f + erff(z * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * expf(-0.5f * z * z);
    const float z2 = z * z;
    return {cdf + z * pdf, pdf * (2.0f - z2), z * pdf * (z2 - 4.0f)};
  }
}

template <Activation A>
CUEBM_HD float activate_second_derivative(float z) {
  return activation_jet<A>(z).d2;
}

template <Activation A>
CUEBM_HD float activate_third_derivative(float z) {
  return activation_jet<A>(z).d3;
}

}  // namespace cuebm::detail
