// Per-row math of the score-matching losses (cuebm/training/score_matching.hpp), shared by the
// CPU backend (host/training/score_matching.cpp) and the CUDA kernels
// (kernels/training/score_matching_kernels.cu, one row per thread): no allocation,
// no library calls beyond Philox and the activations, every buffer in a caller-provided
// per-row scratch, so one GPU thread can run one row.
//
// THE MLP. widths {D, h1, ..., hH, 1}, n_lin = H + 1 linear layers, parameters flat in PyTorch
// order (layer l: weight [out, in] row-major, then bias). a_0 = x, z_h = W_h a_{h-1} + b_h,
// a_h = act(z_h), E = w . a_H + b.
//
// CHANNELS (Taylor mode). Besides the primal values every unit carries T first-order channels
// (directional derivatives along directions u_t: z' = W a', a' = act'(z) z') and, when Q > 0,
// S = 1 second-order channel: the weighted sum over t, t' < Q of the second directional
// derivatives along (u_t, u_t'), weights M_tt' (M symmetric Q x Q, the identity unless dense):
// z'' = W a'', a'' = act'(z) z'' + act''(z) sum_tt' M_tt' z'_t z'_t'. The losses need only that
// sum (a trace, or a sum over projections), so one channel carries it instead of one per
// direction. At the output, t_t = w . a'_H = g . u_t and q = w . a''_H = sum_tt' M_tt' u_t^T H
// u_t'. C = 1 + T + S channels; channel 0 is the primal value, 1 + t the first-order channel t,
// 1 + T the second-order channel.
// Every loss is written as Phi = sum_t alpha_t t_t + beta q with alpha, beta held
// fixed (d loss / d t, d loss / d q, or a direction u = d loss / d g with alpha = 1); the
// parameter gradient of the row loss is d Phi / d theta, by one hand-derived reverse pass
// through the channels (sm_reverse), which leaves per layer the adjoints Zbar of the
// pre-activation channels. Then
//   dW_h[j][k] += sum_c Zbar_h[c][j] A_{h-1}[c][k],   db_h[j] += Zbar_h[0][j],
//   dw_out[k]  += sum_t alpha_t A_H[1+t][k] + beta A_H[1+T][k],  db_out = 0
// (sm_add_parameter_gradient), into a gradient buffer of the caller's: the CPU's per-chunk sum,
// or a GPU thread's own per-row column (strided like the scratch), reduced over rows after.
//
// SCRATCH, in floats, element i of a row's scratch at base[map(i)] (SmDense: i; SmStrided:
// i * ld, for a column layout across GPU threads). SmLayout::make(widths, n_lin, channels) gives
// the offsets and `total`: C (D + 3 sum_h h_h + 2 max_width) + 4 D + T D + 2 T + 2 S floats,
// and D^2 more for a dense M:
//   A_l (l = 0..H), width n_l: channel c of unit k at a(l) + c n_l + k (channel-major, so the
//     loops over units are contiguous); A_0 = (x, the directions u, 0)
//   Z_l, Zbar_l (l = 1..H): pre-activations and their adjoints, same layout
//   tmp0, tmp1: adjoint ping-pong (max_width C each); vec: small per-row vectors (g, u, t, q,
//   alpha, beta, three of length D for the noise, a shifted input and a second gradient, and M).
// Weights are read from params (W, row j contiguous; the backward passes) and wt (W
// transposed, column k contiguous; the forward passes).
//
// PRECISION. float throughout, as PyTorch's float32; fmaf in the dot products (width <= a few
// hundred: float is enough). The batch sums of the loss are double, in the caller.
//
// RANDOM DRAWS. Philox (kernels/runtime/philox.cuh) with key score_matching_key(seed),
// subsequence = row, and per iteration a fixed number of normals per row, rounded up to whole
// 4-word blocks: normal j of (row, iteration) is number iteration * words + j of subsequence
// row, words = 4 ceil(count / 4), count = n_projections d (sliced) or d (denoising, approx).
// That is curand_init(key, row, iteration * words) followed by curand_normal4 calls.
// Rademacher signs are the signs of those normals, read exactly from the angle word of the
// Box-Muller pair (sm_rademacher), so a device's fast sine cannot flip one.
#pragma once

#include <cmath>
#include <cstdint>

#include "cuebm/models/activation.hpp"
#include "cuebm/training/score_matching.hpp"
#include "kernels/models/activation.cuh"
#include "kernels/runtime/hd.cuh"
#include "kernels/runtime/philox.cuh"

namespace cuebm::detail {

// ---------------------------------------------------------------------------------------------
// Scratch access.

struct SmDense {
  CUEBM_HD constexpr int64_t operator()(int64_t i) const { return i; }
};
struct SmStrided {
  int64_t ld;
  CUEBM_HD int64_t operator()(int64_t i) const { return i * ld; }
};

template <class Map>
struct SmBuf {
  float* p;
  Map m;
  CUEBM_HD float& operator[](int64_t i) const { return p[m(i)]; }
  CUEBM_HD SmBuf at(int64_t offset) const { return {p + m(offset), m}; }
};

// The MLP as the row math reads it; every pointer readable by the running thread. wt holds
// each layer's weight transposed ([in][out] row-major) at the layer's weight offset in params
// (sm_transpose_weights), so every inner loop of the passes runs over contiguous memory.
struct SmNet {
  const float* params;
  const float* wt;
  const int* widths;  // n_lin + 1 entries
  int n_lin;
};

// wt (num_parameters floats; bias slots untouched) from params.
inline void sm_transpose_weights(const int* widths, int n_lin, const float* params, float* wt) {
  int64_t off = 0;
  for (int l = 0; l < n_lin; ++l) {
    const int n_in = widths[l], n_out = widths[l + 1];
    for (int j = 0; j < n_out; ++j)
      for (int k = 0; k < n_in; ++k)
        wt[off + static_cast<int64_t>(k) * n_out + j] =
            params[off + static_cast<int64_t>(j) * n_in + k];
    off += static_cast<int64_t>(n_out) * (n_in + 1);
  }
}

// Channels a loss carries (the top of this file): T first-order channels; Q > 0: the
// second-order channel over the first Q of them, weighted by M (dense) or the identity. A
// dense M goes with the D unit directions (T = D, Q = D or 0) and is D x D in the scratch.
struct SmChannelCounts {
  int T, Q;
  bool dense;
};

// The largest input dimension for which sliced score matching carries the unit directions with
// a dense M (whose cost per unit and pass grows as D^2).
constexpr int kSmMaxDenseQ = 4;

struct SmLayout {
  const int* widths;
  int n_lin, D, T, S, Q, C;
  bool dense;
  int64_t units, hidden_units, max_width;
  int64_t z0, zbar0, tmp0, tmp1, vec, total;
  // vec region
  int64_t g, u, t, q, alpha, beta, aux, xb, g2, m;

  CUEBM_HD static SmLayout make(const int* widths, int n_lin, SmChannelCounts ch) {
    SmLayout L{};
    L.widths = widths;
    L.n_lin = n_lin;
    L.D = widths[0];
    L.T = ch.T;
    L.Q = ch.Q;
    L.S = ch.Q > 0 ? 1 : 0;
    L.dense = ch.dense;
    const int T = L.T, S = L.S;
    L.C = 1 + T + S;
    L.max_width = widths[0];
    for (int l = 1; l < n_lin; ++l) {
      L.hidden_units += widths[l];
      if (widths[l] > L.max_width) L.max_width = widths[l];
    }
    L.units = widths[0] + L.hidden_units;
    L.z0 = L.units * L.C;
    L.zbar0 = L.z0 + L.hidden_units * L.C;
    L.tmp0 = L.zbar0 + L.hidden_units * L.C;
    L.tmp1 = L.tmp0 + L.max_width * L.C;
    L.vec = L.tmp1 + L.max_width * L.C;
    L.g = L.vec;
    L.u = L.g + L.D;
    L.t = L.u + static_cast<int64_t>(T) * L.D;
    L.q = L.t + T;
    L.alpha = L.q + S;
    L.beta = L.alpha + T;
    L.aux = L.beta + S;
    L.xb = L.aux + L.D;
    L.g2 = L.xb + L.D;
    L.m = L.g2 + L.D;
    L.total = L.m + (L.dense ? static_cast<int64_t>(L.D) * L.D : 0);
    return L;
  }
  // A_l, l = 0..H
  CUEBM_HD int64_t a(int l) const {
    int64_t u = 0;
    for (int i = 0; i < l; ++i) u += widths[i];
    return u * C;
  }
  // Z_l and Zbar_l, l = 1..H
  CUEBM_HD int64_t z(int l) const { return z0 + hidden_prefix(l) * C; }
  CUEBM_HD int64_t zbar(int l) const { return zbar0 + hidden_prefix(l) * C; }

 private:
  CUEBM_HD int64_t hidden_prefix(int l) const {
    int64_t u = 0;
    for (int i = 1; i < l; ++i) u += widths[i];
    return u;
  }
};

// ---------------------------------------------------------------------------------------------
// Passes. In a block of n units, channel c of unit j is element c n + j.

CUEBM_HD int64_t sm_weight_offset(const SmNet& net, int layer) {
  int64_t off = 0;
  for (int l = 0; l < layer; ++l)
    off += static_cast<int64_t>(net.widths[l + 1]) * (net.widths[l] + 1);
  return off;
}

// Primal forward from the input in A_0's channel 0 (sm_set_input); keeps z and act(z) in
// channel 0 of Z_l and A_l. Returns E.
template <Activation A, class Map>
CUEBM_HD float sm_forward_primal(const SmNet& net, const SmLayout& L, SmBuf<Map> s) {
  int64_t off = 0;
  for (int l = 0; l + 1 < net.n_lin; ++l) {
    const int n_in = net.widths[l], n_out = net.widths[l + 1];
    const float* wt = net.wt + off;
    const float* b = net.params + off + static_cast<int64_t>(n_out) * n_in;
    const SmBuf<Map> in = s.at(L.a(l)), z = s.at(L.z(l + 1)), a = s.at(L.a(l + 1));
    for (int j = 0; j < n_out; ++j) z[j] = b[j];
    for (int k = 0; k < n_in; ++k) {
      const float ak = in[k];
      const float* wk = wt + static_cast<int64_t>(k) * n_out;
      for (int j = 0; j < n_out; ++j) z[j] = fmaf(wk[j], ak, z[j]);
    }
    for (int j = 0; j < n_out; ++j) a[j] = activate<A>(z[j]);
    off += static_cast<int64_t>(n_out) * (n_in + 1);
  }
  const int n_h = net.widths[net.n_lin - 1];
  const float* w = net.params + off;
  const SmBuf<Map> a = s.at(L.a(net.n_lin - 1));
  float e = w[n_h];
  for (int k = 0; k < n_h; ++k) e = fmaf(w[k], a[k], e);
  return e;
}

template <class Map>
CUEBM_HD void sm_set_input(const SmLayout& L, SmBuf<Map> s, SmBuf<Map> x) {
  for (int k = 0; k < L.D; ++k) s[k] = x[k];
}

// g = dE/dx (D values) by back-propagation, after sm_forward_primal. Uses tmp0/tmp1.
template <Activation A, class Map>
CUEBM_HD void sm_input_gradient(const SmNet& net, const SmLayout& L, SmBuf<Map> s, SmBuf<Map> g) {
  const int H = net.n_lin - 1;
  SmBuf<Map> cur = s.at(L.tmp0), nxt = s.at(L.tmp1);
  int64_t w_off = sm_weight_offset(net, H);
  const float* w_out = net.params + w_off;
  for (int k = 0; k < net.widths[H]; ++k) cur[k] = w_out[k];
  for (int h = H; h >= 1; --h) {
    const int n_out = net.widths[h], n_in = net.widths[h - 1];
    w_off -= static_cast<int64_t>(n_out) * (n_in + 1);
    const float* W = net.params + w_off;
    const SmBuf<Map> z = s.at(L.z(h));
    for (int j = 0; j < n_out; ++j) cur[j] *= activate_derivative<A>(z[j]);
    for (int k = 0; k < n_in; ++k) nxt[k] = 0.0f;
    for (int j = 0; j < n_out; ++j) {
      const float d = cur[j];
      if (d == 0.0f) continue;
      const float* wr = W + static_cast<int64_t>(j) * n_in;
      for (int k = 0; k < n_in; ++k) nxt[k] = fmaf(wr[k], d, nxt[k]);
    }
    const SmBuf<Map> tswap = cur;
    cur = nxt;
    nxt = tswap;
  }
  for (int k = 0; k < L.D; ++k) g[k] = cur[k];
}

// (M z')_t for the first-order channels z'_k = zc[(1 + k) n] (k < Q) of one unit, M the identity
// or dense (D x D, row-major at L.m of the scratch s).
template <class Map>
CUEBM_HD float sm_weighted_tangent(const SmLayout& L, SmBuf<Map> s, SmBuf<Map> zc, int64_t n,
                                   int t) {
  if (!L.dense) return zc[(1 + t) * n];
  const SmBuf<Map> m = s.at(L.m);
  float mz = 0.0f;
  for (int k = 0; k < L.Q; ++k)
    mz = fmaf(m[static_cast<int64_t>(t) * L.D + k], zc[(1 + k) * n], mz);
  return mz;
}

// First-order channels along the directions u (T x D, direction t at u[t D + k]) and the
// second-order channel (L.Q > 0), after sm_forward_primal. Writes t_out[t] = g . u_t and
// q_out[0] = sum_tt' M_tt' u_t^T H u_t'.
template <Activation A, class Map>
CUEBM_HD void sm_forward_tangents(const SmNet& net, const SmLayout& L, SmBuf<Map> s, SmBuf<Map> u,
                                  SmBuf<Map> t_out, SmBuf<Map> q_out) {
  const int C = L.C, T = L.T, S = L.S, D = L.D;
  {
    const SmBuf<Map> a0 = s.at(L.a(0));
    for (int t = 0; t < T; ++t)
      for (int k = 0; k < D; ++k) a0[(1 + t) * D + k] = u[static_cast<int64_t>(t) * D + k];
    for (int q = 0; q < S; ++q)
      for (int k = 0; k < D; ++k) a0[(1 + T + q) * D + k] = 0.0f;
  }
  int64_t off = 0;
  for (int l = 0; l + 1 < net.n_lin; ++l) {
    const int n_in = net.widths[l], n_out = net.widths[l + 1];
    // The input's second-order channels are 0, so are the first layer's z''.
    const int c_end = l == 0 ? 1 + T : C;
    const float* wt = net.wt + off;
    const SmBuf<Map> in = s.at(L.a(l)), z = s.at(L.z(l + 1)), a = s.at(L.a(l + 1));
    for (int c = 1; c < C; ++c) {
      const SmBuf<Map> zc = z.at(static_cast<int64_t>(c) * n_out);
      for (int j = 0; j < n_out; ++j) zc[j] = 0.0f;
      if (c >= c_end) continue;
      const SmBuf<Map> ic = in.at(static_cast<int64_t>(c) * n_in);
      for (int k = 0; k < n_in; ++k) {
        const float ak = ic[k];
        if (ak == 0.0f) continue;
        const float* wk = wt + static_cast<int64_t>(k) * n_out;
        for (int j = 0; j < n_out; ++j) zc[j] = fmaf(wk[j], ak, zc[j]);
      }
    }
    for (int j = 0; j < n_out; ++j) {
      const ActivationJet jet = activation_jet<A>(z[j]);
      for (int t = 0; t < T; ++t) a[(1 + t) * n_out + j] = jet.d1 * z[(1 + t) * n_out + j];
      if (S) {
        // src = sum_tt' M_tt' z'_t z'_t'
        float src = 0.0f;
        for (int t = 0; t < L.Q; ++t)
          src = fmaf(z[(1 + t) * n_out + j], sm_weighted_tangent(L, s, z.at(j), n_out, t), src);
        a[(1 + T) * n_out + j] = fmaf(jet.d2, src, jet.d1 * z[(1 + T) * n_out + j]);
      }
    }
    off += static_cast<int64_t>(n_out) * (n_in + 1);
  }
  const int n_h = net.widths[net.n_lin - 1];
  const float* w = net.params + off;
  const SmBuf<Map> a = s.at(L.a(net.n_lin - 1));
  for (int t = 0; t < T; ++t) {
    float acc = 0.0f;
    for (int k = 0; k < n_h; ++k) acc = fmaf(w[k], a[(1 + t) * n_h + k], acc);
    t_out[t] = acc;
  }
  for (int q = 0; q < S; ++q) {
    float acc = 0.0f;
    for (int k = 0; k < n_h; ++k) acc = fmaf(w[k], a[(1 + T + q) * n_h + k], acc);
    q_out[q] = acc;
  }
}

// Reverse pass of Phi = sum_t alpha_t t_t + beta q through the channels, after
// sm_forward_tangents: writes Zbar_h for every hidden layer. Per unit, with d1, d2, d3 the
// activation's derivatives at z, Abar the adjoints of the unit's channels and
// src = sum_tt' M_tt' z'_t z'_t':
//   Zbar''  = d1 Abar''
//   Zbar'_t = d1 Abar'_t + 2 d2 (M z')_t Abar''               (the last term for t < Q)
//   Zbar_0  = d1 Abar_0 + sum_t d2 z'_t Abar'_t + (d3 src + d2 z'') Abar''
// and Abar_{h-1} = W_h^T Zbar_h channel by channel.
template <Activation A, class Map>
CUEBM_HD void sm_reverse(const SmNet& net, const SmLayout& L, SmBuf<Map> s, SmBuf<Map> alpha,
                         SmBuf<Map> beta) {
  const int C = L.C, T = L.T, S = L.S, H = net.n_lin - 1;
  SmBuf<Map> cur = s.at(L.tmp0), nxt = s.at(L.tmp1);
  int64_t w_off = sm_weight_offset(net, H);
  const float* w_out = net.params + w_off;
  {
    const int n_h = net.widths[H];
    for (int k = 0; k < n_h; ++k) cur[k] = 0.0f;
    for (int t = 0; t < T; ++t)
      for (int k = 0; k < n_h; ++k) cur[(1 + t) * n_h + k] = w_out[k] * alpha[t];
    for (int q = 0; q < S; ++q)
      for (int k = 0; k < n_h; ++k) cur[(1 + T + q) * n_h + k] = w_out[k] * beta[q];
  }
  for (int h = H; h >= 1; --h) {
    const int n_out = net.widths[h], n_in = net.widths[h - 1];
    const SmBuf<Map> z = s.at(L.z(h)), zb = s.at(L.zbar(h));
    for (int j = 0; j < n_out; ++j) {
      const ActivationJet jet = activation_jet<A>(z[j]);
      float z0 = jet.d1 * cur[j];
      for (int t = 0; t < T; ++t) {
        const int64_t i = static_cast<int64_t>(1 + t) * n_out + j;
        zb[i] = jet.d1 * cur[i];
        z0 = fmaf(jet.d2 * z[i], cur[i], z0);
      }
      if (S) {
        const int64_t i2 = static_cast<int64_t>(1 + T) * n_out + j;
        const float a2 = cur[i2];
        zb[i2] = jet.d1 * a2;
        float src = 0.0f;
        for (int t = 0; t < L.Q; ++t) {
          const int64_t i1 = static_cast<int64_t>(1 + t) * n_out + j;
          const float mz = sm_weighted_tangent(L, s, z.at(j), n_out, t);
          zb[i1] = fmaf(2.0f * jet.d2 * mz, a2, zb[i1]);
          src = fmaf(z[i1], mz, src);
        }
        z0 = fmaf(fmaf(jet.d3, src, jet.d2 * z[i2]), a2, z0);
      }
      zb[j] = z0;
    }
    w_off -= static_cast<int64_t>(n_out) * (n_in + 1);
    if (h == 1) break;
    const float* W = net.params + w_off;
    for (int c = 0; c < C; ++c) {
      const SmBuf<Map> nc = nxt.at(static_cast<int64_t>(c) * n_in);
      const SmBuf<Map> zc = zb.at(static_cast<int64_t>(c) * n_out);
      for (int k = 0; k < n_in; ++k) nc[k] = 0.0f;
      for (int j = 0; j < n_out; ++j) {
        const float f = zc[j];
        if (f == 0.0f) continue;
        const float* wr = W + static_cast<int64_t>(j) * n_in;
        for (int k = 0; k < n_in; ++k) nc[k] = fmaf(wr[k], f, nc[k]);
      }
    }
    const SmBuf<Map> tswap = cur;
    cur = nxt;
    nxt = tswap;
  }
}

// grad += scale * d Phi / d theta from the Zbar and A left by sm_reverse (formulas at the
// top). grad: num_parameters floats, dense (the CPU backend's per-chunk sum) or strided (a GPU
// thread's own per-row gradient column).
template <class Map, class GMap>
CUEBM_HD void sm_add_parameter_gradient(const SmNet& net, const SmLayout& L, SmBuf<Map> s,
                                        SmBuf<Map> alpha, SmBuf<Map> beta, float scale,
                                        SmBuf<GMap> grad) {
  const int C = L.C, T = L.T, S = L.S, H = net.n_lin - 1;
  int64_t off = 0;
  for (int l = 0; l < H; ++l) {
    const int n_in = net.widths[l], n_out = net.widths[l + 1];
    const int c_end = l == 0 ? 1 + T : C;  // A_0's second-order channels are 0
    const SmBuf<Map> in = s.at(L.a(l)), zb = s.at(L.zbar(l + 1));
    const SmBuf<GMap> gb = grad.at(off + static_cast<int64_t>(n_out) * n_in);
    for (int j = 0; j < n_out; ++j) {
      const SmBuf<GMap> gr = grad.at(off + static_cast<int64_t>(j) * n_in);
      for (int c = 0; c < c_end; ++c) {
        const float f = scale * zb[static_cast<int64_t>(c) * n_out + j];
        if (f == 0.0f) continue;
        const SmBuf<Map> ic = in.at(static_cast<int64_t>(c) * n_in);
        for (int k = 0; k < n_in; ++k) gr[k] = fmaf(f, ic[k], gr[k]);
      }
      gb[j] += scale * zb[j];
    }
    off += static_cast<int64_t>(n_out) * (n_in + 1);
  }
  const int n_h = net.widths[H];
  const SmBuf<Map> a = s.at(L.a(H));
  const SmBuf<GMap> go = grad.at(off);
  for (int t = 0; t < T; ++t) {
    const float f = scale * alpha[t];
    for (int k = 0; k < n_h; ++k) go[k] = fmaf(f, a[(1 + t) * n_h + k], go[k]);
  }
  for (int q = 0; q < S; ++q) {
    const float f = scale * beta[q];
    for (int k = 0; k < n_h; ++k) go[k] = fmaf(f, a[(1 + T + q) * n_h + k], go[k]);
  }
}

// ---------------------------------------------------------------------------------------------
// Random draws.

CUEBM_HD uint64_t score_matching_key(uint64_t seed) {
  // splitmix64 of the seed with its own constant, so these draws never coincide with another
  // stream of the same seed (host/runtime/random.hpp's stream_key uses tags 0..6 the same way).
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * 0x5C0E5C0Eull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Normals per row and iteration, rounded up to whole Philox blocks.
CUEBM_HD uint64_t sm_words_per_iteration(int count) {
  return 4 * ((static_cast<uint64_t>(count) + 3) / 4);
}

// Standard normal j (< count) of (row, iteration).
CUEBM_HD float sm_normal(uint64_t key, uint64_t row, uint64_t iteration, int count, int j) {
  return philox_normal(key, row, iteration * sm_words_per_iteration(count) + j);
}

// The sign of sm_normal(key, row, iteration, count, j), read from the Box-Muller angle word b
// (angle v = (b + 1/2) 2 pi / 2^32): r sin v >= 0 iff b < 2^31; r cos v >= 0 iff b's top two
// bits are equal. Exact, where a float sine near 0 or pi could round either way.
CUEBM_HD float sm_rademacher(uint64_t key, uint64_t row, uint64_t iteration, int count, int j) {
  const uint64_t index = iteration * sm_words_per_iteration(count) + j;
  const U32x4 b = philox_block(key, row, index / 4);
  const int w = static_cast<int>(index % 4);
  const uint32_t angle = w < 2 ? b.y : b.w;
  const uint32_t top = angle >> 30;
  const bool positive = (w % 2 == 0) ? top < 2 : (top == 0 || top == 3);
  return positive ? 1.0f : -1.0f;
}

// ---------------------------------------------------------------------------------------------
// The losses, one row at a time.

struct SmRowParams {
  ScoreLossKind kind;
  HessianMethod hessian_method;
  int n_projections;
  ProjectionType projection_type;
  float noise_scale;
  float target_sign;  // denoising: -1 for the correct loss, +1 for TorchEBM's
  float lambda;
  uint64_t key;
  uint64_t iteration;
};

inline SmRowParams sm_row_params(const ScoreLossOptions& o, uint64_t iteration) {
  return {o.kind,
          o.hessian_method,
          o.n_projections,
          o.projection_type,
          o.noise_scale,
          o.denoising_sign == DenoisingSign::kCorrect ? -1.0f : 1.0f,
          o.regularization_strength,
          score_matching_key(o.seed),
          iteration};
}

// Whether sliced score matching carries the D unit directions (g whole, and
// sum_j u_j^T H u_j = sum_ik M_ik H_ik with M = sum_j u_j u_j^T) instead of one channel per
// projection (and one along g for lambda > 0): when that is fewer channels and M is small.
CUEBM_HD bool sm_sliced_by_basis(const SmRowParams& p, int D) {
  return D <= kSmMaxDenseQ && D < p.n_projections + (p.lambda > 0.0f ? 1 : 0);
}

// Channels a loss needs; curved: the activation's second derivative is not 0 a.e.
CUEBM_HD SmChannelCounts sm_channel_counts(const SmRowParams& p, int D, bool curved) {
  switch (p.kind) {
    case ScoreLossKind::kScoreMatching:
      if (p.hessian_method == HessianMethod::kExact) return {D, curved ? D : 0, false};
      return {1, 0, false};
    case ScoreLossKind::kSlicedScoreMatching:
      if (sm_sliced_by_basis(p, D)) return {D, curved ? D : 0, true};
      return {p.n_projections + (p.lambda > 0.0f ? 1 : 0), curved ? p.n_projections : 0, false};
    case ScoreLossKind::kDenoisingScoreMatching:
    default:
      return {1, 0, false};
  }
}

// Normals one row draws per iteration (0: none).
CUEBM_HD int sm_normals_per_row(const SmRowParams& p, int D) {
  switch (p.kind) {
    case ScoreLossKind::kScoreMatching:
      return p.hessian_method == HessianMethod::kExact ? 0 : D;
    case ScoreLossKind::kSlicedScoreMatching:
      return p.n_projections * D;
    case ScoreLossKind::kDenoisingScoreMatching:
    default:
      return D;
  }
}

// Projection p (D values) of a row into v.
template <class Map>
CUEBM_HD void sm_projection(const SmRowParams& p, int D, uint64_t row, int proj, SmBuf<Map> v) {
  const int count = p.n_projections * D;
  if (p.projection_type == ProjectionType::kRademacher) {
    for (int k = 0; k < D; ++k) v[k] = sm_rademacher(p.key, row, p.iteration, count, proj * D + k);
    return;
  }
  float sq = 0.0f;
  for (int k = 0; k < D; ++k) {
    const float n = sm_normal(p.key, row, p.iteration, count, proj * D + k);
    v[k] = n;
    sq = fmaf(n, n, sq);
  }
  if (p.projection_type == ProjectionType::kSphere) {
    const float inv = 1.0f / sqrtf(sq);
    for (int k = 0; k < D; ++k) v[k] *= inv;
  }
}

// One forward-tangent-reverse round with a single first-order channel along u (in L.u) and
// alpha = 1: adds scale * d (u . g) / d theta to grad, u held fixed. Needs sm_forward_primal
// at the point first; L must have T = 1, S = 0.
template <Activation A, class Map, class GMap>
CUEBM_HD void sm_add_directional_gradient(const SmNet& net, const SmLayout& L, SmBuf<Map> s,
                                          float scale, SmBuf<GMap> grad) {
  const SmBuf<Map> alpha = s.at(L.alpha), beta = s.at(L.beta);
  sm_forward_tangents<A>(net, L, s, s.at(L.u), s.at(L.t), s.at(L.q));
  alpha[0] = 1.0f;
  sm_reverse<A>(net, L, s, alpha, beta);
  sm_add_parameter_gradient(net, L, s, alpha, beta, scale, grad);
}

// The loss of one row x (D floats) with the draws of (p.iteration, row); when grad.p is not
// null adds grad_scale * d loss / d theta to grad. L = SmLayout::make(widths, n_lin,
// sm_channel_counts(p, D, activation_has_curvature<A>())).
template <Activation A, class Map, class GMap>
CUEBM_HD float sm_row_loss(const SmNet& net, const SmLayout& L, const SmRowParams& p,
                           const float* x, uint64_t row, SmBuf<Map> s, float grad_scale,
                           SmBuf<GMap> grad) {
  const int D = L.D, T = L.T, S = L.S;
  const SmBuf<Map> g = s.at(L.g), u = s.at(L.u), t = s.at(L.t), q = s.at(L.q);
  const SmBuf<Map> alpha = s.at(L.alpha), beta = s.at(L.beta);
  const SmBuf<Map> aux = s.at(L.aux), xb = s.at(L.xb), g2 = s.at(L.g2);
  const float lambda = p.lambda;
  for (int k = 0; k < D; ++k) xb[k] = x[k];

  if (p.kind == ScoreLossKind::kScoreMatching && p.hessian_method == HessianMethod::kExact) {
    // Unit directions: t = g, q = diag H.
    sm_set_input(L, s, xb);
    sm_forward_primal<A>(net, L, s);
    for (int i = 0; i < T; ++i)
      for (int k = 0; k < D; ++k) u[static_cast<int64_t>(i) * D + k] = i == k ? 1.0f : 0.0f;
    sm_forward_tangents<A>(net, L, s, u, t, q);
    float sq = 0.0f;
    for (int k = 0; k < D; ++k) sq = fmaf(t[k], t[k], sq);
    const float tr = S ? q[0] : 0.0f;
    if (grad.p) {
      for (int k = 0; k < T; ++k) alpha[k] = (1.0f + 2.0f * lambda) * t[k];
      if (S) beta[0] = -1.0f;
      sm_reverse<A>(net, L, s, alpha, beta);
      sm_add_parameter_gradient(net, L, s, alpha, beta, grad_scale, grad);
    }
    return (0.5f + lambda) * sq - tr;
  }

  if (p.kind == ScoreLossKind::kSlicedScoreMatching && L.dense) {
    // By the unit directions: t = g, q = sum_ik M_ik H_ik; the loss
    // (g^T M g / 2 - q) / P + lambda |g|^2, d loss / d g = M g / P + 2 lambda g.
    const int P = p.n_projections;
    const float inv_p = 1.0f / static_cast<float>(P);
    const SmBuf<Map> m = s.at(L.m);
    sm_set_input(L, s, xb);
    sm_forward_primal<A>(net, L, s);
    for (int i = 0; i < T; ++i)
      for (int k = 0; k < D; ++k) u[static_cast<int64_t>(i) * D + k] = i == k ? 1.0f : 0.0f;
    for (int i = 0; i < D * D; ++i) m[i] = 0.0f;
    for (int j = 0; j < P; ++j) {
      sm_projection(p, D, row, j, aux);
      for (int i = 0; i < D; ++i)
        for (int k = 0; k < D; ++k)
          m[static_cast<int64_t>(i) * D + k] =
              fmaf(aux[i], aux[k], m[static_cast<int64_t>(i) * D + k]);
    }
    sm_forward_tangents<A>(net, L, s, u, t, q);
    float sq = 0.0f, quad = 0.0f;
    for (int i = 0; i < D; ++i) {
      float mg = 0.0f;
      for (int k = 0; k < D; ++k) mg = fmaf(m[static_cast<int64_t>(i) * D + k], t[k], mg);
      alpha[i] = fmaf(mg, inv_p, 2.0f * lambda * t[i]);
      quad = fmaf(t[i], mg, quad);
      sq = fmaf(t[i], t[i], sq);
    }
    const float sum = 0.5f * quad - (S ? q[0] : 0.0f);
    if (grad.p) {
      if (S) beta[0] = -inv_p;
      sm_reverse<A>(net, L, s, alpha, beta);
      sm_add_parameter_gradient(net, L, s, alpha, beta, grad_scale, grad);
    }
    return sum * inv_p + lambda * sq;
  }

  if (p.kind == ScoreLossKind::kSlicedScoreMatching) {
    const int P = p.n_projections;
    sm_set_input(L, s, xb);
    sm_forward_primal<A>(net, L, s);
    for (int j = 0; j < P; ++j) sm_projection(p, D, row, j, u.at(static_cast<int64_t>(j) * D));
    float sq = 0.0f;
    if (lambda > 0.0f) {
      // Channel P along g: its alpha = 2 lambda gives d (lambda |g|^2) / d theta.
      sm_input_gradient<A>(net, L, s, g);
      for (int k = 0; k < D; ++k) {
        u[static_cast<int64_t>(P) * D + k] = g[k];
        sq = fmaf(g[k], g[k], sq);
      }
    }
    sm_forward_tangents<A>(net, L, s, u, t, q);
    const float inv_p = 1.0f / static_cast<float>(P);
    float sum = 0.0f;
    for (int j = 0; j < P; ++j) sum += 0.5f * t[j] * t[j];
    if (S) sum -= q[0];
    if (grad.p) {
      for (int j = 0; j < P; ++j) alpha[j] = t[j] * inv_p;
      if (T > P) alpha[P] = 2.0f * lambda;
      if (S) beta[0] = -inv_p;
      sm_reverse<A>(net, L, s, alpha, beta);
      sm_add_parameter_gradient(net, L, s, alpha, beta, grad_scale, grad);
    }
    return sum * inv_p + lambda * sq;
  }

  const int count = D;
  if (p.kind == ScoreLossKind::kDenoisingScoreMatching) {
    // x~ = x + n; loss 0.5 |g(x~) + target_sign n / sigma^2|^2.
    const float sigma = p.noise_scale, inv_var = 1.0f / (sigma * sigma);
    for (int k = 0; k < D; ++k) {
      aux[k] = sigma * sm_normal(p.key, row, p.iteration, count, k);
      xb[k] = x[k] + aux[k];
    }
    sm_set_input(L, s, xb);
    sm_forward_primal<A>(net, L, s);
    sm_input_gradient<A>(net, L, s, g);
    float loss = 0.0f;
    for (int k = 0; k < D; ++k) {
      const float r = fmaf(p.target_sign * aux[k], inv_var, g[k]);
      u[k] = r;  // d loss / d g
      loss = fmaf(r, r, loss);
    }
    loss *= 0.5f;
    if (grad.p) sm_add_directional_gradient<A>(net, L, s, grad_scale, grad);
    if (lambda > 0.0f) {
      for (int k = 0; k < D; ++k) xb[k] = x[k];
      sm_set_input(L, s, xb);
      sm_forward_primal<A>(net, L, s);
      sm_input_gradient<A>(net, L, s, g);
      float sq = 0.0f;
      for (int k = 0; k < D; ++k) {
        sq = fmaf(g[k], g[k], sq);
        u[k] = 2.0f * lambda * g[k];
      }
      loss += lambda * sq;
      if (grad.p) sm_add_directional_gradient<A>(net, L, s, grad_scale, grad);
    }
    return loss;
  }

  // TorchEBM's approx: x' = x + delta in float, delta' = x' - x (exact), trace estimate
  // (g(x') - g(x)) . delta' / (eps^2 D).
  const float eps = kTorchEbmApproxEpsilon;
  const float inv = 1.0f / (eps * eps * static_cast<float>(D));
  sm_set_input(L, s, xb);
  sm_forward_primal<A>(net, L, s);
  sm_input_gradient<A>(net, L, s, g);
  for (int k = 0; k < D; ++k) {
    const float xs = x[k] + eps * sm_normal(p.key, row, p.iteration, count, k);
    aux[k] = xs - x[k];
    xb[k] = xs;
  }
  sm_set_input(L, s, xb);
  sm_forward_primal<A>(net, L, s);
  sm_input_gradient<A>(net, L, s, g2);
  float sq = 0.0f, tr = 0.0f;
  for (int k = 0; k < D; ++k) {
    sq = fmaf(g[k], g[k], sq);
    tr = fmaf(g2[k] - g[k], aux[k], tr);
  }
  tr *= inv;
  if (grad.p) {
    // At x' (still in the scratch): d/dtheta of -(g(x') . delta') inv.
    for (int k = 0; k < D; ++k) u[k] = -aux[k] * inv;
    sm_add_directional_gradient<A>(net, L, s, grad_scale, grad);
    // At x: (1 + 2 lambda) g + delta' inv.
    for (int k = 0; k < D; ++k) xb[k] = x[k];
    sm_set_input(L, s, xb);
    sm_forward_primal<A>(net, L, s);
    for (int k = 0; k < D; ++k) u[k] = fmaf(1.0f + 2.0f * lambda, g[k], aux[k] * inv);
    sm_add_directional_gradient<A>(net, L, s, grad_scale, grad);
  }
  return (0.5f + lambda) * sq - tr;
}

}  // namespace cuebm::detail
