// The fused kernels' launch planner (host/models/launch_plan.hpp) as the pure function it is: data
// sheet limits of an H200 (sm_90), an A100 (sm_80) and an L40S (sm_89), no device needed, so
// these tests run in every build.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "host/models/launch_plan.hpp"

namespace cuebm::detail {
namespace {

// CUDA programming guide, compute capability tables; cudaDeviceProp on the real devices.
LaunchLimits h200() {
  return {.sm_count = 132,
          .max_threads_per_sm = 2048,
          .max_blocks_per_sm = 32,
          .regs_per_sm = 65536,
          .smem_per_sm = 233472,           // 228 KB
          .smem_optin_per_block = 232448,  // 227 KB
          .smem_reserved_per_block = 1024,
          .arch = 90};
}
LaunchLimits a100() {
  return {.sm_count = 108,
          .max_threads_per_sm = 2048,
          .max_blocks_per_sm = 32,
          .regs_per_sm = 65536,
          .smem_per_sm = 167936,           // 164 KB
          .smem_optin_per_block = 166912,  // 163 KB
          .smem_reserved_per_block = 1024,
          .arch = 80};
}
LaunchLimits l40s() {
  return {.sm_count = 142,
          .max_threads_per_sm = 1536,
          .max_blocks_per_sm = 24,
          .regs_per_sm = 65536,
          .smem_per_sm = 102400,           // 100 KB
          .smem_optin_per_block = 101376,  // 99 KB
          .smem_reserved_per_block = 1024,
          .arch = 89};
}

struct NamedDevice {
  const char* name;
  LaunchLimits lim;
};
const NamedDevice kDevices[] = {{"H200", h200()}, {"A100", a100()}, {"sm_89", l40s()}};
const FusedKernel kKernels[] = {FusedKernel::kEval, FusedKernel::kChain};
const int kWidths[] = {16, 32, 64, 128, 256};

FusedLayout layout(int width, int dim, int hidden_layers) {
  return make_fused_layout(width, dim, hidden_layers, fused_chunk(width));
}
FusedLayout tutorial() { return layout(64, 2, 2); }  // 2-64-64-1

std::size_t weight_bytes(const FusedLayout& l) { return std::size_t{4} * l.total; }
std::size_t row_bytes(const FusedLayout& l) { return std::size_t{4} * l.per_row; }

std::string describe(const FusedLaunch& p) {
  return std::to_string(p.threads) + " threads, weights " +
         (p.weights_in_smem ? "in shared memory" : "from global memory") + ", " +
         std::to_string(p.blocks_per_sm) + " blocks/SM, " + std::to_string(p.warps_per_sm) +
         " warps/SM, " + std::to_string(p.sms_used) + " SMs";
}

// The ranking key of host/models/launch_plan.hpp, to check that the chosen plan is the best
// candidate.
bool ranks_above(const FusedLaunch& a, const FusedLaunch& b) {
  if (a.resident_warps != b.resident_warps) return a.resident_warps > b.resident_warps;
  if (a.sms_used != b.sms_used) return a.sms_used > b.sms_used;
  if (a.weights_in_smem != b.weights_in_smem) return a.weights_in_smem;
  return a.threads > b.threads;
}

// Every feasible candidate, evaluated through the forced-block-size path (which ranks the two
// weight placements for one block size), plus the other placement found by brute force.
std::vector<FusedLaunch> candidates(const FusedLayout& lay, int64_t n, FusedKernel k,
                                    const LaunchLimits& dev) {
  std::vector<FusedLaunch> out;
  const int regs = fused_kernel_registers(k, lay.width, dev.arch);
  for (int t = 32; t <= kMaxRowBlock; t *= 2)
    for (bool in_smem : {true, false}) {
      const std::size_t bytes = (in_smem ? weight_bytes(lay) : 0) + t * row_bytes(lay);
      const int blocks = resident_blocks_per_sm(dev, t, bytes, regs);
      if (blocks == 0) continue;
      FusedLaunch c;
      c.threads = t;
      c.weights_in_smem = in_smem;
      c.smem_bytes = bytes;
      c.blocks_per_sm = blocks;
      c.warps_per_sm = blocks * t / 32;
      const int64_t rows = std::max<int64_t>(n, 1), grid = (rows + t - 1) / t;
      c.sms_used = static_cast<int>(std::min<int64_t>(grid, dev.sm_count));
      c.resident_warps =
          std::min<int64_t>((rows + 31) / 32, int64_t{blocks} * dev.sm_count * (t / 32));
      out.push_back(c);
    }
  return out;
}

// Limits every launched plan must respect, checked from first principles.
void expect_fits(const FusedLaunch& p, const FusedLayout& lay, const LaunchLimits& dev,
                 FusedKernel k, const std::string& what) {
  ASSERT_GT(p.threads, 0) << what;
  EXPECT_EQ(p.threads % 32, 0) << what;
  EXPECT_LE(p.threads, kMaxRowBlock) << what;
  EXPECT_EQ(p.smem_bytes, (p.weights_in_smem ? weight_bytes(lay) : 0) + p.threads * row_bytes(lay))
      << what;
  EXPECT_LE(p.smem_bytes, dev.smem_optin_per_block) << what;
  ASSERT_GE(p.blocks_per_sm, 1) << what;
  EXPECT_LE(p.blocks_per_sm, dev.max_blocks_per_sm) << what;
  EXPECT_LE(p.blocks_per_sm * p.threads, dev.max_threads_per_sm) << what;
  const std::size_t alloc = (p.smem_bytes + dev.smem_reserved_per_block + 127) / 128 * 128;
  EXPECT_LE(p.blocks_per_sm * alloc, dev.smem_per_sm) << what;
  const int regs = fused_kernel_registers(k, lay.width, dev.arch);
  EXPECT_EQ(p.regs_per_thread, regs) << what;
  const int64_t regs_per_warp = (regs * 32 + 255) / 256 * 256;
  EXPECT_LE(p.blocks_per_sm * (p.threads / 32) * regs_per_warp, dev.regs_per_sm) << what;
  EXPECT_EQ(p.warps_per_sm, p.blocks_per_sm * p.threads / 32) << what;
}

TEST(LaunchPlan, ResidencyMatchesTheOccupancyCalculator) {
  const LaunchLimits h = h200(), a = a100(), l = l40s();
  // Thread and block limits (few registers, no shared memory).
  EXPECT_EQ(resident_blocks_per_sm(h, 256, 0, 32), 8);
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 0, 32), 32);  // 32 blocks per SM, not 64
  EXPECT_EQ(resident_blocks_per_sm(l, 32, 0, 32), 24);
  EXPECT_EQ(resident_blocks_per_sm(l, 256, 0, 32), 6);  // 1536 threads
  // Registers: per warp, rounded up to 256, 16384 per sub-partition.
  EXPECT_EQ(resident_blocks_per_sm(h, 256, 0, 128), 2);  // 4 warps per sub-partition
  EXPECT_EQ(resident_blocks_per_sm(h, 256, 0, 164), 1);  // 5376 per warp: 3 per sub-partition
  EXPECT_EQ(resident_blocks_per_sm(h, 128, 0, 164), 3);  // 12 warps
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 0, 164), 12);
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 0, 80), 24);   // 2560 per warp: 6 per sub-partition
  EXPECT_EQ(resident_blocks_per_sm(h, 256, 0, 255), 1);  // 8192 per warp: the whole file
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 0, 256), 0);   // more than a thread can have
  // Shared memory: dynamic + 1 KB reserved, in 128-byte units.
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 100 * 1024, 32), 2);  // 101 KB each
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 232448, 32), 1);      // the opt-in limit
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 232449, 32), 0);
  EXPECT_EQ(resident_blocks_per_sm(a, 32, 166912, 32), 1);
  EXPECT_EQ(resident_blocks_per_sm(a, 32, 166913, 32), 0);
  EXPECT_EQ(resident_blocks_per_sm(l, 32, 101376, 32), 1);
  EXPECT_EQ(resident_blocks_per_sm(l, 32, 101377, 32), 0);
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 24832, 128), 9);  // 25856 each: the tutorial's rows
  EXPECT_EQ(resident_blocks_per_sm(h, 32, 24833, 128), 8);  // 25984 (rounded up) each
}

TEST(LaunchPlan, RegisterTableCoversEveryFusedWidth) {
  for (int arch : {80, 86, 89, 90, 100, 120})
    for (int w : kWidths)
      for (FusedKernel k : kKernels) {
        const int r = fused_kernel_registers(k, w, arch);
        EXPECT_GE(r, 32) << "width " << w << " arch " << arch;
        EXPECT_LT(r, 255) << "width " << w << " arch " << arch << ": no entry in the table";
      }
  EXPECT_EQ(fused_kernel_registers(FusedKernel::kEval, 48, 90), 255);  // not a fused width
}

TEST(LaunchPlan, TutorialLargeBatchFillsTheSmsOnH200) {
  // The old planner: 128 threads with the weights in shared memory, one block (4 warps) per SM.
  const LaunchLimits dev = h200();
  const FusedLayout lay = tutorial();
  for (FusedKernel k : kKernels) {
    const FusedLaunch p = plan_fused_launch(lay, 65536, k, dev);
    const std::string what = describe(p);
    expect_fits(p, lay, dev, k, what);
    EXPECT_GE(p.warps_per_sm, 8) << what;
    EXPECT_EQ(p.sms_used, 132) << what;
    EXPECT_EQ(p.resident_warps, int64_t{p.warps_per_sm} * 132) << what;
    // No candidate gives more: per-row storage (776 bytes a row, in shared memory) caps every
    // plan at 9 one-warp blocks per SM (25856 bytes each of 233472), the chain kernel's 164
    // registers at 12 warps.
    for (const FusedLaunch& c : candidates(lay, 65536, k, dev))
      EXPECT_LE(c.warps_per_sm, p.warps_per_sm) << describe(c) << " beats " << what;
  }
}

TEST(LaunchPlan, Width128GetsMoreThanOneWarpPerSm) {
  // W = 128 (150 KB of weights): in shared memory only one 32-thread block fits next to its
  // rows (the old plan, one warp per SM); read from global memory, several blocks do.
  const FusedLayout lay = layout(128, 2, 2);
  for (const NamedDevice& d : kDevices)
    for (FusedKernel k : kKernels) {
      const FusedLaunch p = plan_fused_launch(lay, 65536, k, d.lim);
      const std::string what = std::string(d.name) + ": " + describe(p);
      expect_fits(p, lay, d.lim, k, what);
      EXPECT_GT(p.warps_per_sm, 1) << what;
      EXPECT_FALSE(p.weights_in_smem) << what;
    }
}

TEST(LaunchPlan, Width256FallsBackExactlyWhenItsRowsDoNotFit) {
  // W = 256: with a hidden-hidden layer (513 KB of it) the weights never fit in shared memory;
  // the fused kernels run when 32 rows of per-row storage fit the opt-in limit, else the
  // general path takes over (threads == 0).
  for (const NamedDevice& d : kDevices)
    for (int layers : {1, 2, 3, 4})
      for (int dim : {2, 17, 128}) {
        const FusedLayout lay = layout(256, dim, layers);
        const bool fits = 32 * row_bytes(lay) <= d.lim.smem_optin_per_block;
        for (FusedKernel k : kKernels)
          for (int64_t n : {int64_t{1}, int64_t{256}, int64_t{65536}}) {
            const FusedLaunch p = plan_fused_launch(lay, n, k, d.lim);
            const std::string what = std::string(d.name) + " D " + std::to_string(dim) + " L " +
                                     std::to_string(layers) + " n " + std::to_string(n);
            if (!fits) {
              EXPECT_EQ(p.threads, 0) << what << ": " << describe(p);
              continue;
            }
            expect_fits(p, lay, d.lim, k, what);
            if (layers >= 2) {
              EXPECT_FALSE(p.weights_in_smem) << what;
            }
          }
      }
  // The boundary cases the brief names: 2-256-256-256-1 does not fit an L40S's 99 KB (5128
  // bytes a row), 2-256x4-1 not an A100's 163 KB (6152 bytes a row); both fit an H200.
  for (FusedKernel k : kKernels) {
    EXPECT_EQ(plan_fused_launch(layout(256, 2, 3), 256, k, l40s()).threads, 0);
    EXPECT_GT(plan_fused_launch(layout(256, 2, 3), 256, k, a100()).threads, 0);
    EXPECT_EQ(plan_fused_launch(layout(256, 2, 4), 256, k, a100()).threads, 0);
    EXPECT_GT(plan_fused_launch(layout(256, 2, 4), 256, k, h200()).threads, 0);
  }
}

TEST(LaunchPlan, SmallBatchesUseOneWarpBlocksOnAsManySmsAsTheyCan) {
  // A CD iteration's 256 chains: 8 warps of work. One-warp blocks put them on 8 SMs (a 256-
  // thread block would put them on one); the weights stay in shared memory (equal residency).
  for (const NamedDevice& d : kDevices)
    for (FusedKernel k : kKernels)
      for (const FusedLayout& lay : {tutorial(), layout(32, 2, 2), layout(16, 3, 1)}) {
        const FusedLaunch p = plan_fused_launch(lay, 256, k, d.lim);
        const std::string what =
            std::string(d.name) + " W " + std::to_string(lay.width) + ": " + describe(p);
        expect_fits(p, lay, d.lim, k, what);
        EXPECT_EQ(p.threads, 32) << what;
        EXPECT_EQ(p.sms_used, 8) << what;  // 256 / 32 blocks
        EXPECT_EQ(p.resident_warps, 8) << what;
        EXPECT_TRUE(p.weights_in_smem) << what;
      }
  // 4096 rows of the tutorial on an H200: 128 one-warp blocks on 128 SMs, not 32 of 128 threads.
  const FusedLaunch p = plan_fused_launch(tutorial(), 4096, FusedKernel::kChain, h200());
  EXPECT_EQ(p.threads, 32) << describe(p);
  EXPECT_EQ(p.sms_used, 128) << describe(p);
  // A partial last warp counts as a warp with work.
  EXPECT_EQ(plan_fused_launch(tutorial(), 257, FusedKernel::kChain, h200()).sms_used, 9);
}

TEST(LaunchPlan, ChosenPlanIsTheBestCandidateAndFitsEverywhere) {
  for (const NamedDevice& d : kDevices)
    for (int w : kWidths)
      for (int layers : {1, 2, 3})
        for (int dim : {1, 2, 33, 128})
          for (FusedKernel k : kKernels)
            for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{31}, int64_t{256}, int64_t{1000},
                              int64_t{4096}, int64_t{65536}, int64_t{1} << 30}) {
              const FusedLayout lay = layout(w, dim, layers);
              const FusedLaunch p = plan_fused_launch(lay, n, k, d.lim);
              const std::vector<FusedLaunch> all = candidates(lay, n, k, d.lim);
              const std::string what = std::string(d.name) + " W " + std::to_string(w) + " D " +
                                       std::to_string(dim) + " L " + std::to_string(layers) +
                                       " n " + std::to_string(n);
              // A plan exists exactly when 32 rows of per-row storage fit one block.
              ASSERT_EQ(p.threads > 0, 32 * row_bytes(lay) <= d.lim.smem_optin_per_block) << what;
              ASSERT_EQ(p.threads > 0, !all.empty()) << what;
              if (p.threads == 0) continue;
              expect_fits(p, lay, d.lim, k, what);
              for (const FusedLaunch& c : all)
                ASSERT_FALSE(ranks_above(c, p))
                    << what << ": " << describe(c) << " ranks above " << describe(p);
            }
}

TEST(LaunchPlan, NeverLessResidentThanTheOldPlanner) {
  // The old rule: 32, 64 or 128 threads by batch size, weights in shared memory first.
  auto old_plan = [](const FusedLayout& lay, int64_t n, const LaunchLimits& dev) {
    int pref = 32;
    if (n >= int64_t{128} * dev.sm_count)
      pref = 128;
    else if (n >= int64_t{64} * dev.sm_count)
      pref = 64;
    for (bool in_smem : {true, false})
      for (int t = pref; t >= 32; t /= 2) {
        const std::size_t bytes = (in_smem ? weight_bytes(lay) : 0) + t * row_bytes(lay);
        if (bytes <= dev.smem_optin_per_block) return std::make_pair(t, bytes);
      }
    return std::make_pair(0, std::size_t{0});
  };
  for (const NamedDevice& d : kDevices)
    for (int w : kWidths)
      for (int layers : {1, 2, 3})
        for (FusedKernel k : kKernels)
          for (int64_t n : {int64_t{256}, int64_t{4096}, int64_t{65536}}) {
            const FusedLayout lay = layout(w, 2, layers);
            const auto [t, bytes] = old_plan(lay, n, d.lim);
            const FusedLaunch p = plan_fused_launch(lay, n, k, d.lim);
            ASSERT_EQ(p.threads > 0, t > 0);
            if (t == 0) continue;
            const int regs = fused_kernel_registers(k, w, d.lim.arch);
            const int64_t old_resident = std::min<int64_t>(
                (n + 31) / 32,
                int64_t{resident_blocks_per_sm(d.lim, t, bytes, regs)} * d.lim.sm_count * (t / 32));
            EXPECT_GE(p.resident_warps, old_resident)
                << d.name << " W " << w << " L " << layers << " n " << n << ": " << describe(p);
          }
  // And strictly more where the issue found the old plan starved the SMs.
  const FusedLaunch tut = plan_fused_launch(tutorial(), 65536, FusedKernel::kEval, h200());
  EXPECT_GT(tut.warps_per_sm, 4) << describe(tut);
  const FusedLaunch w128 = plan_fused_launch(layout(128, 2, 2), 65536, FusedKernel::kEval, h200());
  EXPECT_GT(w128.warps_per_sm, 1) << describe(w128);
}

TEST(LaunchPlan, ForcedBlockSizeIsUsedWhenItFits) {
  const LaunchLimits dev = h200();
  const FusedLayout lay = tutorial();
  for (int t : {32, 64, 96, 128, 160, 256}) {
    const FusedLaunch p = plan_fused_launch(lay, 1000, FusedKernel::kChain, dev, t);
    EXPECT_EQ(p.threads, t);
    expect_fits(p, lay, dev, FusedKernel::kChain, describe(p));
  }
  // 256 rows of W = 128 (1544 bytes each) exceed 227 KB: the automatic plan instead.
  const FusedLayout wide = layout(128, 2, 2);
  const FusedLaunch forced = plan_fused_launch(wide, 1000, FusedKernel::kEval, dev, 256);
  const FusedLaunch automatic = plan_fused_launch(wide, 1000, FusedKernel::kEval, dev);
  EXPECT_EQ(forced.threads, automatic.threads);
  EXPECT_EQ(forced.weights_in_smem, automatic.weights_in_smem);
  // Invalid knobs are ignored (set_cuda_block_size_for_testing rejects them before).
  EXPECT_EQ(plan_fused_launch(lay, 1000, FusedKernel::kEval, dev, 48).threads,
            plan_fused_launch(lay, 1000, FusedKernel::kEval, dev).threads);
}

}  // namespace
}  // namespace cuebm::detail

namespace cuebm::detail {
namespace {

TEST(TeamPlan, CdBatch256SpreadsOverNearlyEverySm) {
  // The tutorial's CD iteration: 256 chains are 8 warps (8 SMs one chain per thread). With 16
  // lanes per chain they are 128 one-warp blocks: 128 of the H200's 132 SMs, all of an A100's
  // 108 and 128 of an L40S's 142 (16 = W / 4 is the most lanes W = 64 allows).
  for (const NamedDevice& d : kDevices) {
    const TeamLaunch t = plan_team_launch(tutorial(), 256, d.lim);
    EXPECT_EQ(t.lanes, 16) << d.name;
    EXPECT_EQ(t.blocks, 128) << d.name;
    EXPECT_TRUE(t.weights_in_smem) << d.name;
    const std::size_t rows = static_cast<std::size_t>(32 / t.lanes) * tutorial().per_row;
    EXPECT_EQ(t.smem_bytes, (rows + tutorial().total) * sizeof(float)) << d.name;
  }
}

TEST(TeamPlan, LanesAreTheFewestThatCoverTheSms) {
  const LaunchLimits d = h200();  // 132 SMs
  // 1024 chains: 2 lanes -> 64 blocks, 4 -> 128, 8 -> 256 >= 132.
  EXPECT_EQ(plan_team_launch(tutorial(), 1024, d).lanes, 8);
  EXPECT_EQ(plan_team_launch(tutorial(), 1024, d).blocks, 256);
  // 2048 chains: 2 lanes -> 128 blocks < 132, 4 -> 256.
  EXPECT_EQ(plan_team_launch(tutorial(), 2048, d).lanes, 4);
  // 4224 = 132 warps already fill the SMs one chain per thread: no team.
  EXPECT_EQ(plan_team_launch(tutorial(), 4224, d).lanes, 0);
  EXPECT_EQ(plan_team_launch(tutorial(), 4193, d).lanes, 0);  // 132 warps, the last partial
  EXPECT_EQ(plan_team_launch(tutorial(), 4192, d).lanes, 2);  // 131 warps
  // One chain: as many lanes as the width allows, one block.
  const TeamLaunch one = plan_team_launch(tutorial(), 1, d);
  EXPECT_EQ(one.lanes, 16);
  EXPECT_EQ(one.blocks, 1);
  EXPECT_EQ(plan_team_launch(tutorial(), 0, d).lanes, 0);
}

TEST(TeamPlan, LanesNeverExceedOneChunkOfFourUnitsEach) {
  for (int w : kWidths) {
    const TeamLaunch t = plan_team_launch(layout(w, 2, 2), 1, h200());
    EXPECT_EQ(t.lanes, std::min(32, w / 4)) << "W " << w;
  }
}

TEST(TeamPlan, StorageFallsBackToGlobalWeightsThenToNoTeam) {
  // W = 256, 3 hidden layers: 2 x 256 x 256 x 2 floats of weights (1 MB) never fit shared
  // memory; the rows' storage (2 per block at 16 lanes) does: weights from global memory.
  for (const NamedDevice& d : kDevices) {
    const TeamLaunch t = plan_team_launch(layout(256, 2, 3), 256, d.lim);
    ASSERT_GT(t.lanes, 0) << d.name;
    EXPECT_FALSE(t.weights_in_smem) << d.name;
    EXPECT_LE(t.smem_bytes, d.lim.smem_optin_per_block) << d.name;
  }
  // Whatever the plan, its storage fits the block: the kernel's layout needs R rows of
  // per_row floats (plus the weights when in shared memory).
  for (const NamedDevice& d : kDevices)
    for (int w : kWidths)
      for (int layers : {1, 2, 3})
        for (int dim : {1, 2, 33, 128}) {
          const FusedLayout lay = layout(w, dim, layers);
          const TeamLaunch t = plan_team_launch(lay, 100, d.lim);
          if (t.lanes == 0) continue;
          const std::size_t need =
              static_cast<std::size_t>(32 / t.lanes) * lay.per_row * sizeof(float) +
              (t.weights_in_smem ? lay.total * sizeof(float) : 0);
          EXPECT_EQ(t.smem_bytes, need);
          EXPECT_LE(t.smem_bytes, d.lim.smem_optin_per_block);
        }
}

TEST(TeamPlan, AutomaticPlansRunInOneWave) {
  // 2-128-128-1 at 256 chains on an H200: 32 lanes would make 256 blocks, and with the weights
  // (about 150 KB) in shared memory one block per SM: two waves. The plan keeps one wave.
  const FusedLayout w128 = layout(128, 2, 2);
  const TeamLaunch t = plan_team_launch(w128, 256, h200());
  ASSERT_GT(t.lanes, 0);
  const int resident = resident_blocks_per_sm(h200(), 32, t.smem_bytes, 255);
  EXPECT_LE(t.blocks, int64_t{resident} * 132) << t.lanes << " lanes";
  for (const NamedDevice& d : kDevices)
    for (int w : kWidths)
      for (int layers : {1, 2, 3, 4})
        for (int64_t n : {1, 100, 256, 1000, 3000}) {
          const TeamLaunch p = plan_team_launch(layout(w, 2, layers), n, d.lim);
          if (p.lanes == 0) continue;
          const int r = resident_blocks_per_sm(d.lim, 32, p.smem_bytes, 255);
          EXPECT_LE(p.blocks, int64_t{r} * d.lim.sm_count)
              << d.name << " W " << w << " L " << layers << " n " << n;
        }
}

TEST(TeamPlan, ForcedLanesAreUsedWhenValidAndTeamsCanBeDisabled) {
  const LaunchLimits d = h200();
  EXPECT_EQ(plan_team_launch(tutorial(), 100000, d, 4).lanes, 4);  // forced even when full
  EXPECT_EQ(plan_team_launch(tutorial(), 256, d, 2).lanes, 2);
  EXPECT_EQ(plan_team_launch(tutorial(), 256, d, -1).lanes, 0);
  // Invalid for W = 64 (more than W / 4, or not a power of two): the automatic choice.
  EXPECT_EQ(plan_team_launch(tutorial(), 256, d, 32).lanes, 16);
  EXPECT_EQ(plan_team_launch(tutorial(), 256, d, 3).lanes, 16);
}

TEST(SpreadRowBlock, SmallBatchesGetSmallerBlocksLargeOnesKeepTheMaximum) {
  EXPECT_EQ(spread_row_block(512, 132, 128), 32);   // CD at batch 256: 16 blocks, not 4
  EXPECT_EQ(spread_row_block(8448, 132, 128), 64);  // 132 blocks of 64
  EXPECT_EQ(spread_row_block(16896, 132, 128), 128);
  EXPECT_EQ(spread_row_block(131072, 132, 128), 128);
  EXPECT_EQ(spread_row_block(1, 132, 128), 32);
}

}  // namespace
}  // namespace cuebm::detail
