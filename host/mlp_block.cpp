#include "mlp_block.hpp"

#include <algorithm>

#include "../kernels/activation.cuh"

namespace cuebm::detail {
namespace {

constexpr int R = kRowBlock;

// dst[o][r] = bias[o] + sum_k M(o, k) src[k][r], with M(o, k) = m[o * so + k * sk]. Four
// outputs at a time so each loaded source vector feeds four FMAs.
void matmul_block(const float* m, int so, int sk, int n_out, int n_in, const float* bias,
                  const float* src, float* dst) {
  int o = 0;
  for (; o + 4 <= n_out; o += 4) {
    float acc[4][R];
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < R; ++r) acc[q][r] = bias ? bias[o + q] : 0.0f;
    for (int k = 0; k < n_in; ++k) {
      const float* s = src + k * R;
      const float w0 = m[o * so + k * sk], w1 = m[(o + 1) * so + k * sk];
      const float w2 = m[(o + 2) * so + k * sk], w3 = m[(o + 3) * so + k * sk];
      for (int r = 0; r < R; ++r) {
        acc[0][r] += w0 * s[r];
        acc[1][r] += w1 * s[r];
        acc[2][r] += w2 * s[r];
        acc[3][r] += w3 * s[r];
      }
    }
    std::copy(&acc[0][0], &acc[0][0] + 4 * R, dst + o * R);
  }
  for (; o < n_out; ++o) {
    float acc[R];
    for (int r = 0; r < R; ++r) acc[r] = bias ? bias[o] : 0.0f;
    for (int k = 0; k < n_in; ++k) {
      const float w = m[o * so + k * sk];
      for (int r = 0; r < R; ++r) acc[r] += w * src[k * R + r];
    }
    std::copy(acc, acc + R, dst + o * R);
  }
}

template <Activation A>
void forward_impl(const MlpBlockArgs& a, const float* x_t, float* e, float* work) {
  const int n_lin = static_cast<int>(a.widths.size()) - 1;
  for (int l = 0; l < n_lin; ++l) {
    const int in = a.widths[l], out = a.widths[l + 1];
    const float* src = l == 0 ? x_t : work + a.layout.act[l];
    const float* w = a.params + a.weight_offset[l];
    const float* b = a.params + a.bias_offset[l];
    if (l + 1 == n_lin) {
      matmul_block(w, in, 1, out, in, b, src, e);
      break;
    }
    float* z = work + a.layout.pre[l + 1];
    float* h = work + a.layout.act[l + 1];
    matmul_block(w, in, 1, out, in, b, src, z);
    for (int i = 0; i < out * R; ++i) h[i] = activate<A>(z[i]);
  }
}

// param_grad[W_l] += delta (out x R) . src^T (in x R); param_grad[b_l] += row sums of delta.
void accumulate_layer_gradient(const float* delta, const float* src, int out, int in, float* gw,
                               float* gb) {
  for (int j = 0; j < out; ++j) {
    const float* d = delta + j * R;
    float sb = 0.0f;
#pragma omp simd reduction(+ : sb)
    for (int r = 0; r < R; ++r) sb += d[r];
    gb[j] += sb;
    for (int i = 0; i < in; ++i) {
      const float* s = src + i * R;
      float sw = 0.0f;
#pragma omp simd reduction(+ : sw)
      for (int r = 0; r < R; ++r) sw += d[r] * s[r];
      gw[j * in + i] += sw;
    }
  }
}

template <Activation A>
void backward_impl(const MlpBlockArgs& a, const float* x_t, const float* out_weight,
                   float* grad_t, float* param_grad, float* work) {
  const int n_lin = static_cast<int>(a.widths.size()) - 1;
  float* delta = work + a.layout.delta0;
  float* next = work + a.layout.delta1;
  for (int r = 0; r < R; ++r) delta[r] = out_weight ? out_weight[r] : 1.0f;
  for (int l = n_lin - 1; l >= 0; --l) {
    const int in = a.widths[l], out = a.widths[l + 1];
    const float* src = l == 0 ? x_t : work + a.layout.act[l];
    const float* w = a.params + a.weight_offset[l];
    if (param_grad)
      accumulate_layer_gradient(delta, src, out, in, param_grad + a.weight_offset[l],
                                param_grad + a.bias_offset[l]);
    if (l == 0) {
      if (grad_t) matmul_block(w, 1, in, in, out, nullptr, delta, grad_t);
      break;
    }
    matmul_block(w, 1, in, in, out, nullptr, delta, next);
    const float* z = work + a.layout.pre[l];
    for (int i = 0; i < in * R; ++i) next[i] *= activate_derivative<A>(z[i]);
    std::swap(delta, next);
  }
}

}  // namespace

MlpBlockLayout::MlpBlockLayout(const std::vector<int>& widths) {
  const int n_lin = static_cast<int>(widths.size()) - 1;
  act.assign(n_lin, 0);
  pre.assign(n_lin, 0);
  int widest = 1;
  for (int l = 1; l < n_lin; ++l) {
    pre[l] = floats;
    floats += static_cast<std::size_t>(widths[l]) * R;
    act[l] = floats;
    floats += static_cast<std::size_t>(widths[l]) * R;
    widest = std::max(widest, widths[l]);
  }
  delta0 = floats;
  floats += static_cast<std::size_t>(widest) * R;
  delta1 = floats;
  floats += static_cast<std::size_t>(widest) * R;
}

void mlp_block_forward(const MlpBlockArgs& a, const float* x_t, float* e, float* work) {
  dispatch_activation(a.activation,
                      [&]<Activation A>() { forward_impl<A>(a, x_t, e, work); });
}

void mlp_block_backward(const MlpBlockArgs& a, const float* x_t, const float* out_weight,
                        float* grad_t, float* param_grad, float* work) {
  dispatch_activation(a.activation, [&]<Activation A>() {
    backward_impl<A>(a, x_t, out_weight, grad_t, param_grad, work);
  });
}

}  // namespace cuebm::detail
