// The CUDA CD trainer's MALA, HMC and tempering negatives (TrainerOptions::negatives) on the
// device: the twin of host/training/mcmc_negatives.hpp, with the same schedules, keys and counts,
// running the kernels of kernels/sampling/device_chains.cuh on the trainer's device-resident
// parameters and negatives. Everything is sized and uploaded at construction; run() and
// acceptance() only queue launches on the caller's stream (no allocation, no synchronisation).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <optional>

#include "cuebm/training/cd.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/device_chains.cuh"

namespace cuebm::detail {

class DeviceNegatives {
 public:
  // For runs of up to max_rows rows of m (whose parameters the runs read as they are at the
  // launch) with o's sampler (not Langevin; o.negatives validated; tempering with at most
  // kMaxCudaReplicas replicas, which make_cuda_trainer checks). Uploads on s.
  DeviceNegatives(const DeviceModel& m, const TrainerOptions& o, int64_t max_rows, cudaStream_t s);

  // cd.k_steps steps (init: cd.init_steps, the replay buffer's initialisation) in place on x
  // (device, rows x dim) with chain ids first_chain + row (tempering: first_chain + row * R + r)
  // and steps step_offset + t, as McmcNegatives::run.
  void run(float* x, int64_t rows, uint64_t first_chain, uint64_t step_offset, bool init,
           cudaStream_t s);
  // The last run's mean acceptance (accepted / tried, tried = rows * that run's steps, times R for
  // tempering: McmcNegatives::run's ratio) into *out (device).
  void acceptance(int64_t rows, double* out, cudaStream_t s) const;
  // Chain ids a row of the negatives uses: R for tempering, else 1.
  uint64_t ids_per_row() const;

 private:
  const DeviceModel& m_;
  NegativeSampler kind_;
  int dim_, k_steps_, init_steps_;
  int last_steps_ = 0;  // steps of the last run (k_steps_, or init_steps_ for the buffer)
  uint64_t seed_;
  // MALA: eta, noise coefficient and temperature per step, for k_steps and init_steps runs.
  DeviceBuffer<float> eta_, coef_, temperature_, init_eta_, init_coef_, init_temperature_;
  // HMC: the (constant) step size per step, the mass diagonal, leapfrog steps, 1 / sigma^2.
  DeviceBuffer<float> hmc_eps_, mass_;
  int leapfrog_ = 0;
  float inv_temperature_ = 1.0f;
  // Tempering: the ladder, sqrt(2 eta T_r), eta, swap interval, replicas.
  DeviceBuffer<double> ladder_;
  DeviceBuffer<float> ladder_coef_;
  float tempering_eta_ = 0;
  int swap_every_ = 1, replicas_ = 1;
  // Per row (tempering: per replica) outputs of a run; accepted_ holds tempering's moves.
  DeviceBuffer<float> energy_, initial_energy_;
  DeviceBuffer<int> accepted_, swaps_;
  std::optional<ChainStorage> storage_;
};

}  // namespace cuebm::detail
