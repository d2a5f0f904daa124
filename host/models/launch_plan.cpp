// Launch planning for the fused MLP kernels: see host/models/launch_plan.hpp for the rule.
#include "host/models/launch_plan.hpp"

#include <algorithm>
#include <initializer_list>

namespace cuebm::detail {
namespace {

// Registers per thread of the fused kernels, the largest over the six activations, from
// tools/ptxas-report.sh (nvcc 13.0, -O3, __launch_bounds__(256, 1), no spills). sm_80 SASS
// also runs on sm_86/89 (CUEBM_CUDA_ARCHITECTURES "80;90"); sm_90 numbers stand in for newer
// architectures, which JIT the compute_90 PTX. The chain kernel's maxima are ReLU's (sm_90: the
// other activations take 135 for W = 32 and 145 for W >= 64); both counts give 12 warps per SM
// at most. Rerun the report after changing the kernels.
struct FusedRegisters {
  int width;
  int eval_sm80, chain_sm80;
  int eval_sm90, chain_sm90;
};
constexpr FusedRegisters kFusedRegisters[] = {
    // width, eval sm_80, chain sm_80, eval sm_90, chain sm_90
    {16, 80, 96, 80, 96},      {32, 128, 135, 128, 148},  {64, 128, 140, 128, 164},
    {128, 128, 140, 128, 164}, {256, 128, 140, 128, 164},
};

constexpr int kMaxRegsPerThread = 255;
constexpr int kRegAllocUnit = 256;           // registers, per warp
constexpr int kSubPartitions = 4;            // per SM, sm_70 and later
constexpr std::size_t kSmemAllocUnit = 128;  // bytes, sm_80 and later
constexpr int kWarp = 32;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

int fused_kernel_registers(FusedKernel kernel, int width, int arch) {
  for (const FusedRegisters& r : kFusedRegisters) {
    if (r.width != width) continue;
    const bool chain = kernel == FusedKernel::kChain;
    if (arch >= 90) return chain ? r.chain_sm90 : r.eval_sm90;
    return chain ? r.chain_sm80 : r.eval_sm80;
  }
  return kMaxRegsPerThread;
}

int resident_blocks_per_sm(const LaunchLimits& dev, int threads, std::size_t smem_bytes, int regs) {
  if (threads <= 0 || dev.max_threads_per_sm <= 0 || smem_bytes > dev.smem_optin_per_block ||
      regs > kMaxRegsPerThread)
    return 0;
  const int warps = static_cast<int>(ceil_div(threads, kWarp));
  int blocks = std::min(dev.max_threads_per_sm / kWarp / warps, dev.max_blocks_per_sm);
  // Shared memory: the dynamic bytes plus the driver's reservation, in 128-byte units.
  const std::size_t smem_alloc = (smem_bytes + dev.smem_reserved_per_block + kSmemAllocUnit - 1) /
                                 kSmemAllocUnit * kSmemAllocUnit;
  if (smem_alloc > 0)
    blocks = static_cast<int>(std::min<std::size_t>(blocks, dev.smem_per_sm / smem_alloc));
  // Registers: per warp, rounded up to the allocation unit, in each sub-partition; a block must
  // also fit the per-block limit (the register file of one SM) with its warps rounded up to the
  // sub-partitions, as the hardware checks.
  if (regs > 0) {
    const int per_warp = static_cast<int>(ceil_div(regs * kWarp, kRegAllocUnit)) * kRegAllocUnit;
    const int64_t warps_rounded = ceil_div(warps, kSubPartitions) * kSubPartitions;
    if (per_warp * warps_rounded > dev.regs_per_sm) return 0;
    const int warps_per_sm = dev.regs_per_sm / kSubPartitions / per_warp * kSubPartitions;
    blocks = std::min(blocks, warps_per_sm / warps);
  }
  return std::max(blocks, 0);
}

FusedLaunch plan_fused_launch(const FusedLayout& lay, int64_t n, FusedKernel kernel,
                              const LaunchLimits& dev, int forced_threads) {
  const int regs = fused_kernel_registers(kernel, lay.width, dev.arch);
  const std::size_t wb = static_cast<std::size_t>(lay.total) * sizeof(float);
  const std::size_t rb = static_cast<std::size_t>(lay.per_row) * sizeof(float);
  const int64_t rows = std::max<int64_t>(n, 1);
  const int64_t work_warps = ceil_div(rows, kWarp);
  const int sms = std::max(dev.sm_count, 1);

  auto evaluate = [&](int t, bool in_smem) {
    FusedLaunch c;
    const std::size_t bytes = (in_smem ? wb : 0) + static_cast<std::size_t>(t) * rb;
    const int blocks = resident_blocks_per_sm(dev, t, bytes, regs);
    if (blocks == 0) return c;
    const int64_t grid = ceil_div(rows, t);
    c.threads = t;
    c.weights_in_smem = in_smem;
    c.smem_bytes = bytes;
    c.regs_per_thread = regs;
    c.blocks_per_sm = blocks;
    c.warps_per_sm = blocks * t / kWarp;
    c.sms_used = static_cast<int>(std::min<int64_t>(grid, sms));
    // The first wave holds min(grid, blocks x SMs) blocks; every warp of a block in it has rows
    // except in the grid's last block.
    c.resident_warps = std::min(work_warps, int64_t{blocks} * sms * (t / kWarp));
    return c;
  };
  auto better = [](const FusedLaunch& a, const FusedLaunch& b) {  // a ranks above b
    if (b.threads == 0) return a.threads != 0;
    if (a.resident_warps != b.resident_warps) return a.resident_warps > b.resident_warps;
    if (a.sms_used != b.sms_used) return a.sms_used > b.sms_used;
    if (a.weights_in_smem != b.weights_in_smem) return a.weights_in_smem;
    return a.threads > b.threads;
  };

  FusedLaunch best;
  if (forced_threads > 0 && forced_threads <= kMaxRowBlock && forced_threads % kWarp == 0)
    for (bool in_smem : {true, false}) {
      const FusedLaunch c = evaluate(forced_threads, in_smem);
      if (better(c, best)) best = c;
    }
  if (best.threads > 0) return best;
  for (int t = kWarp; t <= kMaxRowBlock; t *= 2)
    for (bool in_smem : {true, false}) {
      const FusedLaunch c = evaluate(t, in_smem);
      if (better(c, best)) best = c;
    }
  return best;
}

int spread_row_block(int64_t n, int sm_count, int max_threads) {
  int t = std::max(max_threads / kWarp * kWarp, kWarp);
  while (t > kWarp && ceil_div(std::max<int64_t>(n, 1), t) < sm_count) t /= 2;
  return std::max(t / kWarp * kWarp, kWarp);
}

TeamLaunch plan_team_launch(const FusedLayout& lay, int64_t n, const LaunchLimits& dev,
                            int forced_lanes) {
  const int max_lanes = std::min(kWarp, lay.width / 4);
  if (n <= 0 || forced_lanes < 0 || max_lanes < 2) return {};
  const int sms = std::max(dev.sm_count, 1);
  const std::size_t weight_bytes = static_cast<std::size_t>(lay.total) * sizeof(float);
  // The plan with `lanes` lanes: weights in shared memory when that keeps the grid in one wave
  // (or, when !one_wave, whenever a block fits), else from global memory.
  auto fit = [&](int lanes, bool one_wave) {
    TeamLaunch t;
    const int64_t blocks = ceil_div(n, kTeamBlock / lanes);
    if (blocks > int64_t{0x7fffffff}) return t;  // gridDim.x limit
    const std::size_t rows_bytes = static_cast<std::size_t>(kTeamBlock / lanes) *
                                   static_cast<std::size_t>(lay.per_row) * sizeof(float);
    for (bool in_smem : {true, false}) {
      const std::size_t bytes = rows_bytes + (in_smem ? weight_bytes : 0);
      const int resident = resident_blocks_per_sm(dev, kTeamBlock, bytes, kMaxRegsPerThread);
      if (resident == 0 || (one_wave && blocks > int64_t{resident} * sms)) continue;
      t.lanes = lanes;
      t.weights_in_smem = in_smem;
      t.smem_bytes = bytes;
      t.blocks = blocks;
      return t;
    }
    return t;
  };
  if (forced_lanes >= 2 && forced_lanes <= max_lanes && (forced_lanes & (forced_lanes - 1)) == 0)
    if (const TeamLaunch t = fit(forced_lanes, false); t.lanes > 0) return t;
  if (ceil_div(n, kWarp) >= sms) return {};
  TeamLaunch best;
  for (int lanes = 2; lanes <= max_lanes; lanes *= 2) {
    const TeamLaunch t = fit(lanes, true);
    if (t.lanes == 0) break;  // more lanes only make more blocks
    best = t;
    if (t.blocks >= sms) break;
  }
  return best;
}
}  // namespace cuebm::detail
