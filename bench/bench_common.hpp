// Shared helpers of the cuEBM benchmark programs: workload names, FLOP counts, registration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cuebm/models/activation.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "host/runtime/thread_pool.hpp"

namespace cuebm::bench {

// One Langevin workload on an MLP energy.
struct LangevinMlpCase {
  MlpSpec spec;
  int64_t batch = 4096;
  int k = 10;
};

// A way of running the CPU backend's parallel loops (--cuebm_thread_policy).
struct ThreadPolicy {
  std::string label;  // "openmp" or "pool:IDLE_US:JOIN_US:ADAPT"
  detail::CpuRuntime runtime = detail::CpuRuntime::kPool;
  detail::PoolPolicy pool;
};

// What main() decided: the devices to register and the extra workloads asked for.
struct BenchConfig {
  std::vector<Device> devices;         // Device::cpu() first, then each CUDA device used
  bool full_matrix = false;            // --cuebm_full: every D x width x batch x k case
  std::vector<LangevinMlpCase> extra;  // --cuebm_langevin=D-h1-..-1:batch:k[:activation]
  uint64_t seed = 20240611;
  // --cuebm_thread_policy: the tutorial's CD-10 iteration under each policy and thread count
  // (ThreadPolicy/... benchmarks; compare them with --benchmark_enable_random_interleaving).
  std::vector<ThreadPolicy> thread_policies;
  std::vector<int> policy_threads;
};

// "2-64-64-1_relu": the MLP's widths and activation, as the benchmark names spell them.
std::string mlp_label(const MlpSpec& spec);
// "_CPU" or "_CUDA" (device index > 0: "_CUDA1", ...).
std::string device_suffix(const Device& device);

// Sum over layers of w_i * w_{i+1} for widths {D, h1, ..., hL, 1} (multiply-adds per row of
// one forward pass).
int64_t mlp_macs(const Mlp& mlp);
// performance.md's count: a Langevin chain-step (forward plus dE/dx) is 4 * macs FLOP.
inline double langevin_step_flop(const Mlp& mlp) {
  return 4.0 * static_cast<double>(mlp_macs(mlp));
}

// Parses "D-h1-...-hL-1:batch:k[:activation]"; throws std::invalid_argument when malformed.
LangevinMlpCase parse_langevin_case(const std::string& text);

// N(0, I) rows times `scale`, from a fixed seed (the initial state of the benchmark chains).
std::vector<float> normal_rows(int64_t n, int dim, uint64_t seed, float scale = 1.0f);
// The tutorial's data: 8 Gaussians of std 0.1 on a circle of radius 1.5 (dim == 2); other
// dims get N(0, I).
std::vector<float> training_rows(int64_t n, int dim, uint64_t seed);

void register_langevin_benchmarks(const BenchConfig& config);
void register_cd_benchmarks(const BenchConfig& config);
void register_energy_benchmarks(const BenchConfig& config);
void register_mcmc_benchmarks(const BenchConfig& config);
void register_score_matching_benchmarks(const BenchConfig& config);
void register_thread_policy_benchmarks(const BenchConfig& config);

// "openmp", "pool" (the default policy) or "pool:IDLE_US:JOIN_US[:ADAPT]" (ADAPT 0 or 1);
// throws std::invalid_argument.
ThreadPolicy parse_thread_policy(const std::string& text);

}  // namespace cuebm::bench
