// The CD trainer's MALA, HMC and tempering negatives (TrainerOptions::negatives) on the CPU: the
// chains of host/sampling/mcmc_chains.hpp and tempering_chains.hpp, sized once for the largest
// batch, run in place on the negatives with the keys of mala_sample, hmc_sample and
// parallel_tempering (chain ids first_chain + row, steps step_offset + t).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/training/cd.hpp"
#include "host/sampling/mcmc_chains.hpp"
#include "host/sampling/tempering_chains.hpp"

namespace cuebm::detail {

// Throws InvalidArgument (prefixed by who) for settings of options.negatives that do not fit:
// an unknown kind, leapfrog < 1, a bad mass, hmc_step_size < 0, replicas < 2, t_max not above
// sigma^2, swap_every < 1, or a schedule that is not constant for HMC or tempering. Nothing is
// checked for Langevin.
void validate_negative_sampler(const TrainerOptions& options, int dim, const char* who);

// sigma^2 of the negatives' target exp(-E / sigma^2), in double (the sampler's noise scale).
double negatives_temperature(const TrainerOptions& options);
// HMC's leapfrog step: negatives.hmc_step_size, or sqrt(2 eta) sigma when that is 0.
float negatives_hmc_step(const TrainerOptions& options);

// The ladder of the tempering negatives: `replicas` temperatures geometric from sigma^2 to t_max.
std::vector<double> tempering_ladder(const TrainerOptions& options);

class McmcNegatives {
 public:
  // For batches of up to max_rows rows of dimension dim and n_steps steps per run.
  McmcNegatives(const TrainerOptions& options, int dim, int n_steps, int64_t max_rows);

  // n_steps steps in place on x (rows x dim) with chain ids first_chain + row (tempering: chain c's
  // replicas first_chain + c * R + r) and steps step_offset + t; returns the mean acceptance.
  double run(const Energy& energy, float* x, int64_t rows, uint64_t first_chain,
             uint64_t step_offset);

 private:
  NegativeSampler kind_;
  int dim_, n_steps_;
  uint64_t seed_;
  MalaSchedule mala_;
  std::vector<float> hmc_eps_, mass_;
  int leapfrog_ = 0;
  float inv_temperature_ = 1.0f;
  std::vector<double> ladder_;
  float tempering_eta_ = 0;
  int swap_every_ = 1;
  std::unique_ptr<MalaChains> mala_chains_;
  std::unique_ptr<HmcChains> hmc_chains_;
  std::unique_ptr<TemperingChains> tempering_chains_;
};

}  // namespace cuebm::detail
