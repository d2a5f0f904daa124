#include "host/models/mlp_block.hpp"

#include <algorithm>

#include "kernels/models/activation.cuh"

namespace cuebm::detail {
namespace {

constexpr int R = kRowBlock;

// A feature row of a block as whole vectors: GCC/Clang vector extensions, lowered to
// AVX-512, AVX2 or SSE by the target, so the kernel stays portable C++.
using Vec = float __attribute__((vector_size(64)));
constexpr int kLanes = 16;
constexpr int V = R / kLanes;
static_assert(R % kLanes == 0, "kRowBlock must be a multiple of 16");

inline Vec load_vec(const float* p) {
  Vec v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store_vec(float* p, Vec v) { __builtin_memcpy(p, &v, sizeof v); }

// dst[o + q][r] = bias[o + q] + sum_k M(o + q, k) src[k][r] for q < OB, with
// M(o, k) = m[o * so + k * sk]. OB outputs x V vectors of accumulators stay in registers and
// every loaded source vector feeds OB FMAs.
template <int OB>
void matmul_tile(const float* m, int so, int sk, int o, int n_in, const float* bias,
                 const float* src, float* dst) {
  Vec acc[OB][V];
  for (int q = 0; q < OB; ++q)
    for (int v = 0; v < V; ++v) acc[q][v] = Vec{} + (bias ? bias[o + q] : 0.0f);
  for (int k = 0; k < n_in; ++k) {
    Vec s[V];
    for (int v = 0; v < V; ++v) s[v] = load_vec(src + k * R + v * kLanes);
    for (int q = 0; q < OB; ++q) {
      const float w = m[(o + q) * so + k * sk];
      for (int v = 0; v < V; ++v) acc[q][v] += w * s[v];
    }
  }
  for (int q = 0; q < OB; ++q)
    for (int v = 0; v < V; ++v) store_vec(dst + (o + q) * R + v * kLanes, acc[q][v]);
}

void matmul_block(const float* m, int so, int sk, int n_out, int n_in, const float* bias,
                  const float* src, float* dst) {
  int o = 0;
  for (; o + 8 <= n_out; o += 8) matmul_tile<8>(m, so, sk, o, n_in, bias, src, dst);
  for (; o + 4 <= n_out; o += 4) matmul_tile<4>(m, so, sk, o, n_in, bias, src, dst);
  for (; o < n_out; ++o) matmul_tile<1>(m, so, sk, o, n_in, bias, src, dst);
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
// src is transposed first (src_t: R x in) so the update of a weight row is a vector FMA over
// its inputs, four weight rows at a time.
void accumulate_layer_gradient(const float* delta, const float* src, int out, int in, float* gw,
                               float* gb, float* src_t) {
  for (int i = 0; i < in; ++i)
    for (int r = 0; r < R; ++r) src_t[r * in + i] = src[i * R + r];
  for (int j = 0; j < out; ++j) {
    float sb = 0.0f;
    for (int r = 0; r < R; ++r) sb += delta[j * R + r];
    gb[j] += sb;
  }
  const int in_vec = in - in % kLanes;
  int j = 0;
  for (; j + 4 <= out; j += 4) {
    for (int i = 0; i < in_vec; i += kLanes) {
      Vec acc[4];
      for (int q = 0; q < 4; ++q) acc[q] = load_vec(gw + (j + q) * in + i);
      for (int r = 0; r < R; ++r) {
        const Vec s = load_vec(src_t + r * in + i);
        for (int q = 0; q < 4; ++q) acc[q] += delta[(j + q) * R + r] * s;
      }
      for (int q = 0; q < 4; ++q) store_vec(gw + (j + q) * in + i, acc[q]);
    }
  }
  // The rest: the last out % 4 rows, and the inputs past the last whole vector.
  for (int jj = 0; jj < out; ++jj)
    for (int i = (jj < j ? in_vec : 0); i < in; ++i) {
      float acc = gw[jj * in + i];
      for (int r = 0; r < R; ++r) acc += delta[jj * R + r] * src_t[r * in + i];
      gw[jj * in + i] = acc;
    }
}

template <Activation A>
void backward_impl(const MlpBlockArgs& a, const float* x_t, const float* out_weight, float* grad_t,
                   float* param_grad, float* work) {
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
                                param_grad + a.bias_offset[l], work + a.layout.transposed);
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
  int widest_input = 1;
  for (int l = 0; l < n_lin; ++l) widest_input = std::max(widest_input, widths[l]);
  transposed = floats;
  floats += static_cast<std::size_t>(widest_input) * R;
  delta0 = floats;
  floats += static_cast<std::size_t>(widest) * R;
  delta1 = floats;
  floats += static_cast<std::size_t>(widest) * R;
}

void mlp_block_forward(const MlpBlockArgs& a, const float* x_t, float* e, float* work) {
  dispatch_activation(a.activation, [&]<Activation A>() { forward_impl<A>(a, x_t, e, work); });
}

void mlp_block_backward(const MlpBlockArgs& a, const float* x_t, const float* out_weight,
                        float* grad_t, float* param_grad, float* work) {
  dispatch_activation(a.activation, [&]<Activation A>() {
    backward_impl<A>(a, x_t, out_weight, grad_t, param_grad, work);
  });
}

}  // namespace cuebm::detail
