// Launch planning for the fused MLP kernels (kernels/models/device_model.cuh): which block size,
// and whether the packed weights go to shared memory, as a pure function of the layout, the batch
// and the device's limits. Plain C++ (no CUDA header), so that it is compiled and unit-tested
// in every build (tests/test_launch_plan.cpp); kernels/models/mlp_kernels.cu reads the limits of
// the current device and calls it.
//
// The rule (plan_fused_launch):
//  - candidates: threads per block T in {32, 64, 128, 256} (whole warps: the chain kernel's
//    diagnostics shuffle over all 32 lanes), weights in shared memory or read from global
//    memory through L1; the per-row storage is always in shared memory, T * per_row floats.
//  - a candidate is feasible when its dynamic shared memory fits the opt-in limit per block and
//    at least one block is resident per SM.
//  - resident blocks per SM B = min(threads, blocks, shared memory, registers per SM limits), as
//    CUDA's occupancy calculator (cuda_occupancy.h) computes them: shared memory per block is
//    the dynamic bytes plus the driver's reservation, rounded up to 128 bytes; registers are
//    allocated per warp (regs x 32 rounded up to 256) in each of the 4 sub-partitions.
//  - ranking: first the warps with work resident on the whole device in the first wave,
//    min(ceil(n / 32), B x T / 32 x SMs) (a plan that leaves SMs idle loses to one with smaller
//    blocks that covers more SMs); then the SMs that get work, min(ceil(n / T), SMs) (the same
//    warps spread over more SMs run faster: one warp per SM sub-partition); then weights in
//    shared memory; then larger blocks (fewer copies of the weights into shared memory).
//  - the results do not depend on the plan: the fused kernels have no cross-thread arithmetic
//    (the diagnostics reduce fixed groups of 32 rows).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cuebm::detail {

// Threads per block of the row kernels never exceed this (their __launch_bounds__).
inline constexpr int kMaxRowBlock = 256;

// Outputs a thread accumulates at once in the fused kernels (kFusedChunk<W> there).
constexpr int fused_chunk(int width) { return width >= 32 ? 32 : 16; }

// Offsets (in floats, all multiples of 4) of the packed fused weights, and the per-row storage.
struct FusedLayout {
  int width = 0;          // W
  int dim = 0;            // D
  int dim_pad = 0;        // D rounded up to the chunk
  int hidden_layers = 0;  // L >= 1
  int w0t = 0;            // D x W: w0t[k * W + j] = W0[j][k]
  int w0 = 0;             // W x dim_pad: w0[j * dim_pad + i] = W0[j][i] (0 for i >= D)
  int b0 = 0;             // W
  int hid = 0;            // hidden-hidden layer l (1..L-1) at hid + (l-1) * hid_stride:
  int hid_stride = 0;     //   transposed W x W, then as stored W x W, then bias W
  int wout = 0;           // W
  int bout = 0;           // 1 (+3 padding)
  int total = 0;
  int per_row = 0;  // floats of per-row storage: D + L W + (0, 1 or 2) W
};

inline FusedLayout make_fused_layout(int width, int dim, int hidden_layers, int chunk) {
  FusedLayout l;
  l.width = width;
  l.dim = dim;
  l.dim_pad = (dim + chunk - 1) / chunk * chunk;
  l.hidden_layers = hidden_layers;
  int o = 0;
  l.w0t = o;
  o += dim * width;
  o = (o + 3) / 4 * 4;
  l.w0 = o;
  o += width * l.dim_pad;
  l.b0 = o;
  o += width;
  l.hid = o;
  l.hid_stride = 2 * width * width + width;
  o += (hidden_layers - 1) * l.hid_stride;
  l.wout = o;
  o += width;
  l.bout = o;
  o += 4;
  l.total = o;
  const int act_buffers = hidden_layers == 1 ? 0 : (hidden_layers == 2 ? 1 : 2);
  l.per_row = dim + hidden_layers * width + act_buffers * width;
  return l;
}

// What limits residency on a device (cudaDeviceGetAttribute / cudaDeviceProp names).
struct LaunchLimits {
  int sm_count = 0;                         // cudaDevAttrMultiProcessorCount
  int max_threads_per_sm = 0;               // cudaDevAttrMaxThreadsPerMultiProcessor
  int max_blocks_per_sm = 0;                // cudaDevAttrMaxBlocksPerMultiprocessor
  int regs_per_sm = 0;                      // cudaDevAttrMaxRegistersPerMultiprocessor
  std::size_t smem_per_sm = 0;              // cudaDevAttrMaxSharedMemoryPerMultiprocessor
  std::size_t smem_optin_per_block = 0;     // cudaDevAttrMaxSharedMemoryPerBlockOptin
  std::size_t smem_reserved_per_block = 0;  // cudaDeviceProp::reservedSharedMemPerBlock
  int arch = 0;                             // 10 x major + minor: selects the ptxas register counts
};

// The two fused kernels (registers differ: the chain kernel keeps the chain loop's state).
enum class FusedKernel { kEval, kChain };

// Registers per thread of the fused kernel of hidden width `width` on compute capability
// `arch`, the largest over the activations, from tools/ptxas-report.sh (see the table in
// host/models/launch_plan.cpp). Unknown widths get 255 (the most a thread can have).
int fused_kernel_registers(FusedKernel kernel, int width, int arch);

// Resident blocks per SM of a kernel with `threads` per block, `smem_bytes` of dynamic shared
// memory per block and `regs` registers per thread; 0 when such a block cannot run.
int resident_blocks_per_sm(const LaunchLimits& dev, int threads, std::size_t smem_bytes, int regs);

struct FusedLaunch {
  int threads = 0;  // 0: the per-row storage of 32 rows does not fit (use the general path)
  bool weights_in_smem = false;
  std::size_t smem_bytes = 0;  // dynamic shared memory per block
  // What the plan was ranked by.
  int regs_per_thread = 0;
  int blocks_per_sm = 0;       // resident blocks per SM (the occupancy limit)
  int warps_per_sm = 0;        // blocks_per_sm x threads / 32
  int sms_used = 0;            // SMs that get a block in the first wave
  int64_t resident_warps = 0;  // warps with rows, resident in the first wave, all SMs
};

// The plan for n rows of the fused kernel `kernel` on a device with limits `dev` (the rule in
// the header comment). forced_threads > 0 (set_cuda_block_size_for_testing) restricts the
// candidates to that block size when it fits, else it is ignored.
FusedLaunch plan_fused_launch(const FusedLayout& lay, int64_t n, FusedKernel kernel,
                              const LaunchLimits& dev, int forced_threads = 0);

// Threads per block of a one-row-per-thread kernel over n rows (the CD iteration's energy and
// delta kernel): the largest of max_threads, max_threads / 2, ..., 32 whose grid still covers
// every SM, else 32. Its rows are independent: the choice changes no number.
int spread_row_block(int64_t n, int sm_count, int max_threads);

// Team chains (kernels/sampling/fused_team.cuh): when one chain per thread leaves SMs idle (fewer
// warps of rows than SMs, e.g. a CD iteration at batch 256: 8 warps on a 132-SM H200), `lanes`
// threads of a one-warp block share each chain, splitting the hidden units in chunks of 4, and
// the grid spreads over lanes times more blocks. The rule: lanes is the smallest power of two
// >= 2 whose grid ceil(n x lanes / 32) covers every SM, at most min(32, W / 4) (one chunk per
// lane), and only while the grid stays resident in one wave (blocks <= resident blocks per SM x
// SMs; else the previous lane count); 0 (one thread per chain) when the rows already fill the
// SMs, when W / 4 < 2, or when no plan fits. Per block: 32 / lanes rows of per_row floats, plus
// the weights when shared memory holds them in one wave, else they are read through L1. The
// results equal the one-thread kernel's bit for bit (same accumulation order), so the choice
// never changes a number.
inline constexpr int kTeamBlock = 32;
struct TeamLaunch {
  int lanes = 0;  // threads per chain; 0: no team plan
  bool weights_in_smem = false;
  std::size_t smem_bytes = 0;
  int64_t blocks = 0;
};
// forced_lanes > 0 (set_cuda_chain_team_for_testing) uses that many lanes whenever it is valid
// for the width (a power of two, 2 .. min(32, W / 4)) and fits, in one wave or not;
// forced_lanes < 0 disables teams.
TeamLaunch plan_team_launch(const FusedLayout& lay, int64_t n, const LaunchLimits& dev,
                            int forced_lanes = 0);

}  // namespace cuebm::detail
