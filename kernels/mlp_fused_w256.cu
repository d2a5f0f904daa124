// Fused MLP kernels (energy, gradient, Langevin chain, team chain) for hidden width 256, every
// activation: one translation unit per width so that the widths compile in parallel.
#include "fused_team.cuh"

namespace cuebm::detail {
#define CUEBM_NO_EXTERN
CUEBM_FUSED_WIDTH_INSTANCES(CUEBM_NO_EXTERN, 256)
}  // namespace cuebm::detail
