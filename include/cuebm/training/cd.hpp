// Contrastive divergence training of an MLP energy (CD-k and persistent CD with TorchEBM's
// replay buffer), with Adam and gradient-norm clipping.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/training/optim.hpp"

namespace cuebm {

namespace detail {
struct StepArrays;
class CudaCDTrainerImpl;  // host/training/cuda_trainer.hpp
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

struct TrainerOptions {
  CDOptions cd;
  // The negative-phase sampler. n_steps is taken from cd.k_steps; thin/diagnostics are ignored.
  LangevinOptions sampler;
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
  double neg_energy = 0;  // mean E(x_neg)
  double grad_norm = 0;   // before clipping
  bool skipped = false;   // non-finite loss: no update was made
};

// Everything a CDTrainer carries between steps besides the model and the optimiser: with the
// model's parameters and Adam's state it resumes a run bit for bit (the noise and the replay
// buffer's draws are keyed by the iteration).
struct TrainerState {
  int64_t iteration = 0;
  int consecutive_nonfinite = 0;
  std::vector<float> buffer;  // empty until the replay buffer is first used
  int64_t buffer_ptr = 0;
  bool buffer_ready = false;
};

// One TorchEBM-style training loop. All buffers are sized at construction for batches of up
// to max_batch rows; step() allocates nothing.
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

  // One CD iteration on a batch (batch x dim, row-major).
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
  // The negatives of the last step (rows x dim).
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

  Mlp& model_;
  TrainerOptions options_;
  int64_t max_batch_;
  // adam_, neg_ and buffer_ are host mirrors on a CUDA device, refreshed by the const accessors.
  mutable Adam adam_;
  int64_t iteration_ = 0;
  int consecutive_nonfinite_ = 0;
  mutable std::vector<float> neg_;
  std::vector<float> energies_, coeff_, grad_, both_, sample_work_;
  mutable std::vector<float> buffer_;
  std::vector<int64_t> start_rows_, refresh_rows_;
  int64_t buffer_ptr_ = 0;
  bool buffer_ready_ = false;
  bool warned_small_buffer_ = false;
  std::shared_ptr<const detail::StepArrays> steps_;  // per-step eta and noise coefficient
  std::unique_ptr<detail::CudaCDTrainerImpl> cuda_;  // set when running on a CUDA device
};

// CD loss from the energies: mean(E+) - mean(E-) + w (mean(E+^2) + mean(E-^2)), in double.
double cd_loss(const float* pos_energy, const float* neg_energy, int64_t n, double reg_weight);

}  // namespace cuebm
