// Team chains of the fused MLP: `lanes` threads of a one-warp block share one Langevin chain, for
// batches too small to give every SM a warp with one chain per thread (the planning rule:
// plan_team_launch in host/models/launch_plan.hpp).
//
// Lane l computes the hidden units j of chunks m = l, l + lanes, ... (4 units per chunk) and the
// input gradient of coordinate blocks q = l, l + lanes, ...; every unit is accumulated exactly
// as FusedModel does (bias first, then inputs in increasing index, one fmaf per term), so a
// team chain is bit-identical to fused_chain_kernel's. The energy itself is not formed (the
// chain needs only its gradient). The lanes exchange activations and
// deltas through shared memory (value k of row r at [k * R + r], R rows per block); with one
// warp per block, __syncthreads orders them. No diagnostics or trajectory: launch_chains takes
// the one-thread kernel for those.
#pragma once

#include "kernels/sampling/fused_chain.cuh"

namespace cuebm::detail {

template <int W, Activation A>
struct FusedTeamModel {
  static constexpr int kChunk = 4;
  const float* wts;
  FusedLayout lay;
  float* xs;  // column bases of this row: element k at [k * R]
  float* ds;  // activation derivatives / deltas, one slot of W per hidden layer
  float* hs;  // one or two activation buffers between hidden layers
  int R;
  int lane, lanes;

  __device__ float& x(int i) { return xs[i * R]; }

  __device__ void forward() {
    const int L = lay.hidden_layers;
#pragma unroll 1
    for (int l = 0; l < L; ++l) {
      const bool first = l == 0, is_last = l == L - 1;
      const float* in = first ? xs : hs + ((l - 1) & 1) * W * R;
      const int n_in = first ? lay.dim : W;
      const float* wt = first ? wts + lay.w0t : wts + lay.hid + (l - 1) * lay.hid_stride;
      const float* b = first ? wts + lay.b0 : wt + 2 * W * W;
      float* dcol = ds + l * W * R;
      float* out = hs + (l & 1) * W * R;  // unused by the last layer
#pragma unroll 1
      for (int j0 = kChunk * lane; j0 < W; j0 += kChunk * lanes) {
        const float4 bias = *reinterpret_cast<const float4*>(b + j0);
        float acc[kChunk] = {bias.x, bias.y, bias.z, bias.w};
#pragma unroll 4
        for (int k = 0; k < n_in; ++k) accumulate_row(acc, wt + k * W + j0, in[k * R]);
#pragma unroll
        for (int c = 0; c < kChunk; ++c) {
          const float z = acc[c];
          const float dz = activate_derivative<A>(z);
          if (is_last) {
            dcol[(j0 + c) * R] = wts[lay.wout + j0 + c] * dz;
          } else {
            out[(j0 + c) * R] = activate<A>(z);
            dcol[(j0 + c) * R] = dz;
          }
        }
      }
      __syncthreads();
    }
  }

  // Afterwards slot 0 of ds holds dE/dz_1; every lane's writes are visible to the others.
  __device__ void backward_hidden() {
#pragma unroll 1
    for (int l = lay.hidden_layers - 1; l >= 1; --l) {
      const float* w = wts + lay.hid + (l - 1) * lay.hid_stride + W * W;  // [j][k]
      const float* din = ds + l * W * R;
      float* dout = ds + (l - 1) * W * R;
#pragma unroll 1
      for (int k0 = kChunk * lane; k0 < W; k0 += kChunk * lanes) {
        float acc[kChunk] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 4
        for (int j = 0; j < W; ++j) accumulate_row(acc, w + j * W + k0, din[j * R]);
#pragma unroll
        for (int c = 0; c < kChunk; ++c) dout[(k0 + c) * R] = acc[c] * dout[(k0 + c) * R];
      }
      __syncthreads();
    }
  }

  template <class F>
  __device__ void backward(F&& f) {
    backward_hidden();
    const float* w0 = wts + lay.w0;
#pragma unroll 1
    for (int i0 = kChunk * lane; i0 < lay.dim; i0 += kChunk * lanes) {
      float acc[kChunk] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 4
      for (int j = 0; j < W; ++j) accumulate_row(acc, w0 + j * lay.dim_pad + i0, ds[j * R]);
      f(i0 >> 2, make_float4(acc[0], acc[1], acc[2], acc[3]));
    }
  }
};

// One block = one warp = 32 / lanes chains. Every thread reaches every barrier: rows past the
// end run on zeros and write nothing.
template <int W, Activation A>
__global__ void __launch_bounds__(kTeamBlock)
    fused_team_chain_kernel(ChainArgs a, FusedLayout lay, const float* __restrict__ packed,
                            bool in_smem, int lanes) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const float* wts = load_weights(packed, lay.total, in_smem, smem);
  const int R = kTeamBlock / lanes, r = threadIdx.x / lanes, lane = threadIdx.x % lanes;
  const int D = lay.dim;
  const int64_t row = blockIdx.x * static_cast<int64_t>(R) + r;
  const bool valid = row < a.n_total;
  float* col = smem + (in_smem ? lay.total : 0) + r;
  const int64_t ds_at = D, hs_at = D + lay.hidden_layers * W;
  FusedTeamModel<W, A> m{wts, lay, col, col + ds_at * R, col + hs_at * R, R, lane, lanes};
  for (int i = lane; i < D; i += lanes) m.x(i) = valid ? a.x[row * D + i] : 0.0f;
  __syncthreads();
  for (int t = 0; t < a.n_steps; ++t) {
    m.forward();
    const float eta = a.eta[t], coef = a.noise_coef[t];
    m.backward(
        [&](int q, float4 g) { langevin_update_quad(m, a, row, valid, t, eta, coef, q, g); });
    __syncthreads();
  }
  if (valid)
    for (int i = lane; i < D; i += lanes) a.x[row * D + i] = m.x(i);
}

template <int W>
void launch_fused_team_chain(Activation act, const TeamLaunch& tl, const ChainArgs& a,
                             const FusedLayout& lay, const float* packed, cudaStream_t stream) {
  dispatch_activation(act, [&]<Activation A>() {
    allow_opt_in_shared_memory(fused_team_chain_kernel<W, A>);
    fused_team_chain_kernel<W, A>
        <<<static_cast<unsigned>(tl.blocks), kTeamBlock, tl.smem_bytes, stream>>>(
            a, lay, packed, tl.weights_in_smem, tl.lanes);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuebm::detail
