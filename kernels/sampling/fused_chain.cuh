// The fused MLP's chain kernels: one chain per thread (fused_chain_kernel) and team chains
// (kernels/sampling/fused_team.cuh). Instantiated per width in kernels/sampling/mlp_fused_w*.cu
// (compiled in parallel) with the fused energy kernels; everything else reaches them through
// launch_fused_chain<W> / launch_fused_team_chain<W>, selected by dispatch_width.
#pragma once

#include <cuda_runtime.h>

#include "host/models/launch_plan.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/chains.cuh"

namespace cuebm::detail {

// The team plan for n chains on the current device (lanes == 0: none). Honours
// set_cuda_chain_team_for_testing.
TeamLaunch plan_team_launch(const FusedLayout& lay, int64_t n);

template <int W, Activation A>
__global__ void __launch_bounds__(kMaxRowBlock, 1)
    fused_chain_kernel(ChainArgs a, FusedLayout lay, const float* __restrict__ packed,
                       bool in_smem) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const float* wts = load_weights(packed, lay.total, in_smem, smem);
  const int T = blockDim.x, D = lay.dim;
  const int64_t row = blockIdx.x * static_cast<int64_t>(T) + threadIdx.x;
  if ((row & ~int64_t{31}) >= a.n_total) return;  // whole warps only: no sync follows
  const bool valid = row < a.n_total;
  float* col = smem + (in_smem ? lay.total : 0) + threadIdx.x;
  FusedModel<W, A> m{wts, lay, col, col + D * T, col + (D + lay.hidden_layers * W) * T, T};
  for (int i = 0; i < D; ++i) m.x(i) = valid ? a.x[row * D + i] : 0.0f;
  run_chain(m, a, row, valid);
}

template <int W>
void launch_fused_chain(Activation act, const FusedLaunch& fl, unsigned blocks, const ChainArgs& a,
                        const FusedLayout& lay, const float* packed, cudaStream_t stream) {
  dispatch_activation(act, [&]<Activation A>() {
    allow_opt_in_shared_memory(fused_chain_kernel<W, A>);
    fused_chain_kernel<W, A>
        <<<blocks, fl.threads, fl.smem_bytes, stream>>>(a, lay, packed, fl.weights_in_smem);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
}

// Team chains (kernels/sampling/fused_team.cuh): defined there, instantiated with the others
// per width.
template <int W>
void launch_fused_team_chain(Activation act, const TeamLaunch& tl, const ChainArgs& a,
                             const FusedLayout& lay, const float* packed, cudaStream_t stream);

#define CUEBM_FUSED_CHAIN_INSTANCES(EXTERN, W)                                                     \
  EXTERN template void launch_fused_chain<W>(Activation, const FusedLaunch&, unsigned,             \
                                             const ChainArgs&, const FusedLayout&, const float*,   \
                                             cudaStream_t);                                        \
  EXTERN template void launch_fused_team_chain<W>(Activation, const TeamLaunch&, const ChainArgs&, \
                                                  const FusedLayout&, const float*, cudaStream_t);
#define CUEBM_EXTERN extern
CUEBM_FUSED_CHAIN_INSTANCES(CUEBM_EXTERN, 16)
CUEBM_FUSED_CHAIN_INSTANCES(CUEBM_EXTERN, 32)
CUEBM_FUSED_CHAIN_INSTANCES(CUEBM_EXTERN, 64)
CUEBM_FUSED_CHAIN_INSTANCES(CUEBM_EXTERN, 128)
CUEBM_FUSED_CHAIN_INSTANCES(CUEBM_EXTERN, 256)
#undef CUEBM_EXTERN

}  // namespace cuebm::detail
