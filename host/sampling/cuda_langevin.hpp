// Langevin chains on the CUDA backend (kernels/sampling/), its Philox test hooks and knobs.
// Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
#pragma once

#include <cstdint>

#include "cuebm/models/energy.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/sampling/langevin.hpp"

namespace cuebm::detail {

// Langevin sampling on `device` (options validated by the caller). noise_or_null: when not
// null, eps of (step t, chain row, coordinate d) is noise[(t * n + row) * dim + d] instead of
// Philox (options.noise is ignored then; the caller passes options.noise here).
LangevinResult langevin_sample_cuda(const Energy& energy, const float* x0, int64_t n,
                                    const LangevinOptions& options, int device,
                                    const float* noise_or_null);

// ---- Test knobs (tests/test_cuda.cpp) ----
// Threads per chain of the fused team chain kernel (kernels/sampling/fused_team.cuh): 0 automatic
// (plan_team_launch), -1 never, 2..32 that many when valid for the width. Results must not
// depend on it.
void set_cuda_chain_team_for_testing(int lanes);
// Threads per chain of a Langevin run of n chains without diagnostics or trajectory (the CD
// iteration's): 1 on the one-thread and general paths, else the team plan's lanes.
int cuda_chain_lanes(const Mlp& mlp, int64_t n, int device);
// Philox blocks computed on the device: out[4 i .. 4 i + 3] = philox_block(seed,
// subsequence[i], block[i]) and normals[4 i ..] = normal4_from_block of it.
void philox_blocks_cuda(uint64_t seed, const uint64_t* subsequence, const uint64_t* block,
                        int64_t n, uint32_t* out_bits, float* out_normals, int device);
// The same blocks through cuRAND's device API (curand_init(seed, subsequence, 4 * block) then
// curand4 and, from a second identical state, curand_normal4).
void curand_blocks_cuda(uint64_t seed, const uint64_t* subsequence, const uint64_t* block,
                        int64_t n, uint32_t* out_bits, float* out_normals, int device);
// Device models langevin_sample_cuda has uploaded so far (cumulative): a call with an energy
// whose content is unchanged since its last call on that device reuses the upload.
int64_t langevin_model_uploads_for_testing();

}  // namespace cuebm::detail
