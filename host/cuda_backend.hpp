// Entry points of the CUDA backend (kernels/*.cu), as plain C++ declarations: no CUDA header
// is needed to include this file. Only defined when the library is built with CUEBM_HAVE_CUDA;
// the host calls them behind `#if CUEBM_HAVE_CUDA`.
//
// The energy is recognised with dynamic_cast: Mlp and AnalyticEnergy are supported; any other
// Energy subclass makes these functions throw InvalidArgument.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuebm/cd.hpp"
#include "cuebm/energy.hpp"
#include "cuebm/langevin.hpp"
#include "cuebm/mlp.hpp"

namespace cuebm::detail {

// Number of usable CUDA devices: 0 when cudaGetDeviceCount fails (no driver, no device, a
// driver too old for the runtime) or device 0 has no image of this build's kernels.
int cuda_runtime_device_count();
// Why no device is usable (the CUDA error named), empty when one is.
std::string cuda_unavailable_reason();
// Name, SM count, opt-in shared memory per block; throws CudaError for a bad index.
struct CudaDeviceInfo {
  std::string name;
  int sm_count = 0;
  int compute_major = 0, compute_minor = 0;
  std::size_t shared_per_block_optin = 0;  // bytes
  std::size_t global_memory = 0;           // bytes
};
CudaDeviceInfo cuda_device_info(int device);

// Langevin sampling on `device` (options validated by the caller). noise_or_null: when not
// null, eps of (step t, chain row, coordinate d) is noise[(t * n + row) * dim + d] instead of
// Philox (options.noise is ignored then; the caller passes options.noise here).
LangevinResult langevin_sample_cuda(const Energy& energy, const float* x0, int64_t n,
                                    const LangevinOptions& options, int device,
                                    const float* noise_or_null);

// E(x) (and dE/dx when grad is not null) for n rows on `device`; host pointers in and out.
void energy_cuda(const Energy& energy, const float* x, int64_t n, float* e, int device);
void gradient_cuda(const Energy& energy, const float* x, int64_t n, float* grad, float* e,
                   int device);
// Energies on grid_points(grid) order: point (i, j) at j * nx + i is (x_i, y_j) with
// x_i = xmin + i (xmax - xmin) / (nx - 1) computed in double (x_{nx-1} = xmax). 2-D energies.
void grid_energy_cuda(const Energy& energy, double xmin, double xmax, int nx, double ymin,
                      double ymax, int ny, float* e, int device);

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
// max_batch when per_chain.
std::unique_ptr<CudaCDTrainerImpl> make_cuda_trainer(Mlp& model, Adam& adam,
                                                     const TrainerOptions& options,
                                                     int64_t max_batch, int device);

// ---- Test knobs (tests/test_cuda.cpp) ----
// Threads per block of the chain and energy kernels (a multiple of 32, 32..1024); 0 restores
// the automatic choice. Results must not depend on it.
void set_cuda_block_size_for_testing(int threads);
// Threads per chain of the fused team chain kernel (kernels/fused_team.cuh): 0 automatic
// (plan_team_launch), -1 never, 2..32 that many when valid for the width. Results must not
// depend on it.
void set_cuda_chain_team_for_testing(int lanes);
// Which MLP path the device takes for this model: "fused<W>" or "general".
std::string cuda_mlp_path(const Mlp& mlp, int device);
// Threads per chain of a Langevin run of n chains without diagnostics or trajectory (the CD
// iteration's): 1 on the one-thread and general paths, else the team plan's lanes.
int cuda_chain_lanes(const Mlp& mlp, int64_t n, int device);
// Forces the general (runtime-width) MLP path even when a fused kernel exists.
void force_cuda_general_path_for_testing(bool force);
// Philox blocks computed on the device: out[4 i .. 4 i + 3] = philox_block(seed,
// subsequence[i], block[i]) and normals[4 i ..] = normal4_from_block of it.
void philox_blocks_cuda(uint64_t seed, const uint64_t* subsequence, const uint64_t* block,
                        int64_t n, uint32_t* out_bits, float* out_normals, int device);
// The same blocks through cuRAND's device API (curand_init(seed, subsequence, 4 * block) then
// curand4 and, from a second identical state, curand_normal4).
void curand_blocks_cuda(uint64_t seed, const uint64_t* subsequence, const uint64_t* block,
                        int64_t n, uint32_t* out_bits, float* out_normals, int device);
// Traffic of every CUDA CD trainer of the process, cumulative: bytes copied device-to-host
// and host-to-device, and host synchronisations (cudaStreamSynchronize). Tests take
// differences around the calls they measure.
struct CudaTrainerTraffic {
  int64_t d2h_bytes = 0;
  int64_t h2d_bytes = 0;
  int64_t syncs = 0;
};
CudaTrainerTraffic cuda_trainer_traffic_for_testing();
// Device models langevin_sample_cuda has uploaded so far (cumulative): a call with an energy
// whose content is unchanged since its last call on that device reuses the upload.
int64_t langevin_model_uploads_for_testing();

}  // namespace cuebm::detail
