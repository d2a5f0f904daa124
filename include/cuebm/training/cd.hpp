// Training of an MLP energy with Adam and gradient-norm clipping: contrastive divergence (CD-k
// and persistent CD with TorchEBM's replay buffer, the default) or one of the score-matching
// losses of score_matching.hpp (sm, ssm, dsm).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/training/optim.hpp"
#include "cuebm/training/score_matching.hpp"

namespace cuebm {

namespace detail {
struct StepArrays;
class CudaCDTrainerImpl;  // host/training/cuda_trainer.hpp
class McmcNegatives;      // host/training/mcmc_negatives.hpp
}  // namespace detail

struct CDOptions {
  int k_steps = 10;
  bool persistent = false;
  int64_t buffer_size = 10000;
  int init_steps = 100;
  float new_sample_ratio = 0.05f;
  float energy_reg_weight = 0.001f;
  // Persistent only: per-chain PCD (the buffer holds one row per batch row, chain i continues
  // in row i, no rows are refreshed), instead of TorchEBM's replay buffer.
  bool per_chain = false;
  // Persistent only: refreshed rows restart from N(0, I) instead of TorchEBM's 0.01 N(0, I) nudge.
  bool reinit_from_noise = false;
};

// The sampler of the negative phase. Every one runs cd.k_steps steps per iteration from the
// start rows (the data batch, or the replay buffer's rows in persistent CD), with the noise of
// batch row i keyed by (seed, chain i, step iteration * k_steps + t) as the Langevin negatives
// are, so a resumed run continues exactly. All of them target exp(-E / sigma^2) with sigma the
// Langevin noise_scale, so the trained model means the same density whichever one ran:
//  - langevin: unadjusted Langevin (langevin.hpp), TorchEBM's sampler and the default.
//  - mala: Langevin's proposal (step_size, noise_scale) with a Metropolis-Hastings accept/reject
//    (mala_sample in mcmc.hpp), exact for any step size.
//  - hmc: hmc_sample's Hamiltonian Monte Carlo (hmc_step_size, leapfrog, mass). hmc_sample's own
//    target is exp(-E); the trainer runs it on E / sigma^2 (so at temperature sigma^2; with
//    noise_scale 1 it is hmc_sample exactly). Needs constant step_size and noise_scale.
//  - tempering: parallel_tempering (tempering.hpp) with `replicas` MALA replicas on a geometric
//    ladder from sigma^2 to t_max and a swap round every swap_every steps; the sigma^2 replicas
//    are the negatives. The ladder restarts from the start rows at every iteration (every replica
//    of row i starts at row i), so it carries no state between iterations: in persistent CD the
//    replay buffer keeps the sigma^2 replicas only. Needs constant step_size and noise_scale.
// MALA, HMC and tempering initialise the replay buffer (init_steps) with themselves too.
enum class NegativeSampler { langevin, mala, hmc, tempering };

// "langevin", "mala", "hmc" or "tempering".
std::string negative_sampler_name(NegativeSampler sampler);
// The inverse; throws InvalidArgument naming the unknown name and the valid ones.
NegativeSampler parse_negative_sampler(const std::string& name);

struct NegativeSamplerOptions {
  NegativeSampler kind = NegativeSampler::langevin;
  // HMC: the leapfrog step size eps (0: sqrt(2 step_size) noise_scale, whose one-leapfrog
  // proposal is Langevin's), leapfrog steps per proposal (>= 1), the mass matrix's diagonal
  // (empty: identity, one value: scalar, or dim values; all > 0).
  float hmc_step_size = 0;
  int leapfrog = 10;
  std::vector<float> mass;
  // Tempering: replicas per chain (>= 2), the hottest temperature (0: 10 sigma^2; else
  // > sigma^2) and the steps between swap rounds (>= 1).
  int replicas = 8;
  double t_max = 0;
  int swap_every = 1;
};

// The loss a trainer minimises:
//  - cd: contrastive divergence with negatives from the sampler below (TorchEBM's default);
//  - sm, ssm, dsm: exact (or TorchEBM-approx) score matching, sliced score matching and
//    denoising score matching (score_matching.hpp), evaluated on the data batch alone: no
//    negatives, no sampler. The trained model means exp(-E), temperature 1, while CD with
//    Langevin noise scale sigma trains exp(-E / sigma^2).
enum class TrainingLoss { cd, sm, ssm, dsm };

// "cd", "sm", "ssm" or "dsm".
std::string training_loss_name(TrainingLoss loss);
// The inverse (case-sensitive); throws InvalidArgument naming the unknown name and the valid ones.
TrainingLoss parse_training_loss(const std::string& name);
// True for sm, ssm and dsm.
inline bool is_score_matching(TrainingLoss loss) { return loss != TrainingLoss::cd; }
// The ScoreLossKind of a score-matching loss (InvalidArgument for cd).
ScoreLossKind score_loss_kind(TrainingLoss loss);
// The temperature the trained model's density exp(-E / T) is meant at: noise_scale^2 (of the
// Langevin settings, which every negative sampler targets) for cd, 1 for score matching.
double loss_temperature(TrainingLoss loss, float noise_scale);

struct TrainerOptions {
  // Which loss; the default is contrastive divergence, the behaviour of earlier versions.
  TrainingLoss loss = TrainingLoss::cd;
  // Score-matching losses only: their settings (hessian_method, n_projections,
  // projection_type, noise_scale and denoising_sign of dsm, regularization_strength, and seed,
  // which keys the projections and the noise with the trainer's iteration). score.kind is
  // ignored: it follows `loss`. run_training sets score.seed to the run's seed.
  ScoreLossOptions score;
  // CD only (ignored by score-matching losses, as are sampler and negatives).
  CDOptions cd;
  // Langevin's settings, which MALA, HMC and tempering use too (step_size, noise_scale;
  // HMC and tempering need them constant). n_steps is taken from cd.k_steps; thin/diagnostics
  // are ignored; clamp applies to Langevin only.
  LangevinOptions sampler;
  // Which sampler draws the negatives, and the settings of MALA, HMC and tempering. On the CUDA
  // backend all four run on the device (tempering: at most 64 replicas per chain).
  NegativeSamplerOptions negatives;
  AdamOptions adam;
  float max_grad_norm = 1.0f;  // <= 0 disables clipping
  uint64_t seed = 0;
  // Consecutive non-finite losses tolerated (each one skipped and reported) before training
  // stops with NumericalError.
  int max_nonfinite_steps = 3;
};

struct StepStats {
  double loss = 0;
  double pos_energy = 0;  // mean E(x_data)
  double neg_energy = 0;  // mean E(x_neg); NaN for score-matching losses (no negatives)
  double grad_norm = 0;   // before clipping
  bool skipped = false;   // non-finite loss: no update was made
  // The negatives' mean acceptance rate over the rows and the k steps (tempering: the MALA moves
  // of all replicas); NaN for Langevin, which has no accept/reject step, and for score matching.
  double acceptance = NAN;
};

// Everything a CDTrainer carries between steps besides the model and the optimiser: with the
// model's parameters and Adam's state it resumes a run bit for bit (the noise and the replay
// buffer's draws are keyed by the iteration). No sampler adds state: MALA and HMC chains live in
// the negatives (and the replay buffer), and tempering restarts its ladder every iteration.
struct TrainerState {
  int64_t iteration = 0;
  int consecutive_nonfinite = 0;
  std::vector<float> buffer;  // empty until the replay buffer is first used
  int64_t buffer_ptr = 0;
  bool buffer_ready = false;
};

// One TorchEBM-style training loop, for every TrainingLoss. All buffers are sized at
// construction for batches of up to max_batch rows; step() allocates nothing.
//
// With a score-matching loss step() evaluates the ScoreLoss (score_matching.hpp) on the batch
// with the draws of iteration() (so a resumed run continues bit for bit), then clips and takes
// the Adam step exactly as CD does; non-finite losses are skipped the same way. The replay
// buffer stays empty and last_negatives() is null.
//
// On a CUDA device the model's parameters, Adam's moments, the negatives and the replay buffer
// live on the device: step() copies back only its statistics and synchronises once. The host
// copies are refreshed lazily:
//  - the accessors below (optimizer(), replay_buffer(), last_negatives(), state()) refresh what
//    they return before returning it;
//  - the model's own parameters (model.parameters() of the Mlp given to the constructor) are
//    refreshed by sync_to_host(): call it before reading the model on the host after step()
//    (saving it, sampling or evaluating it, a checkpoint). run_training does at every
//    checkpoint and figure and at the end of the run.
//  - host writes are kept: a change to model.parameters() (or to optimizer(), through the
//    reference it returns) since the host last saw the values is uploaded by the next step() or
//    sync. Call sync_to_host() before such a write (a write of exactly the values the host last
//    saw is not a change) and call optimizer() again after step() rather than keeping the
//    reference: it is refreshed at the call.
// On the CPU backend the host copies are the state and sync_to_host() does nothing. Neither
// backend is safe to use from several threads at once, const accessors included.
class CDTrainer {
 public:
  CDTrainer(Mlp& model, const TrainerOptions& options, int64_t max_batch,
            Device device = Device::cpu());
  ~CDTrainer();

  // One iteration on a batch (batch x dim, row-major).
  StepStats step(const float* batch, int64_t rows);
  // Brings every host copy up to date with the device (model parameters, optimiser, negatives,
  // replay buffer): one download of what is stale and one synchronisation, nothing when all is
  // current or on the CPU backend.
  void sync_to_host() const;

  int64_t iteration() const { return iteration_; }
  const Adam& optimizer() const;
  Adam& optimizer();
  const std::vector<float>& replay_buffer() const;
  int64_t buffer_pointer() const { return buffer_ptr_; }
  bool buffer_initialised() const { return buffer_ready_; }
  // The negatives of the last step (rows x dim); null for score-matching losses.
  const float* last_negatives() const;
  // The rows of the replay buffer the last step started from (persistent only).
  const std::vector<int64_t>& last_buffer_rows() const { return start_rows_; }
  TrainerState state() const;
  // Throws InvalidArgument when the state does not fit this trainer (buffer size, dim).
  void load_state(const TrainerState& state);
  // Called with a line of text when a step is skipped or a warning is due; default: stderr.
  std::function<void(const std::string&)> on_warning;

 private:
  void init_buffer();
  void start_negatives(int64_t rows);
  void write_buffer(int64_t rows);
  // Refreshes the host mirrors named (detail::HostMirror flags); no-op on the CPU backend.
  void sync_mirrors(unsigned mirrors) const;
  StepStats score_matching_step(const float* batch, int64_t rows);
  // Non-finite loss: counts it, warns, throws NumericalError past max_nonfinite_steps.
  void skip_nonfinite(const StepStats& stats);

  Mlp& model_;
  TrainerOptions options_;
  int64_t max_batch_;
  // adam_, neg_ and buffer_ are host mirrors on a CUDA device, refreshed by the const accessors.
  mutable Adam adam_;
  int64_t iteration_ = 0;
  int consecutive_nonfinite_ = 0;
  mutable std::vector<float> neg_;
  std::vector<float> energies_, grad_, both_, sample_work_;
  std::vector<float> partials_;  // fused CD iterations' partial gradients (host/training/fused_cd)
  mutable std::vector<float> buffer_;
  std::vector<int64_t> start_rows_, refresh_rows_;
  int64_t buffer_ptr_ = 0;
  bool buffer_ready_ = false;
  bool warned_small_buffer_ = false;
  std::shared_ptr<const detail::StepArrays> steps_;  // per-step eta and noise coefficient
  std::unique_ptr<detail::CudaCDTrainerImpl> cuda_;  // set when running on a CUDA device
  std::unique_ptr<detail::McmcNegatives> mcmc_;      // set for MALA, HMC and tempering
  std::unique_ptr<ScoreLoss> score_;                 // score-matching losses on the CPU backend
};

// The trainer of every loss (CDTrainer is its historical name).
using Trainer = CDTrainer;

// CD loss from the energies: mean(E+) - mean(E-) + w (mean(E+^2) + mean(E-^2)), in double.
double cd_loss(const float* pos_energy, const float* neg_energy, int64_t n, double reg_weight);

}  // namespace cuebm
