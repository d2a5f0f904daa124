// MALA, HMC and parallel tempering on device-resident data: the entry points that the host-array
// samplers (mala_sample_cuda, hmc_sample_cuda, parallel_tempering_cuda) and the CUDA CD trainer
// (kernels/training/cd_kernels.cu) share. Every pointer in the arguments is device memory; the
// launches are queued on the caller's stream and nothing synchronises or allocates (the storage
// is sized beforehand, once).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/models/device_model.cuh"
#include "kernels/sampling/mcmc_launch.cuh"

namespace cuebm::detail {

enum class McmcSampler { kMala, kHmc };

struct McmcArgs {
  float* x = nullptr;  // n_total x dim, row-major, updated in place
  int64_t n_total = 0;
  int dim = 0;
  int n_steps = 0;
  const float* step = nullptr;         // per step: MALA's eta, HMC's eps
  const float* noise_coef = nullptr;   // MALA, per step
  const float* temperature = nullptr;  // MALA, per step
  const float* mass = nullptr;         // HMC, dim
  int n_leapfrog = 0;
  // HMC targets exp(-E * inv_temperature): E and dE/dx are scaled by it after every evaluation
  // (host/sampling/mcmc_chains.hpp HmcChains; 1: hmc_sample's exp(-E)).
  float inv_temperature = 1.0f;
  uint64_t seed = 0, step_offset = 0, first_chain = 0;
  const float* noise = nullptr;  // n_steps x n_total x (dim + 1), or null (Philox)
  float* energy = nullptr;       // n_total: E of the final state (HMC: scaled)
  float* initial_energy = nullptr;
  int* accepted = nullptr;  // n_total
  float* trace = nullptr;   // n_steps x n_total: E after each step, or null
};

// The storage of MALA or HMC runs of up to max_rows chains of m.
ChainStorage mcmc_storage(const DeviceModel& m, int64_t max_rows);
// n_steps MALA or HMC steps of a.n_total chains on s. A chain whose initial energy is not finite
// runs too (the CPU's chains do; mala_sample and hmc_sample report it after the run).
void launch_mcmc_chains(McmcSampler sampler, const DeviceModel& m, const McmcArgs& a,
                        ChainStorage& storage, cudaStream_t s);

struct TemperingArgs {
  // (n_chains * R) x dim, row-major: replica r of chain c in row c * R + r; with shared_start,
  // n_chains x dim: every replica of chain c starts at row c (the CD trainer's ladder).
  const float* x_init = nullptr;
  bool shared_start = false;
  int n_replicas = 0;
  int dim = 0;
  int n_steps = 0;
  int swap_every = 1;
  float eta = 0;
  const double* temperature = nullptr;  // R
  const float* coef = nullptr;          // R: sqrt(2 eta T_r)
  // Step t is global step step_offset + t (MALA keys and swap rounds, as TemperingChains).
  uint64_t seed = 0, first_chain = 0, step_offset = 0;
  // n_chains x dim: the slot-0 replicas at the end. May be x_init when shared_start (every
  // replica has read its start before any writes).
  float* samples = nullptr;
  float* energy = nullptr;          // n_chains
  float* initial_energy = nullptr;  // n_chains * R
  int* moves = nullptr;             // n_chains x R: accepted moves at temperature r
  int* swaps = nullptr;             // n_chains x (R - 1): accepted swaps of pair (r, r + 1)
};

// The storage of tempering runs of up to max_chains chains of R replicas of m.
ChainStorage tempering_storage(const DeviceModel& m, int64_t max_chains, int n_replicas);
// The whole tempering run of n_chains chains on s (at most kMaxCudaReplicas replicas: the
// caller checks, host/sampling/cuda_tempering.hpp).
void launch_tempering_chains(const DeviceModel& m, const TemperingArgs& a, int64_t n_chains,
                             ChainStorage& storage, cudaStream_t s);

}  // namespace cuebm::detail
