#include "host/training/score_matching_block.hpp"

#include <algorithm>
#include <cmath>

#include "cuebm/models/energy.hpp"
#include "kernels/models/activation.cuh"

namespace cuebm::detail {
namespace {

constexpr int R = kRowBlock;

// Element i of score_matching.cuh's per-row scratch (SmLayout offsets) is the R floats at
// work + i R, one per row of the block; past L.total: the transposed layer inputs of the
// parameter gradient (At, [row][channel][unit]) and three rows of activation derivatives.
struct Block {
  const SmLayout& L;
  float* work;
  float* v(int64_t i) const { return work + i * R; }
  float* at() const { return v(L.total); }
  float* jets() const { return v(L.total + L.max_width * L.C); }
};

// dst[o][r] = init(o) + sum over k in order of m(o, k) src[k][r] by fmaf, for the outputs
// [o, o + OB), m(o, k) = m[o so + k sk], init the bias or 0: the per-row code's sums, with
// OB x R accumulators held in registers.
template <int OB>
inline void matmul_tile(const float* m, int64_t so, int64_t sk, int o, int n_k, const float* bias,
                        const float* src, float* dst) {
  float acc[OB][R];
  for (int q = 0; q < OB; ++q) {
    const float b = bias ? bias[o + q] : 0.0f;
    for (int r = 0; r < R; ++r) acc[q][r] = b;
  }
  for (int k = 0; k < n_k; ++k) {
    const float* s = src + static_cast<int64_t>(k) * R;
    for (int q = 0; q < OB; ++q) {
      const float w = m[(o + q) * so + k * sk];
      for (int r = 0; r < R; ++r) acc[q][r] = std::fma(w, s[r], acc[q][r]);
    }
  }
  for (int q = 0; q < OB; ++q)
    for (int r = 0; r < R; ++r) dst[static_cast<int64_t>(o + q) * R + r] = acc[q][r];
}

void matmul(const float* m, int64_t so, int64_t sk, int n_out, int n_k, const float* bias,
            const float* src, float* dst) {
  int o = 0;
  for (; o + 8 <= n_out; o += 8) matmul_tile<8>(m, so, sk, o, n_k, bias, src, dst);
  for (; o + 4 <= n_out; o += 4) matmul_tile<4>(m, so, sk, o, n_k, bias, src, dst);
  for (; o < n_out; ++o) matmul_tile<1>(m, so, sk, o, n_k, bias, src, dst);
}

void copy_rows(const float* src, int64_t count, float* dst) {
  std::copy(src, src + count * R, dst);
}

// sm_forward_primal without the energy (the losses do not use it).
template <Activation A>
void forward_primal(const SmNet& net, const Block& b) {
  int64_t off = 0;
  for (int l = 0; l + 1 < net.n_lin; ++l) {
    const int n_in = net.widths[l], n_out = net.widths[l + 1];
    const float* W = net.params + off;
    float* z = b.v(b.L.z(l + 1));
    float* a = b.v(b.L.a(l + 1));
    matmul(W, n_in, 1, n_out, n_in, W + static_cast<int64_t>(n_out) * n_in, b.v(b.L.a(l)), z);
    for (int64_t i = 0; i < static_cast<int64_t>(n_out) * R; ++i) a[i] = activate<A>(z[i]);
    off += static_cast<int64_t>(n_out) * (n_in + 1);
  }
}

// sm_input_gradient: g (D rows) = dE/dx.
template <Activation A>
void input_gradient(const SmNet& net, const Block& b, float* g) {
  const int H = net.n_lin - 1;
  float* cur = b.v(b.L.tmp0);
  float* nxt = b.v(b.L.tmp1);
  int64_t w_off = sm_weight_offset(net, H);
  const float* w_out = net.params + w_off;
  for (int k = 0; k < net.widths[H]; ++k)
    for (int r = 0; r < R; ++r) cur[k * R + r] = w_out[k];
  for (int h = H; h >= 1; --h) {
    const int n_out = net.widths[h], n_in = net.widths[h - 1];
    w_off -= static_cast<int64_t>(n_out) * (n_in + 1);
    const float* z = b.v(b.L.z(h));
    for (int64_t i = 0; i < static_cast<int64_t>(n_out) * R; ++i)
      cur[i] *= activate_derivative<A>(z[i]);
    matmul(net.params + w_off, 1, n_in, n_in, n_out, nullptr, cur, nxt);
    std::swap(cur, nxt);
  }
  copy_rows(cur, b.L.D, g);
}

// The activation's derivatives at the R pre-activations z.
template <Activation A>
void jets_of(const float* z, float* d1, float* d2, float* d3) {
  for (int r = 0; r < R; ++r) {
    const ActivationJet j = activation_jet<A>(z[r]);
    d1[r] = j.d1;
    d2[r] = j.d2;
    d3[r] = j.d3;
  }
}

// sm_weighted_tangent for the R rows of unit j of z (n_out units): w = (M z')_t.
void weighted_tangent(const Block& b, const float* z, int n_out, int j, int t, float* w) {
  const SmLayout& L = b.L;
  auto zc = [&](int k) { return z + (static_cast<int64_t>(1 + k) * n_out + j) * R; };
  if (!L.dense) {
    std::copy(zc(t), zc(t) + R, w);
    return;
  }
  const float* m = b.v(L.m);
  std::fill(w, w + R, 0.0f);
  for (int k = 0; k < L.Q; ++k) {
    const float* mk = m + (static_cast<int64_t>(t) * L.D + k) * R;
    const float* zk = zc(k);
    for (int r = 0; r < R; ++r) w[r] = std::fma(mk[r], zk[r], w[r]);
  }
}

// sm_forward_tangents; the directions in L.u, the outputs in L.t and L.q.
template <Activation A>
void forward_tangents(const SmNet& net, const Block& b) {
  const SmLayout& L = b.L;
  const int C = L.C, T = L.T, S = L.S, D = L.D;
  float* a0 = b.v(L.a(0));
  copy_rows(b.v(L.u), static_cast<int64_t>(T) * D, a0 + static_cast<int64_t>(D) * R);
  std::fill(a0 + static_cast<int64_t>(1 + T) * D * R, a0 + static_cast<int64_t>(C) * D * R, 0.0f);
  float* d1 = b.jets();
  float* d2 = d1 + R;
  float* d3 = d2 + R;
  int64_t off = 0;
  for (int l = 0; l + 1 < net.n_lin; ++l) {
    const int n_in = net.widths[l], n_out = net.widths[l + 1];
    const int c_end = l == 0 ? 1 + T : C;  // the input's second-order channels are 0
    const float* W = net.params + off;
    const float* in = b.v(L.a(l));
    float* z = b.v(L.z(l + 1));
    float* a = b.v(L.a(l + 1));
    for (int c = 1; c < C; ++c) {
      float* zc = z + static_cast<int64_t>(c) * n_out * R;
      if (c < c_end)
        matmul(W, n_in, 1, n_out, n_in, nullptr, in + static_cast<int64_t>(c) * n_in * R, zc);
      else
        std::fill(zc, zc + static_cast<int64_t>(n_out) * R, 0.0f);
    }
    for (int j = 0; j < n_out; ++j) {
      jets_of<A>(z + static_cast<int64_t>(j) * R, d1, d2, d3);
      for (int t = 0; t < T; ++t) {
        const int64_t i = (static_cast<int64_t>(1 + t) * n_out + j) * R;
        for (int r = 0; r < R; ++r) a[i + r] = d1[r] * z[i + r];
      }
      if (S) {
        const int64_t i2 = (static_cast<int64_t>(1 + T) * n_out + j) * R;
        float src[R] = {}, w[R];
        for (int t = 0; t < L.Q; ++t) {
          weighted_tangent(b, z, n_out, j, t, w);
          const float* zt = z + (static_cast<int64_t>(1 + t) * n_out + j) * R;
          for (int r = 0; r < R; ++r) src[r] = std::fma(zt[r], w[r], src[r]);
        }
        for (int r = 0; r < R; ++r) a[i2 + r] = std::fma(d2[r], src[r], d1[r] * z[i2 + r]);
      }
    }
    off += static_cast<int64_t>(n_out) * (n_in + 1);
  }
  const int n_h = net.widths[net.n_lin - 1];
  const float* w = net.params + off;
  const float* a = b.v(L.a(net.n_lin - 1));
  float* t_out = b.v(L.t);
  for (int c = 1; c < C; ++c) {  // t then q: L.q follows L.t
    float acc[R] = {};
    for (int k = 0; k < n_h; ++k) {
      const float* ak = a + (static_cast<int64_t>(c) * n_h + k) * R;
      for (int r = 0; r < R; ++r) acc[r] = std::fma(w[k], ak[r], acc[r]);
    }
    std::copy(acc, acc + R, t_out + static_cast<int64_t>(c - 1) * R);
  }
}

// sm_reverse with alpha, beta in L.alpha, L.beta: writes Zbar_h.
template <Activation A>
void reverse(const SmNet& net, const Block& b) {
  const SmLayout& L = b.L;
  const int C = L.C, T = L.T, S = L.S, H = net.n_lin - 1;
  float* cur = b.v(L.tmp0);
  float* nxt = b.v(L.tmp1);
  const float* alpha = b.v(L.alpha);
  const float* beta = b.v(L.beta);
  float* d1 = b.jets();
  float* d2 = d1 + R;
  float* d3 = d2 + R;
  int64_t w_off = sm_weight_offset(net, H);
  const float* w_out = net.params + w_off;
  {
    const int n_h = net.widths[H];
    std::fill(cur, cur + static_cast<int64_t>(n_h) * R, 0.0f);
    for (int c = 1; c < C; ++c) {
      const float* coef = c <= T ? alpha + static_cast<int64_t>(c - 1) * R
                                 : beta + static_cast<int64_t>(c - 1 - T) * R;
      for (int k = 0; k < n_h; ++k) {
        float* dst = cur + (static_cast<int64_t>(c) * n_h + k) * R;
        for (int r = 0; r < R; ++r) dst[r] = w_out[k] * coef[r];
      }
    }
  }
  for (int h = H; h >= 1; --h) {
    const int n_out = net.widths[h], n_in = net.widths[h - 1];
    const float* z = b.v(L.z(h));
    float* zb = b.v(L.zbar(h));
    for (int j = 0; j < n_out; ++j) {
      jets_of<A>(z + static_cast<int64_t>(j) * R, d1, d2, d3);
      float z0[R];
      for (int r = 0; r < R; ++r) z0[r] = d1[r] * cur[static_cast<int64_t>(j) * R + r];
      for (int t = 0; t < T; ++t) {
        const int64_t i = (static_cast<int64_t>(1 + t) * n_out + j) * R;
        for (int r = 0; r < R; ++r) {
          zb[i + r] = d1[r] * cur[i + r];
          z0[r] = std::fma(d2[r] * z[i + r], cur[i + r], z0[r]);
        }
      }
      if (S) {
        const int64_t i2 = (static_cast<int64_t>(1 + T) * n_out + j) * R;
        float src[R] = {}, w[R];
        for (int r = 0; r < R; ++r) zb[i2 + r] = d1[r] * cur[i2 + r];
        for (int t = 0; t < L.Q; ++t) {
          const int64_t i1 = (static_cast<int64_t>(1 + t) * n_out + j) * R;
          weighted_tangent(b, z, n_out, j, t, w);
          for (int r = 0; r < R; ++r) {
            zb[i1 + r] = std::fma(2.0f * d2[r] * w[r], cur[i2 + r], zb[i1 + r]);
            src[r] = std::fma(z[i1 + r], w[r], src[r]);
          }
        }
        for (int r = 0; r < R; ++r)
          z0[r] = std::fma(std::fma(d3[r], src[r], d2[r] * z[i2 + r]), cur[i2 + r], z0[r]);
      }
      std::copy(z0, z0 + R, zb + static_cast<int64_t>(j) * R);
    }
    w_off -= static_cast<int64_t>(n_out) * (n_in + 1);
    if (h == 1) break;
    const float* W = net.params + w_off;
    for (int c = 0; c < C; ++c)
      matmul(W, 1, n_in, n_in, n_out, nullptr, zb + static_cast<int64_t>(c) * n_out * R,
             nxt + static_cast<int64_t>(c) * n_in * R);
    std::swap(cur, nxt);
  }
}

// g[j][k] += sum over rows r in [r0, r1), then channels c in [c0, c1), of
// coef[(c n_out + j) R + r] at[(r C + c) n_in + k], by fmaf in that order (the per-row code's
// order of one gradient entry), for the outputs [j0, j0 + JB) and inputs [k0, k0 + KB). init:
// start from 0 instead of g (the chunk's first rows: its partial is not cleared beforehand).
template <int JB, int KB>
inline void gradient_tile(const float* coef, int n_out, int j0, int n_in, int k0, int C, int c0,
                          int c1, const float* at, int r0, int r1, bool init, float* g) {
  float acc[JB][KB];
  for (int q = 0; q < JB; ++q)
    for (int i = 0; i < KB; ++i)
      acc[q][i] = init ? 0.0f : g[static_cast<int64_t>(j0 + q) * n_in + k0 + i];
  for (int r = r0; r < r1; ++r)
    for (int c = c0; c < c1; ++c) {
      const float* a = at + (static_cast<int64_t>(r) * C + c) * n_in + k0;
      for (int q = 0; q < JB; ++q) {
        const float f = coef[(static_cast<int64_t>(c) * n_out + j0 + q) * R + r];
        for (int i = 0; i < KB; ++i) acc[q][i] = std::fma(f, a[i], acc[q][i]);
      }
    }
  for (int q = 0; q < JB; ++q)
    for (int i = 0; i < KB; ++i) g[static_cast<int64_t>(j0 + q) * n_in + k0 + i] = acc[q][i];
}

template <int JB>
void gradient_rows(const float* coef, int n_out, int j0, int n_in, int C, int c0, int c1,
                   const float* at, int r0, int r1, bool init, float* g) {
  // Wide tiles: JB x KB / 16 independent accumulator vectors hide the FMA latency.
  int k = 0;
  for (; k + 64 <= n_in; k += 64)
    gradient_tile<JB, 64>(coef, n_out, j0, n_in, k, C, c0, c1, at, r0, r1, init, g);
  for (; k + 16 <= n_in; k += 16)
    gradient_tile<JB, 16>(coef, n_out, j0, n_in, k, C, c0, c1, at, r0, r1, init, g);
  for (; k < n_in; ++k)
    gradient_tile<JB, 1>(coef, n_out, j0, n_in, k, C, c0, c1, at, r0, r1, init, g);
}

void accumulate_gradient(const float* coef, int n_out, int n_in, int C, int c0, int c1,
                         const float* at, int r0, int r1, bool init, float* g) {
  int j = 0;
  if (n_in < 16)  // no whole vector of inputs (the first layer): eight scalar chains per input
    for (; j + 8 <= n_out; j += 8)
      gradient_rows<8>(coef, n_out, j, n_in, C, c0, c1, at, r0, r1, init, g);
  for (; j + 4 <= n_out; j += 4)
    gradient_rows<4>(coef, n_out, j, n_in, C, c0, c1, at, r0, r1, init, g);
  for (; j < n_out; ++j) gradient_rows<1>(coef, n_out, j, n_in, C, c0, c1, at, r0, r1, init, g);
}

// Channels [c0, c1) of layer input in (n units) for the rows [0, rows), to at[(r C + c) n + k].
void transpose_input(const float* in, int n, int C, int c0, int c1, int rows, float* at) {
  for (int r = 0; r < rows; ++r)
    for (int c = c0; c < c1; ++c) {
      const float* src = in + static_cast<int64_t>(c) * n * R + r;
      float* dst = at + (static_cast<int64_t>(r) * C + c) * n;
      for (int k = 0; k < n; ++k) dst[k] = src[static_cast<int64_t>(k) * R];
    }
}

// sm_add_parameter_gradient (scale 1) for the block's rows, each into its chunk's partials.
// first: the block's first gradient pass, which writes (not adds) the partial of a chunk that
// starts in this block.
void add_parameter_gradient(const SmNet& net, const Block& b, int64_t row0, int rows, bool first,
                            const SmBlockGradient& grad) {
  const SmLayout& L = b.L;
  const int C = L.C, T = L.T, H = net.n_lin - 1;
  float* at = b.at();
  // Segments of consecutive rows in one chunk.
  auto for_each_segment = [&](auto&& body) {
    for (int r0 = 0; r0 < rows;) {
      const int64_t chunk = (row0 + r0) / grad.rows_per_chunk;
      const int r1 =
          static_cast<int>(std::min<int64_t>(rows, (chunk + 1) * grad.rows_per_chunk - row0));
      body(r0, r1, first && row0 + r0 == chunk * grad.rows_per_chunk,
           grad.partials + chunk * grad.num_params);
      r0 = r1;
    }
  };
  int64_t off = 0;
  for (int l = 0; l < H; ++l) {
    const int n_in = net.widths[l], n_out = net.widths[l + 1];
    const int c_end = l == 0 ? 1 + T : C;
    const float* zb = b.v(L.zbar(l + 1));
    transpose_input(b.v(L.a(l)), n_in, C, 0, c_end, rows, at);
    for_each_segment([&](int r0, int r1, bool init, float* g) {
      accumulate_gradient(zb, n_out, n_in, C, 0, c_end, at, r0, r1, init, g + off);
      float* gb = g + off + static_cast<int64_t>(n_out) * n_in;
      for (int j = 0; j < n_out; ++j) {
        float sum = init ? 0.0f : gb[j];
        for (int r = r0; r < r1; ++r) sum += zb[static_cast<int64_t>(j) * R + r];
        gb[j] = sum;
      }
    });
    off += static_cast<int64_t>(n_out) * (n_in + 1);
  }
  // Output weight: coefficient of channel c is alpha[c - 1] (c <= T), then beta; L.beta
  // follows L.alpha, so coef[c R + r] with coef = alpha - R.
  const int n_h = net.widths[H];
  transpose_input(b.v(L.a(H)), n_h, C, 1, C, rows, at);
  const float* coef = b.v(L.alpha) - R;
  for_each_segment([&](int r0, int r1, bool init, float* g) {
    gradient_rows<1>(coef, 1, 0, n_h, C, 1, C, at, r0, r1, init, g + off);
    if (init) g[off + n_h] = 0.0f;  // the output bias never enters the losses
  });
}

// sm_add_directional_gradient: the direction in L.u, T = 1, S = 0.
template <Activation A>
void add_directional_gradient(const SmNet& net, const Block& b, int64_t row0, int rows, bool first,
                              const SmBlockGradient& grad) {
  forward_tangents<A>(net, b);
  std::fill(b.v(b.L.alpha), b.v(b.L.alpha) + R, 1.0f);
  reverse<A>(net, b);
  add_parameter_gradient(net, b, row0, rows, first, grad);
}

// The primal pass at the block's input (L.xb) and the D unit directions in L.u (T = D).
template <Activation A>
void primal_and_unit_directions(const SmNet& net, const Block& b) {
  const SmLayout& L = b.L;
  copy_rows(b.v(L.xb), L.D, b.v(L.a(0)));
  forward_primal<A>(net, b);
  float* u = b.v(L.u);
  for (int i = 0; i < L.T; ++i)
    for (int k = 0; k < L.D; ++k)
      std::fill(u + (static_cast<int64_t>(i) * L.D + k) * R,
                u + (static_cast<int64_t>(i) * L.D + k + 1) * R, i == k ? 1.0f : 0.0f);
}

// x's rows into xb ([D][R]); lanes past `rows` repeat the last row, so they hold finite values.
void load_rows(const float* x, int64_t row0, int rows, int D, float* xb) {
  for (int r = 0; r < R; ++r) {
    const float* src = x + (row0 + std::min(r, rows - 1)) * D;
    for (int k = 0; k < D; ++k) xb[k * R + r] = src[k];
  }
}

template <Activation A>
void block_loss(const SmNet& net, const SmLayout& L, const SmRowParams& p, const float* x,
                int64_t row0, int rows, float* work, float* row_loss, const SmBlockGradient& grad) {
  const Block b{L, work};
  const int D = L.D, T = L.T, S = L.S;
  const float lambda = p.lambda;
  float* xb = b.v(L.xb);
  float* a0 = b.v(L.a(0));
  float* g = b.v(L.g);
  float* u = b.v(L.u);
  const float* t = b.v(L.t);
  const float* q = b.v(L.q);
  float* alpha = b.v(L.alpha);
  float* beta = b.v(L.beta);
  float* aux = b.v(L.aux);
  const bool want_grad = grad.partials != nullptr;
  auto row_of = [&](int r) { return static_cast<uint64_t>(row0 + std::min(r, rows - 1)); };
  float loss[R];
  load_rows(x, row0, rows, D, xb);

  if (p.kind == ScoreLossKind::kScoreMatching) {  // exact (sm_block_supported)
    primal_and_unit_directions<A>(net, b);
    forward_tangents<A>(net, b);
    float sq[R] = {}, tr[R] = {};
    for (int k = 0; k < D; ++k)
      for (int r = 0; r < R; ++r) sq[r] = std::fma(t[k * R + r], t[k * R + r], sq[r]);
    if (S) std::copy(q, q + R, tr);
    if (want_grad) {
      for (int i = 0; i < T * R; ++i) alpha[i] = (1.0f + 2.0f * lambda) * t[i];
      std::fill(beta, beta + static_cast<int64_t>(S) * R, -1.0f);
      reverse<A>(net, b);
      add_parameter_gradient(net, b, row0, rows, true, grad);
    }
    for (int r = 0; r < R; ++r) loss[r] = (0.5f + lambda) * sq[r] - tr[r];
  } else if (p.kind == ScoreLossKind::kSlicedScoreMatching && L.dense) {
    // sm_row_loss's sliced loss by the unit directions.
    const int P = p.n_projections;
    const float inv_p = 1.0f / static_cast<float>(P);
    float* m = b.v(L.m);
    primal_and_unit_directions<A>(net, b);
    std::fill(m, m + static_cast<int64_t>(D) * D * R, 0.0f);
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < P; ++j) {
        sm_projection(p, D, row_of(r), j, SmBuf<SmStrided>{aux + r, {R}});
        for (int i = 0; i < D; ++i)
          for (int k = 0; k < D; ++k) {
            float& mik = m[(static_cast<int64_t>(i) * D + k) * R + r];
            mik = std::fma(aux[i * R + r], aux[k * R + r], mik);
          }
      }
    forward_tangents<A>(net, b);
    float sq[R] = {}, quad[R] = {};
    for (int i = 0; i < D; ++i) {
      float mg[R] = {};
      for (int k = 0; k < D; ++k)
        for (int r = 0; r < R; ++r)
          mg[r] = std::fma(m[(static_cast<int64_t>(i) * D + k) * R + r], t[k * R + r], mg[r]);
      for (int r = 0; r < R; ++r) {
        const float ti = t[i * R + r];
        alpha[i * R + r] = std::fma(mg[r], inv_p, 2.0f * lambda * ti);
        quad[r] = std::fma(ti, mg[r], quad[r]);
        sq[r] = std::fma(ti, ti, sq[r]);
      }
    }
    if (want_grad) {
      std::fill(beta, beta + static_cast<int64_t>(S) * R, -inv_p);
      reverse<A>(net, b);
      add_parameter_gradient(net, b, row0, rows, true, grad);
    }
    for (int r = 0; r < R; ++r)
      loss[r] = (0.5f * quad[r] - (S ? q[r] : 0.0f)) * inv_p + lambda * sq[r];
  } else if (p.kind == ScoreLossKind::kSlicedScoreMatching) {
    const int P = p.n_projections;
    copy_rows(xb, D, a0);
    forward_primal<A>(net, b);
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < P; ++j)
        sm_projection(p, D, row_of(r), j,
                      SmBuf<SmStrided>{u + static_cast<int64_t>(j) * D * R + r, {R}});
    float sq[R] = {};
    if (lambda > 0.0f) {
      input_gradient<A>(net, b, g);
      for (int k = 0; k < D; ++k)
        for (int r = 0; r < R; ++r) {
          u[(static_cast<int64_t>(P) * D + k) * R + r] = g[k * R + r];
          sq[r] = std::fma(g[k * R + r], g[k * R + r], sq[r]);
        }
    }
    forward_tangents<A>(net, b);
    const float inv_p = 1.0f / static_cast<float>(P);
    float sum[R] = {};
    for (int j = 0; j < P; ++j)
      for (int r = 0; r < R; ++r) sum[r] += 0.5f * t[j * R + r] * t[j * R + r];
    if (S)
      for (int r = 0; r < R; ++r) sum[r] -= q[r];
    if (want_grad) {
      for (int i = 0; i < P * R; ++i) alpha[i] = t[i] * inv_p;
      if (T > P) std::fill(alpha + P * R, alpha + (P + 1) * R, 2.0f * lambda);
      std::fill(beta, beta + static_cast<int64_t>(S) * R, -inv_p);
      reverse<A>(net, b);
      add_parameter_gradient(net, b, row0, rows, true, grad);
    }
    for (int r = 0; r < R; ++r) loss[r] = sum[r] * inv_p + lambda * sq[r];
  } else {  // denoising
    const float sigma = p.noise_scale, inv_var = 1.0f / (sigma * sigma);
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < D; ++k) {
        aux[k * R + r] = sigma * sm_normal(p.key, row_of(r), p.iteration, D, k);
        xb[k * R + r] += aux[k * R + r];
      }
    copy_rows(xb, D, a0);
    forward_primal<A>(net, b);
    input_gradient<A>(net, b, g);
    for (int r = 0; r < R; ++r) loss[r] = 0.0f;
    for (int k = 0; k < D; ++k)
      for (int r = 0; r < R; ++r) {
        const float res = std::fma(p.target_sign * aux[k * R + r], inv_var, g[k * R + r]);
        u[k * R + r] = res;  // d loss / d g
        loss[r] = std::fma(res, res, loss[r]);
      }
    for (int r = 0; r < R; ++r) loss[r] *= 0.5f;
    if (want_grad) add_directional_gradient<A>(net, b, row0, rows, true, grad);
    if (lambda > 0.0f) {
      load_rows(x, row0, rows, D, xb);
      copy_rows(xb, D, a0);
      forward_primal<A>(net, b);
      input_gradient<A>(net, b, g);
      float sq[R] = {};
      for (int k = 0; k < D; ++k)
        for (int r = 0; r < R; ++r) {
          sq[r] = std::fma(g[k * R + r], g[k * R + r], sq[r]);
          u[k * R + r] = 2.0f * lambda * g[k * R + r];
        }
      for (int r = 0; r < R; ++r) loss[r] += lambda * sq[r];
      if (want_grad) add_directional_gradient<A>(net, b, row0, rows, false, grad);
    }
  }
  std::copy(loss, loss + rows, row_loss);
}

}  // namespace

bool sm_block_supported(const SmRowParams& p) {
  return !(p.kind == ScoreLossKind::kScoreMatching &&
           p.hessian_method == HessianMethod::kTorchEbmApprox);
}

std::size_t sm_block_floats(const SmLayout& L) {
  return static_cast<std::size_t>((L.total + L.max_width * L.C + 3) * R);
}

void sm_block_loss(Activation activation, const SmNet& net, const SmLayout& L, const SmRowParams& p,
                   const float* x, int64_t row0, int rows, float* work, float* row_loss,
                   const SmBlockGradient& grad) {
  dispatch_activation(activation, [&]<Activation A>() {
    block_loss<A>(net, L, p, x, row0, rows, work, row_loss, grad);
  });
}

}  // namespace cuebm::detail
