// The general MLP on the device: any widths, runtime loops, per-row storage in global memory.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuebm/models/activation.hpp"
#include "kernels/models/activation.cuh"

namespace cuebm::detail {

// General MLP: any widths; per-row storage in global memory in column layout (unit k of row r
// at col[k * ld + r]), which is also the column-major matrix layout the CD trainer's cuBLAS
// weight-gradient GEMMs read.
struct GenericNet {
  const float* params;  // flat, PyTorch order
  const int64_t* meta;  // see GenericMeta
  int n_lin;            // linear layers (hidden layers + 1)
};

// meta = [widths (n_lin + 1)] [w_off (n_lin)] [b_off (n_lin)] [d_col (n_lin - 1)]
//        [h_col (n_lin - 1)]; d_col/h_col: first column of hidden layer h's derivative/delta and
// activation blocks; columns [0, D) hold x.
struct GenericMetaView {
  const int64_t* m;
  int n_lin;
  __device__ __host__ int width(int l) const { return static_cast<int>(m[l]); }
  __device__ __host__ int64_t w_off(int l) const { return m[n_lin + 1 + l]; }
  __device__ __host__ int64_t b_off(int l) const { return m[2 * n_lin + 1 + l]; }
  __device__ __host__ int64_t d_col(int h) const { return m[3 * n_lin + 1 + h]; }
  __device__ __host__ int64_t h_col(int h) const { return m[3 * n_lin + 1 + (n_lin - 1) + h]; }
};

template <Activation A>
struct GenericModel {
  GenericNet net;
  float* col;  // this row's column base (scratch + local row)
  int64_t ld;
  int dim;

  __device__ float& x(int i) { return col[i * ld]; }

  __device__ float forward() {
    const GenericMetaView mv{net.meta, net.n_lin};
    const int n_lin = net.n_lin;
    const float* wout = net.params + mv.w_off(n_lin - 1);
    float e = net.params[mv.b_off(n_lin - 1)];
    for (int l = 0; l + 1 < n_lin; ++l) {
      const int n_in = mv.width(l), n_out = mv.width(l + 1);
      const float* in = l == 0 ? col : col + mv.h_col(l - 1) * ld;
      const float* w = net.params + mv.w_off(l);
      const float* b = net.params + mv.b_off(l);
      float* d = col + mv.d_col(l) * ld;
      float* h = col + mv.h_col(l) * ld;
      const bool last = l + 2 == n_lin;
      for (int j = 0; j < n_out; ++j) {
        float z = b[j];
        const float* wr = w + static_cast<int64_t>(j) * n_in;
        for (int k = 0; k < n_in; ++k) z = fmaf(wr[k], in[k * ld], z);
        const float a = activate<A>(z), dz = activate_derivative<A>(z);
        h[j * ld] = a;  // kept for every hidden layer: the CD weight gradients read it
        if (last) {
          e = fmaf(wout[j], a, e);
          d[j * ld] = wout[j] * dz;
        } else {
          d[j * ld] = dz;
        }
      }
    }
    return e;
  }

  // Multiplies the last hidden layer's delta by s (the CD coefficient).
  __device__ void scale_output_delta(float s) {
    const GenericMetaView mv{net.meta, net.n_lin};
    const int h = net.n_lin - 2;
    float* d = col + mv.d_col(h) * ld;
    for (int j = 0; j < mv.width(h + 1); ++j) d[j * ld] *= s;
  }

  __device__ void backward_hidden() {
    const GenericMetaView mv{net.meta, net.n_lin};
    for (int l = net.n_lin - 2; l >= 1; --l) {  // linear layer l: hidden l-1 -> hidden l
      const int n_in = mv.width(l), n_out = mv.width(l + 1);
      const float* w = net.params + mv.w_off(l);
      const float* din = col + mv.d_col(l) * ld;
      float* dout = col + mv.d_col(l - 1) * ld;
      for (int k = 0; k < n_in; ++k) {
        float s = 0.0f;
        for (int j = 0; j < n_out; ++j)
          s = fmaf(w[static_cast<int64_t>(j) * n_in + k], din[j * ld], s);
        dout[k * ld] = s * dout[k * ld];
      }
    }
  }

  template <class F>
  __device__ void backward(F&& f) {
    backward_hidden();
    const GenericMetaView mv{net.meta, net.n_lin};
    const int n_out = mv.width(1);
    const float* w0 = net.params + mv.w_off(0);
    const float* d0 = col + mv.d_col(0) * ld;
    const int q_blocks = (dim + 3) / 4;
    for (int q = 0; q < q_blocks; ++q) {
      float g[4];
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int i = 4 * q + c;
        float s = 0.0f;
        if (i < dim)
          for (int j = 0; j < n_out; ++j)
            s = fmaf(w0[static_cast<int64_t>(j) * dim + i], d0[j * ld], s);
        g[c] = s;
      }
      f(q, make_float4(g[0], g[1], g[2], g[3]));
    }
  }
};

}  // namespace cuebm::detail
