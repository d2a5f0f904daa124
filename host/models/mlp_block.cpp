#include "host/models/mlp_block.hpp"

#include <algorithm>
#include <utility>

#include "kernels/models/activation.cuh"

namespace cuebm::detail {
namespace {

constexpr int R = kRowBlock;

// A feature row of a block as whole vectors: GCC/Clang vector extensions of the target's own
// width (a wider type is split by the compiler through memory: 27x slower with AVX2), so the
// kernel stays portable C++.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
using Vec = float __attribute__((vector_size(kVectorBytes)));
constexpr int kLanes = kVectorBytes / 4;
constexpr int V = R / kLanes;
static_assert(R % kLanes == 0, "kRowBlock must be a multiple of the vector width");
// Output rows per matmul tile: its OB x V accumulators must fit the target's vector registers
// (32 with AVX-512, 16 otherwise).
constexpr int kMaxTile = kVectorBytes == 64 ? 8 : kVectorBytes == 32 ? 2 : 1;

inline Vec load_vec(const float* p) {
  Vec v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store_vec(float* p, Vec v) { __builtin_memcpy(p, &v, sizeof v); }

// Hands bias[o + q] + sum_k M(o + q, k) src[k][r] for q < OB and every row r to
// store(o + q, v, value), one vector v of rows at a time, with M(o, k) = m[o * so + k * sk]. The
// OB x V accumulators stay in registers; each sum runs over k in order whatever the tile shape.
template <int OB, class Store>
void matmul_tile(const float* m, int so, int sk, int o, int n_in, const float* bias,
                 const float* src, Store& store) {
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
    for (int v = 0; v < V; ++v) store(o + q, v, acc[q][v]);
}

// Tiles of up to kMaxTile outputs x all V vectors of rows: with AVX-512, 8 x 2, so each broadcast
// weight feeds two FMAs (16 x 1 tiles, with the broadcast folded into the FMA, need 16 weight-row
// addresses for runtime strides and ran 4% slower here); with AVX2, 2 x 4.
template <class Store>
void matmul_block(const float* m, int so, int sk, int n_out, int n_in, const float* bias,
                  const float* src, Store&& store) {
  int o = 0;
  if constexpr (kMaxTile >= 8)
    for (; o + 8 <= n_out; o += 8) matmul_tile<8>(m, so, sk, o, n_in, bias, src, store);
  if constexpr (kMaxTile >= 4)
    for (; o + 4 <= n_out; o += 4) matmul_tile<4>(m, so, sk, o, n_in, bias, src, store);
  // Pairs too: dE/dx of 2-D inputs is two outputs, four chains instead of two.
  if constexpr (kMaxTile >= 2)
    for (; o + 2 <= n_out; o += 2) matmul_tile<2>(m, so, sk, o, n_in, bias, src, store);
  for (; o < n_out; ++o) matmul_tile<1>(m, so, sk, o, n_in, bias, src, store);
}

// f(z) and f'(z) of a whole vector. ReLU's and LeakyReLU's are written as vector selects: the
// compiler does not vectorise a loop over the lanes of the scalar forms by itself.
template <Activation A>
Vec activate_vec(Vec z) {
  if constexpr (A == Activation::kReLU) {
    return z > 0.0f ? z : Vec{};
  } else if constexpr (A == Activation::kLeakyReLU) {
    return z > 0.0f ? z : 0.01f * z;
  } else {
    float lanes[kLanes];
    store_vec(lanes, z);
    for (float& v : lanes) v = activate<A>(v);
    return load_vec(lanes);
  }
}
template <Activation A>
Vec activate_derivative_vec(Vec z) {
  if constexpr (A == Activation::kReLU) {
    return z > 0.0f ? Vec{} + 1.0f : Vec{};
  } else if constexpr (A == Activation::kLeakyReLU) {
    return z > 0.0f ? Vec{} + 1.0f : Vec{} + 0.01f;
  } else {
    float lanes[kLanes];
    store_vec(lanes, z);
    for (float& v : lanes) v = activate_derivative<A>(v);
    return load_vec(lanes);
  }
}

// ReLU's and LeakyReLU's derivatives depend only on whether z > 0, which h = f(z) > 0 tells
// too (also for NaN, 0 and underflow): backward reads them from h, and forward does not store z,
// which keeps a block's working set in a 32 KiB L1 cache for the tutorial's 64-wide layers.
template <Activation A>
constexpr bool derivative_from_output() {
  return A == Activation::kReLU || A == Activation::kLeakyReLU;
}

// Stores a matmul's output as is: dst[row][r].
auto store_to(float* dst) {
  return [dst](int row, int v, Vec value) { store_vec(dst + row * R + v * kLanes, value); };
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
      matmul_block(w, in, 1, out, in, b, src, store_to(e));
      break;
    }
    float* z = work + a.layout.pre[l + 1];
    float* h = work + a.layout.act[l + 1];
    // z, and the activation h = f(z) while z is in registers.
    matmul_block(w, in, 1, out, in, b, src, [z, h](int row, int v, Vec value) {
      if constexpr (!derivative_from_output<A>()) store_vec(z + row * R + v * kLanes, value);
      store_vec(h + row * R + v * kLanes, activate_vec<A>(value));
    });
  }
}

// The kLanes x kLanes transpose of rows[0..kLanes) in log2(kLanes) butterfly stages: stage S swaps
// the off-diagonal S x S blocks of every 2S x 2S diagonal block.
constexpr int butterfly_lane(int s, bool upper, int lane) {
  const int base = lane / (2 * s) * 2 * s + (upper ? s : 0), w = lane % (2 * s);
  return w < s ? base + w : kLanes + base + w - s;
}
template <int S, bool Upper, int... L>
Vec butterfly(Vec a, Vec b, std::integer_sequence<int, L...>) {
  return __builtin_shufflevector(a, b, butterfly_lane(S, Upper, L)...);
}
template <int S>
void butterfly_stage(Vec* rows) {
  constexpr auto lanes = std::make_integer_sequence<int, kLanes>{};
  for (int i = 0; i < kLanes; ++i)
    if ((i & S) == 0) {
      const Vec lo = butterfly<S, false>(rows[i], rows[i + S], lanes);
      const Vec hi = butterfly<S, true>(rows[i], rows[i + S], lanes);
      rows[i] = lo;
      rows[i + S] = hi;
    }
}

template <int S>
void butterfly_stages(Vec* rows) {
  butterfly_stage<S>(rows);
  if constexpr (S > 1) butterfly_stages<S / 2>(rows);
}

// src_t[r][i] = src[i][r] for a feature-major block src (in x R): whole kLanes x kLanes tiles
// through registers, the inputs past the last whole tile one by one.
void transpose_block(const float* src, int in, float* src_t) {
  const int in_tiles = in - in % kLanes;
  for (int i0 = 0; i0 < in_tiles; i0 += kLanes)
    for (int r0 = 0; r0 < R; r0 += kLanes) {
      Vec rows[kLanes];
      for (int k = 0; k < kLanes; ++k) rows[k] = load_vec(src + (i0 + k) * R + r0);
      butterfly_stages<kLanes / 2>(rows);
      for (int k = 0; k < kLanes; ++k) store_vec(src_t + (r0 + k) * in + i0, rows[k]);
    }
  for (int i = in_tiles; i < in; ++i)
    for (int r = 0; r < R; ++r) src_t[r * in + i] = src[i * R + r];
}

// acc + product with the product rounded first, not one FMA: the weight gradients of single
// output rows and of the inputs past the last whole vector were scalar loops, which GCC
// vectorised without contracting, and these keep their bits under GCC (trained models stay the
// same; clang contracted those loops, so its bits change). The empty asm hides the product from
// the compiler's contraction.
inline Vec add_rounded_product(Vec acc, Vec product) {
#if defined(__AVX512F__)
  asm("" : "+v"(product));
#elif defined(__SSE__)
  asm("" : "+x"(product));  // an xmm or ymm register: Vec has the target's width
#else
  asm("" : "+m"(product));
#endif
  return acc + product;
}

// gw[j + q][i .. i + kLanes) += sum_r delta[j + q][r] src_t[r][i .. i + kLanes) for q < JB, each
// sum in r order (products rounded before the sum for JB = 1: add_rounded_product); first: gw
// starts from 0 instead of its contents.
template <int JB>
void accumulate_weight_rows(const float* delta, const float* src_t, int j, int in, int in_vec,
                            bool first, float* gw) {
  for (int i = 0; i < in_vec; i += kLanes) {
    Vec acc[JB];
    for (int q = 0; q < JB; ++q) acc[q] = first ? Vec{} : load_vec(gw + (j + q) * in + i);
    for (int r = 0; r < R; ++r) {
      const Vec s = load_vec(src_t + r * in + i);
      for (int q = 0; q < JB; ++q)
        acc[q] = JB == 1 ? add_rounded_product(acc[q], delta[(j + q) * R + r] * s)
                         : acc[q] + delta[(j + q) * R + r] * s;
    }
    for (int q = 0; q < JB; ++q) store_vec(gw + (j + q) * in + i, acc[q]);
  }
}

// gw[j .. j + kLanes * JV)[i] += sum_r delta_t[r][j ..] src[i][r]: the weights of input i for
// whole vectors of outputs, each sum in r order (narrow inputs: the first layer's 2 inputs would
// otherwise be 2 x out scalar chains of R dependent FMAs).
template <int JV>
void accumulate_weight_columns(const float* delta_t, const float* src, int j, int i, int out,
                               int in, bool first, float* gw) {
  Vec acc[JV];
  for (int v = 0; v < JV; ++v) {
    float lanes[kLanes];
    for (int q = 0; q < kLanes; ++q) lanes[q] = first ? 0.0f : gw[(j + v * kLanes + q) * in + i];
    acc[v] = load_vec(lanes);
  }
  for (int r = 0; r < R; ++r) {
    const float s = src[i * R + r];
    for (int v = 0; v < JV; ++v)
      acc[v] = add_rounded_product(acc[v], load_vec(delta_t + r * out + j + v * kLanes) * s);
  }
  for (int v = 0; v < JV; ++v) {
    float lanes[kLanes];
    store_vec(lanes, acc[v]);
    for (int q = 0; q < kLanes; ++q) gw[(j + v * kLanes + q) * in + i] = lanes[q];
  }
}

// param_grad[W_l] += delta (out x R) . src^T (in x R); param_grad[b_l] += row sums of delta
// (first: = instead of +=, the same bits as adding to zeros). src is transposed first (src_t:
// R x in) so the update of a weight row is a vector FMA over its inputs; the inputs past the
// last whole vector of inputs take delta transposed (delta_t: R x out) and run over vectors of
// outputs instead. Every element is summed over r in order, whatever the tiling.
void accumulate_layer_gradient(const float* delta, const float* src, int out, int in, bool first,
                               float* gw, float* gb, float* src_t, float* delta_t) {
  transpose_block(src, in, src_t);
  int j = 0;
  for (; j + 8 <= out; j += 8) {  // eight independent sums hide the add latency
    float sb[8] = {};
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 8; ++q) sb[q] += delta[(j + q) * R + r];
    for (int q = 0; q < 8; ++q) gb[j + q] = (first ? 0.0f : gb[j + q]) + sb[q];
  }
  for (; j < out; ++j) {
    float sb = 0.0f;
    for (int r = 0; r < R; ++r) sb += delta[j * R + r];
    gb[j] = (first ? 0.0f : gb[j]) + sb;
  }
  const int in_vec = in - in % kLanes;
  j = 0;
  for (; j + 8 <= out; j += 8) accumulate_weight_rows<8>(delta, src_t, j, in, in_vec, first, gw);
  for (; j + 4 <= out; j += 4) accumulate_weight_rows<4>(delta, src_t, j, in, in_vec, first, gw);
  for (; j < out; ++j) accumulate_weight_rows<1>(delta, src_t, j, in, in_vec, first, gw);
  if (in_vec == in) return;
  // The inputs past the last whole vector: whole vectors of outputs, then the last out % 16.
  const int out_vec = out - out % kLanes;
  if (out_vec > 0) transpose_block(delta, out, delta_t);
  for (int i = in_vec; i < in; ++i) {
    j = 0;
    for (; j + 4 * kLanes <= out_vec; j += 4 * kLanes)
      accumulate_weight_columns<4>(delta_t, src, j, i, out, in, first, gw);
    for (; j < out_vec; j += kLanes)
      accumulate_weight_columns<1>(delta_t, src, j, i, out, in, first, gw);
    for (; j < out; ++j) {
      float acc = first ? 0.0f : gw[j * in + i];
      for (int r = 0; r < R; ++r) acc += delta[j * R + r] * src[i * R + r];
      gw[j * in + i] = acc;
    }
  }
}

template <Activation A>
void backward_impl(const MlpBlockArgs& a, const float* x_t, const float* out_weight, float* grad_t,
                   float* param_grad, bool first, float* work) {
  const int n_lin = static_cast<int>(a.widths.size()) - 1;
  float* delta = work + a.layout.delta0;
  float* next = work + a.layout.delta1;
  for (int r = 0; r < R; ++r) delta[r] = out_weight ? out_weight[r] : 1.0f;
  for (int l = n_lin - 1; l >= 0; --l) {
    const int in = a.widths[l], out = a.widths[l + 1];
    const float* src = l == 0 ? x_t : work + a.layout.act[l];
    const float* w = a.params + a.weight_offset[l];
    if (param_grad)
      // delta transposed goes to `next`, free until the matmul below fills it.
      accumulate_layer_gradient(delta, src, out, in, first, param_grad + a.weight_offset[l],
                                param_grad + a.bias_offset[l], work + a.layout.transposed, next);
    if (l == 0) {
      if (grad_t) matmul_block(w, 1, in, in, out, nullptr, delta, store_to(grad_t));
      break;
    }
    // next = (W^T delta) * f'(z), the product taken while W^T delta is in registers.
    const float* z = work + (derivative_from_output<A>() ? a.layout.act[l] : a.layout.pre[l]);
    matmul_block(w, 1, in, in, out, nullptr, delta, [z, next](int row, int v, Vec value) {
      const Vec derivative = activate_derivative_vec<A>(load_vec(z + row * R + v * kLanes));
      store_vec(next + row * R + v * kLanes, value * derivative);
    });
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
                        float* grad_t, float* param_grad, float* work, bool param_grad_first) {
  dispatch_activation(a.activation, [&]<Activation A>() {
    backward_impl<A>(a, x_t, out_weight, grad_t, param_grad, param_grad_first, work);
  });
}

}  // namespace cuebm::detail
