// The fused MLP on the device: hidden layers of one width W known at compile time, one row per
// thread, with the per-row interface of kernels/models/device_model.cuh.
//
// Fused MLP design (one chain = one row = one thread):
//  - weights in shared memory, copied once per block (one __syncthreads), each layer stored in
//    both orientations so that the 16 or 32 outputs a thread accumulates at once are
//    contiguous: one broadcast float4 load feeds 4 FMAs, and one load of the input activation
//    feeds C FMAs. Or the weights are read from global memory (uniform addresses, through L1)
//    through the same generic pointer: the launch planner (host/models/launch_plan.hpp) picks the
//    placement and the block size (32..256 threads) that keep the most warps resident; the
//    results do not depend on either.
//  - per-row storage (input x, the activation derivatives of every hidden layer, one or two
//    activation buffers) lives in shared memory in column layout: value k of thread t at
//    [k * T + t], so a warp's accesses hit 32 distinct banks. Threads never read each other's
//    columns: after the weight load there is no further block synchronisation.
//  - the math is activate<A> / activate_derivative<A> from activation.cuh, accumulated in the
//    CPU backend's order (bias first, then inputs in increasing index).
#pragma once

#include <cuda_runtime.h>

#include "cuebm/models/activation.hpp"
#include "host/models/launch_plan.hpp"
#include "kernels/models/activation.cuh"

namespace cuebm::detail {

// The one runtime-to-template switch over hidden widths (flash-attention's static switch).
// Returns false when `width` has no fused kernel.
template <class F>
bool dispatch_width(int width, F&& f) {
  switch (width) {
    case 16:
      f.template operator()<16>();
      return true;
    case 32:
      f.template operator()<32>();
      return true;
    case 64:
      f.template operator()<64>();
      return true;
    case 128:
      f.template operator()<128>();
      return true;
    case 256:
      f.template operator()<256>();
      return true;
    default:
      return false;
  }
}

// (width, activation) -> f.template operator()<W, A>(); false when the width is not fused.
template <class F>
bool dispatch_fused(int width, Activation act, F&& f) {
  return dispatch_width(width, [&]<int W>() {
    dispatch_activation(act, [&]<Activation A>() { f.template operator()<W, A>(); });
  });
}

// Outputs a thread accumulates at once in the fused kernels.
template <int W>
inline constexpr int kFusedChunk = fused_chunk(W);
inline constexpr int kMaxFusedDim = 128;
// kMaxRowBlock, FusedLayout and make_fused_layout: host/models/launch_plan.hpp.

// Builds the packed layout from the flat PyTorch-ordered parameters (both on the device).
void launch_pack_fused(const FusedLayout& lay, const float* flat, float* packed,
                       cudaStream_t stream);

// Copies the packed weights into shared memory when they fit there, then synchronises the
// block once; returns where the kernel reads the weights from.
__device__ inline const float* load_weights(const float* packed, int total, bool in_smem,
                                            float* smem) {
  if (in_smem) {
    // Eight loads in flight per thread before their stores: a one-warp block copies tens of KB,
    // and one load-store round trip to L2 at a time would cost more than its chains' arithmetic.
    constexpr int kInFlight = 8;
    const float4* src = reinterpret_cast<const float4*>(packed);
    float4* dst = reinterpret_cast<float4*>(smem);
    const int n4 = total / 4, T = static_cast<int>(blockDim.x);
    int i = threadIdx.x;
    for (; i + (kInFlight - 1) * T < n4; i += kInFlight * T) {
      float4 v[kInFlight];
#pragma unroll
      for (int b = 0; b < kInFlight; ++b) v[b] = src[i + b * T];
#pragma unroll
      for (int b = 0; b < kInFlight; ++b) dst[i + b * T] = v[b];
    }
    for (; i < n4; i += T) dst[i] = src[i];
  }
  __syncthreads();
  return in_smem ? smem : packed;
}

// ---------------------------------------------------------------------------------------------
// acc[0..C) += s * row[0..C), the row read as float4 (16-byte aligned): the inner step of every
// fused layer, forward and backward.
template <int C>
__device__ __forceinline__ void accumulate_row(float (&acc)[C], const float* row, float s) {
  const float4* r4 = reinterpret_cast<const float4*>(row);
#pragma unroll
  for (int c = 0; c < C / 4; ++c) {
    const float4 v = r4[c];
    acc[4 * c] = fmaf(v.x, s, acc[4 * c]);
    acc[4 * c + 1] = fmaf(v.y, s, acc[4 * c + 1]);
    acc[4 * c + 2] = fmaf(v.z, s, acc[4 * c + 2]);
    acc[4 * c + 3] = fmaf(v.w, s, acc[4 * c + 3]);
  }
}

template <int W, Activation A>
struct FusedModel {
  static constexpr int C = kFusedChunk<W>;
  static_assert(W % C == 0 && C % 4 == 0, "chunk must divide the width");
  const float* wts;  // packed weights (shared or global memory)
  FusedLayout lay;
  float* xs;  // column bases of this thread: element k at [k * T]
  float* ds;
  float* hs;
  int T;

  __device__ float& x(int i) { return xs[i * T]; }

  __device__ float forward() {
    const int L = lay.hidden_layers;
    float e = wts[lay.bout];
#pragma unroll 1
    for (int l = 0; l < L; ++l) {
      const bool first = l == 0, last = l == L - 1;
      const float* in = first ? xs : hs + ((l - 1) & 1) * W * T;
      const int n_in = first ? lay.dim : W;
      const float* wt = first ? wts + lay.w0t : wts + lay.hid + (l - 1) * lay.hid_stride;
      const float* b = first ? wts + lay.b0 : wt + 2 * W * W;
      float* dcol = ds + l * W * T;
      float* out = hs + (l & 1) * W * T;
#pragma unroll 1
      for (int j0 = 0; j0 < W; j0 += C) {
        float acc[C];
#pragma unroll
        for (int c = 0; c < C; c += 4) {
          const float4 v = *reinterpret_cast<const float4*>(b + j0 + c);
          acc[c] = v.x;
          acc[c + 1] = v.y;
          acc[c + 2] = v.z;
          acc[c + 3] = v.w;
        }
#pragma unroll 2
        for (int k = 0; k < n_in; ++k) {
          const float a = in[k * T];
          accumulate_row(acc, wt + k * W + j0, a);
        }
#pragma unroll
        for (int c = 0; c < C; ++c) {
          const float z = acc[c];
          const float dz = activate_derivative<A>(z);
          if (last) {
            // The output layer folds in: E = bout + sum_j wout_j act(z_j) (j increasing), and
            // the last hidden layer's delta dE/dz_j = wout_j act'(z_j).
            const float wo = wts[lay.wout + j0 + c];
            e = fmaf(wo, activate<A>(z), e);
            dcol[(j0 + c) * T] = wo * dz;
          } else {
            out[(j0 + c) * T] = activate<A>(z);
            dcol[(j0 + c) * T] = dz;
          }
        }
      }
    }
    return e;
  }

  // Back-propagates through the hidden layers: afterwards slot 0 of ds holds dE/dz_1.
  __device__ void backward_hidden() {
#pragma unroll 1
    for (int l = lay.hidden_layers - 1; l >= 1; --l) {
      const float* w = wts + lay.hid + (l - 1) * lay.hid_stride + W * W;  // [j][k]
      const float* din = ds + l * W * T;
      float* dout = ds + (l - 1) * W * T;
#pragma unroll 1
      for (int k0 = 0; k0 < W; k0 += C) {
        float acc[C];
#pragma unroll
        for (int c = 0; c < C; ++c) acc[c] = 0.0f;
#pragma unroll 2
        for (int j = 0; j < W; ++j) {
          const float dj = din[j * T];
          accumulate_row(acc, w + j * W + k0, dj);
        }
#pragma unroll
        for (int c = 0; c < C; ++c) dout[(k0 + c) * T] = acc[c] * dout[(k0 + c) * T];
      }
    }
  }

  template <class F>
  __device__ void backward(F&& f) {
    backward_hidden();
    const float* w0 = wts + lay.w0;
#pragma unroll 1
    for (int i0 = 0; i0 < lay.dim_pad; i0 += C) {
      float acc[C];
#pragma unroll
      for (int c = 0; c < C; ++c) acc[c] = 0.0f;
#pragma unroll 2
      for (int j = 0; j < W; ++j) {
        const float dj = ds[j * T];
        accumulate_row(acc, w0 + j * lay.dim_pad + i0, dj);
      }
#pragma unroll
      for (int q = 0; q < C / 4; ++q)
        if (i0 + 4 * q < lay.dim)
          f((i0 >> 2) + q, make_float4(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3]));
    }
  }
};

}  // namespace cuebm::detail
