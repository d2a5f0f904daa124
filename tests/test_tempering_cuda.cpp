// Parallel tempering on the CUDA backend (kernels/sampling/tempering_kernels.cu) against the CPU
// backend (host/sampling/tempering.cpp), the independent oracle: the same options and the same
// Philox keys must give the same T_0 samples, energies, move and swap acceptance, for analytic
// energies and MLPs, ladders of 2, 3, 8 and 64 replicas, a swap round after every step and after
// every third, chain counts that leave partial blocks, and several block sizes. Skipped without
// a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda_skip.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/sampling/tempering.hpp"
#if CUEBM_HAVE_CUDA
#include "host/models/cuda_models.hpp"
#endif

namespace cuebm {
namespace {

// Both backends compute each chain's arithmetic in the same order with the same explicit fma,
// but an MLP's float sums on the device and the CPU's batched blocks may round differently in
// the last bits (the sanitizer build's emulated GPU, or a real GPU with its own libm and
// sincosf for the normals). A rounding-level difference in a state moves a decision only when
// log u falls within about 1e-6 of log alpha, after which that chain follows another path. A
// chain agrees when its T_0 sample (each coordinate) and energy match to 1e-4 relative (a few
// hundred float ulps: no chaos at these settings over 15 steps); at most 2% of the chains may
// disagree (0 measured in the emulated build). Each disagreeing chain moves a move or swap
// acceptance by at most 1 / n_chains (its share of the attempts), which bounds those.
int disagreeing_chains(const TemperingResult& gpu, const TemperingResult& cpu,
                       const std::string& what) {
  EXPECT_EQ(gpu.temperatures, cpu.temperatures) << what;
  EXPECT_EQ(gpu.n_chains, cpu.n_chains) << what;
  EXPECT_EQ(gpu.dim, cpu.dim) << what;
  if (gpu.samples.size() != cpu.samples.size() || gpu.energy.size() != cpu.energy.size() ||
      gpu.move_acceptance.size() != cpu.move_acceptance.size() ||
      gpu.swap_acceptance.size() != cpu.swap_acceptance.size()) {
    ADD_FAILURE() << what << ": result sizes differ";
    return static_cast<int>(cpu.n_chains);
  }
  auto close = [](float a, float b) { return std::abs(a - b) <= 1e-4 * (1 + std::abs(b)); };
  const int dim = cpu.dim;
  int differ = 0;
  for (int64_t c = 0; c < cpu.n_chains; ++c) {
    bool same = close(gpu.energy[c], cpu.energy[c]);
    for (int i = 0; i < dim; ++i)
      same = same && close(gpu.samples[c * dim + i], cpu.samples[c * dim + i]);
    differ += same ? 0 : 1;
  }
  const double n = static_cast<double>(cpu.n_chains);
  EXPECT_LE(differ, cpu.n_chains / 50) << what << ": chains that disagree";
  const double tol = differ / n + 1e-12;
  for (std::size_t r = 0; r < cpu.move_acceptance.size(); ++r)
    EXPECT_NEAR(gpu.move_acceptance[r], cpu.move_acceptance[r], tol) << what << ", T_" << r;
  for (std::size_t r = 0; r < cpu.swap_acceptance.size(); ++r)
    EXPECT_NEAR(gpu.swap_acceptance[r], cpu.swap_acceptance[r], tol) << what << ", pair " << r;
  return differ;
}

#if CUEBM_HAVE_CUDA
// Restores the automatic block size when a test ends, also on a failed assertion.
struct BlockSizeKnob {
  explicit BlockSizeKnob(int threads) { detail::set_cuda_block_size_for_testing(threads); }
  ~BlockSizeKnob() { detail::set_cuda_block_size_for_testing(0); }
};
#endif

TEST(CudaTempering, MatchesTheCpuDecisionForDecision) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  // 61 chains (prime): a partial last block at every block size and ladder (2 replicas: 64 or
  // 16 chains per block; 3: 42 or 10; 8: 16 or 4). 15 steps: with a swap round every 3 steps,
  // 5 rounds, so both parities run.
  const int64_t n = 61;
  struct Case {
    std::string kind;
    int dim;
  };
  const Case cases[] = {{"double_well", 1}, {"double_well", 2}, {"double_well", 5},
                        {"mlp", 1},         {"mlp", 2},         {"mlp", 5}};
  int runs = 0, differ = 0;
  double swaps = 0, swap_pairs = 0, moves = 0, move_temps = 0;
  for (const Case& k : cases) {
    // A sharpened tanh MLP (parameters x 3, as in CudaMcmc's test) or the double well; the step
    // sizes give acceptance between 0.4 and 0.95, so both outcomes of moves and swaps occur.
    Mlp mlp({k.dim, {16, 16}, Activation::kTanh}, 31 + k.dim);
    for (float& v : mlp.parameters()) v *= 3.0f;
    const AnalyticEnergy dw = AnalyticEnergy::double_well(k.dim);
    const Energy& en = k.kind == "mlp" ? static_cast<const Energy&>(mlp) : dw;
    for (int R : {2, 3, 8}) {
      for (int every : {1, 3}) {
        for (int threads : {0, 32}) {
          const BlockSizeKnob knob(threads);
          TemperingOptions o;
          o.n_replicas = R;
          o.t_min = 0.5;
          o.t_max = 6.0;
          o.step_size = k.kind == "mlp" ? 0.2f : 0.04f;
          o.n_steps = 15;
          o.swap_every = every;
          o.seed = 11 + R + every;
          o.first_chain = 1000;
          // Half the runs start from given states (every replica of a chain alike), half from
          // N(0, I) per replica.
          std::vector<float> x0(n * k.dim);
          gaussian_initial_state(x0.data(), n, k.dim, 5);
          const float* start = (R + every + threads / 32) % 2 ? x0.data() : nullptr;
          const std::string what = k.kind + " D=" + std::to_string(k.dim) +
                                   " R=" + std::to_string(R) + " every " + std::to_string(every) +
                                   " threads " + std::to_string(threads) +
                                   (start ? " from x0" : " from N(0, I)");
          const TemperingResult cpu = parallel_tempering(en, start, n, o, Device::cpu());
          const TemperingResult gpu = parallel_tempering(en, start, n, o, Device::cuda(0));
          differ += disagreeing_chains(gpu, cpu, what);
          ++runs;
          for (double a : cpu.swap_acceptance) swaps += a;
          swap_pairs += static_cast<double>(cpu.swap_acceptance.size());
          for (double a : cpu.move_acceptance) moves += a;
          move_temps += static_cast<double>(cpu.move_acceptance.size());
        }
      }
    }
  }
  EXPECT_EQ(runs, 72);
  // The comparison exercised both outcomes of both kinds of decision.
  EXPECT_GT(swaps / swap_pairs, 0.2);
  EXPECT_LT(swaps / swap_pairs, 0.9);
  EXPECT_GT(moves / move_temps, 0.3);
  EXPECT_LT(moves / move_temps, 0.95);
  std::printf(
      "[ info ] %d runs, %d disagreeing chains in all; mean acceptance: swaps %.3f, moves %.3f\n",
      runs, differ, swaps / swap_pairs, moves / move_temps);
#endif
}

TEST(CudaTempering, SixtyFourReplicasAndTheLimit) {
  CUEBM_REQUIRE_CUDA();
  // 64 replicas (the most a block holds per chain on the GPU) still match the CPU; 65 throw
  // with the reason on the GPU and run on the CPU.
  const AnalyticEnergy dw = AnalyticEnergy::double_well(2);
  TemperingOptions o;
  o.n_replicas = 64;
  o.t_min = 0.5;
  o.t_max = 20.0;
  o.step_size = 0.04f;
  o.n_steps = 6;
  o.seed = 3;
  const int64_t n = 5;
  EXPECT_EQ(disagreeing_chains(parallel_tempering(dw, nullptr, n, o, Device::cuda(0)),
                               parallel_tempering(dw, nullptr, n, o, Device::cpu()), "R = 64"),
            0);
  o.n_replicas = 65;
  try {
    parallel_tempering(dw, nullptr, n, o, Device::cuda(0));
    ADD_FAILURE() << "65 replicas ran on the GPU";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("at most 64 replicas per chain"), std::string::npos)
        << err.what();
    EXPECT_NE(std::string(err.what()).find("got 65"), std::string::npos) << err.what();
  }
  EXPECT_EQ(parallel_tempering(dw, nullptr, n, o, Device::cpu()).move_acceptance.size(), 65u);
}

TEST(CudaTempering, ReportsANonFiniteInitialEnergyAsTheCpuDoes) {
  CUEBM_REQUIRE_CUDA();
  // A finite start whose energy overflows (k/2 |x|^2 at 1e30) in chain 1: the same message on
  // both devices (the row of its first replica, 1 * R).
  const AnalyticEnergy h = AnalyticEnergy::harmonic(2);
  std::vector<float> x0(8, 0.5f);
  x0[2] = 1e30f;
  TemperingOptions o;
  o.n_replicas = 3;
  o.n_steps = 4;
  std::string messages[2];
  for (int d = 0; d < 2; ++d) {
    try {
      parallel_tempering(h, x0.data(), 4, o, d ? Device::cuda(0) : Device::cpu());
    } catch (const InvalidArgument& err) {
      messages[d] = err.what();
    }
  }
  EXPECT_NE(messages[0].find("energy of chain 3's initial state is not finite"), std::string::npos)
      << messages[0];
  EXPECT_EQ(messages[1], messages[0]);
}

}  // namespace
}  // namespace cuebm
