// The CD trainer's device half (kernels/training/cd_kernels.cu), as CDTrainer sees it.
// Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/training/cd.hpp"

namespace cuebm::detail {

// The CD trainer's device half. CDTrainer owns one when constructed with a CUDA device and
// delegates step() to it; the trainer's scalar state is passed by reference so both backends
// keep it in the same members.
struct CudaTrainerState {
  int64_t& iteration;
  int& consecutive_nonfinite;
  int64_t& buffer_ptr;
  bool& buffer_ready;
  bool& warned_small_buffer;
  std::vector<float>& buffer;          // host mirror of the replay buffer (init_buffer fills it)
  std::vector<int64_t>& start_rows;    // rows the last step read from the buffer
  std::vector<int64_t>& refresh_rows;  // scratch for the refreshed rows
  const std::function<void(const std::string&)>& on_warning;
};

// The host mirrors of the device state, as flags for CudaCDTrainerImpl::sync_to_host.
enum HostMirror : unsigned {
  kMirrorModel = 1,      // the Mlp's parameters (model.parameters())
  kMirrorOptimizer = 2,  // CDTrainer's Adam: step count and moments
  kMirrorNegatives = 4,  // the last step's negatives
  kMirrorBuffer = 8,     // the replay buffer
  kMirrorAll = 15,
};

class CudaCDTrainerImpl {
 public:
  virtual ~CudaCDTrainerImpl() = default;
  // One CD iteration (the caller has validated the batch). Enqueues the whole iteration, then
  // copies back the statistics (a few doubles, pinned) and synchronises once. The parameters,
  // Adam's moments, the negatives and the replay buffer stay on the device, so the host mirrors
  // are stale afterwards until sync_to_host. Host writes to the model's parameters (and to the
  // optimiser after optimizer_handed_out) since the host last saw them are uploaded first.
  virtual StepStats step(const float* batch, int64_t rows, CudaTrainerState& state) = 0;
  // Refreshes the mirrors named in `mirrors` (HostMirror flags) that are stale: one download of
  // them and one synchronisation; nothing when they are current. Host-side changes are uploaded
  // first, so a host write is never overwritten by the device's older copy.
  virtual void sync_to_host(unsigned mirrors, std::vector<float>& negatives,
                            std::vector<float>& buffer) = 0;
  // The host holds a mutable reference to the optimiser (CDTrainer::optimizer()): the next step
  // or sync compares it with what the host last saw and uploads a change.
  virtual void optimizer_handed_out() = 0;
  // CDTrainer::load_state replaced the host replay buffer: it is the state now (uploaded when
  // ready and of the trainer's size).
  virtual void load_buffer(const std::vector<float>& buffer, bool ready) = 0;
};

// `options` with sampler.n_steps already set to cd.k_steps; options.cd.buffer_size already
// max_batch when per_chain. With a score-matching loss (options.score.kind already set from
// options.loss) the device half runs ScoreLoss::evaluate_on_device instead of the negatives and
// the CD gradient, with the same clipping, Adam and single synchronisation.
std::unique_ptr<CudaCDTrainerImpl> make_cuda_trainer(Mlp& model, Adam& adam,
                                                     const TrainerOptions& options,
                                                     int64_t max_batch, int device);

// Traffic of every CUDA CD trainer of the process, cumulative: bytes copied device-to-host
// and host-to-device, and host synchronisations (cudaStreamSynchronize). Tests take
// differences around the calls they measure.
struct CudaTrainerTraffic {
  int64_t d2h_bytes = 0;
  int64_t h2d_bytes = 0;
  int64_t syncs = 0;
};
CudaTrainerTraffic cuda_trainer_traffic_for_testing();

}  // namespace cuebm::detail
