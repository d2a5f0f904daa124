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

}  // namespace cuebm::detail
