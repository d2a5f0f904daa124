// MALA and HMC chains on the CPU with every buffer sized once: the single CPU core of mala_sample
// and hmc_sample (host/sampling/mcmc.cpp) and of the CD trainer's negatives, which reuse it step
// after step without allocating. A chain is keyed by McmcDraws (seed, chain id, step_offset + t),
// so running s steps and then continuing with step_offset = s equals one run of the sum.
//
// run() picks the path: energies with a chain-at-a-time path (has_chainwise_path of
// mcmc_chainwise.hpp, the analytic energies) run each chain through all steps on one thread
// (mcmc_chainwise.cpp); every other
// energy evaluates all chains' proposals in one batched call per step. Both take the same
// decisions from the same numbers, bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/sampling/schedule.hpp"
#include "host/sampling/mala_step.hpp"
#include "host/sampling/mcmc_draws.hpp"

namespace cuebm::detail {

// MALA's per-step values for steps 0 .. max(n_steps, 1) - 1: eta, the noise coefficient
// sqrt(2 eta) sigma and the temperature sigma^2 (float, as mala_sample uses them).
struct MalaSchedule {
  std::vector<float> eta, coef, temperature;
  double last_temperature = 1;  // sigma^2 of the last step, in double
};
// Throws InvalidArgument naming `who` for a bad schedule or a sigma^2 that underflows float.
MalaSchedule mala_schedule(const Schedule& step_size, const Schedule& noise_scale, int n_steps,
                           const char* who);

class MalaChains {
 public:
  MalaChains(int64_t max_rows, int dim);

  // Loads rows (<= max_rows) chains' states (rows x dim), evaluates them and clears the
  // acceptance counts. Check energies() for non-finite starts.
  void start(const Energy& energy, const float* x, int64_t rows);
  // n_steps MALA steps; step t uses s's values at t and draws (row, t). energy_trace: null, or
  // n_steps x rows floats that receive E of every chain after every step.
  void run(const Energy& energy, int n_steps, const MalaSchedule& s, const McmcDraws& draws,
           float* energy_trace = nullptr);

  int64_t rows() const { return b_.n; }
  const float* states() const { return b_.x.data(); }  // rows x dim
  const std::vector<double>& energies() const { return b_.e; }
  const std::vector<int>& accepted() const { return accepted_; }  // per row, since start()

 private:
  // run() one chain at a time (mcmc_chainwise.cpp).
  void run_chainwise(const Energy& energy, int n_steps, const MalaSchedule& s,
                     const McmcDraws& draws, float* energy_trace);

  MalaBatch b_;
  std::vector<float> e_;  // the energies as the batched call writes them
  std::vector<int> accepted_;
};

// What HmcChains::run needs besides the draws: step t has step size eps[t]; mass is the diagonal
// of M (dim values).
struct HmcSettings {
  const float* eps;
  const float* mass;
  int n_leapfrog;
};

class HmcChains {
 public:
  HmcChains(int64_t max_rows, int dim);

  // As MalaChains::start. The chains target exp(-E * inv_temperature): E and dE/dx are scaled
  // by it after every evaluation (not at all when it is 1, hmc_sample's target exp(-E)).
  void start(const Energy& energy, const float* x, int64_t rows, float inv_temperature = 1.0f);
  // n_steps HMC steps; energy_trace as MalaChains::run's.
  void run(const Energy& energy, int n_steps, const HmcSettings& h, const McmcDraws& draws,
           float* energy_trace = nullptr);

  int64_t rows() const { return n_; }
  const float* states() const { return x_.data(); }          // rows x dim
  const std::vector<float>& energies() const { return e_; }  // scaled by inv_temperature
  const std::vector<int>& accepted() const { return accepted_; }

 private:
  void evaluate(const Energy& energy, const float* x, float* g, float* e) const;
  // run() one chain at a time (mcmc_chainwise.cpp).
  void run_chainwise(const Energy& energy, int n_steps, const HmcSettings& h,
                     const McmcDraws& draws, float* energy_trace);

  int64_t n_ = 0;
  int dim_;
  float inv_t_ = 1.0f;
  std::vector<float> x_, g_, e_, x1_, g1_, e1_, p_, z_;
  std::vector<double> h0_;
  std::vector<int> accepted_;
};

}  // namespace cuebm::detail
