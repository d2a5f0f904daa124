// Fused MLP kernels for hidden width 256, every activation: energy and gradient
// (kernels/models/device_model.cuh), Langevin chain and team chain (fused_chain.cuh,
// fused_team.cuh). One translation unit per width so that the widths compile in parallel.
#include "kernels/sampling/fused_team.cuh"

namespace cuebm::detail {
#define CUEBM_NO_EXTERN
CUEBM_FUSED_EVAL_INSTANCES(CUEBM_NO_EXTERN, 256)
CUEBM_FUSED_CHAIN_INSTANCES(CUEBM_NO_EXTERN, 256)
}  // namespace cuebm::detail
