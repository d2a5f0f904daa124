// The stream-ordered API: cuEBM's MLP energy, Langevin chains and CD iterations on device
// memory the caller owns, enqueued on the caller's CUDA stream (as cuBLAS, cuRAND and CUB do).
// Plain C++ declarations: including this header needs no CUDA header and no nvcc.
//
// Rules every call follows:
//  - all pointers are device pointers on the current device; matrices are row-major with an
//    explicit leading dimension (floats between consecutive rows, >= the row length);
//  - work is only enqueued on `stream`, which must belong to the current device: no call
//    allocates memory, synchronises the device or the stream, or calls cudaSetDevice, so the
//    calls may be captured into a CUDA graph and replayed (parameters and step sizes are baked
//    into the launches: re-capture after changing options);
//  - scratch memory is the caller's `workspace`: query its size with the matching
//    *_workspace_size function; it must be 256-byte aligned (cudaMalloc's alignment) and must
//    not be used by another call still in flight (two streams need two workspaces);
//  - bad arguments throw cuebm::InvalidArgument naming the argument, before anything is
//    enqueued: a null pointer, a leading dimension smaller than the row length, a null,
//    misaligned or too small workspace, a stream of another device. A library built without
//    CUDA throws InvalidArgument ("built without CUDA") from every call after these checks.
//    A failed launch throws cuebm::CudaError.
//  - results are deterministic: no atomics, fixed reduction orders, noise keyed by (seed,
//    chain, step) as in langevin_sample, so a graph replay equals the direct calls bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuebm/models/activation.hpp"
#include "cuebm/runtime/cuda_stream.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/training/optim.hpp"

namespace cuebm {

// An MLP energy over parameters the caller holds in device memory, in PyTorch's layout: the
// flat concatenation, layer by layer, of weight [out, in] (row-major) then bias [out] - the
// order of nn.Sequential(...).parameters() / state_dict(), so a contiguous PyTorch parameter
// buffer (for example torch.nn.utils.parameters_to_vector(model.parameters()), or one flat
// tensor the layers are views of) is used without a copy.
struct MlpView {
  std::vector<int> widths;  // {D, h1, ..., hL, 1}: at least one hidden layer, at most 11
  Activation activation = Activation::kReLU;
  const float* params = nullptr;  // device, num_parameters() floats
  // sum over layers of out * in + out
  std::size_t num_parameters() const;
};

// Alignment every workspace must have.
inline constexpr std::size_t kWorkspaceAlignment = 256;

// E(x) and optionally dE/dx of n rows: x is n x D (leading dimension ldx >= D); e (n floats)
// and grad (n x D, ldg >= D) may each be null (not both).
std::size_t mlp_energy_workspace_size(const MlpView& model, int64_t n);
void mlp_energy(const MlpView& model, const float* x, int64_t ldx, int64_t n, float* e, float* grad,
                int64_t ldg, void* workspace, std::size_t workspace_bytes, cudaStream_t stream);

// options.n_steps Langevin steps of n chains on the MLP energy, state x (n x D, ldx >= D)
// updated in place. Noise keyed exactly as langevin_sample: (options.seed, options.first_chain
// + i, options.step_offset + t). Step-size and noise schedules are supported; options.noise
// (a host buffer), thin and diagnostics are not (InvalidArgument). Divergence is not detected.
std::size_t langevin_chain_workspace_size(const MlpView& model, int64_t n, int n_steps,
                                          int64_t ldx);
void langevin_chain(const MlpView& model, float* x, int64_t ldx, int64_t n,
                    const LangevinOptions& options, void* workspace, std::size_t workspace_bytes,
                    cudaStream_t stream);

// One non-persistent CD-k iteration with Adam and gradient-norm clipping, all on the device.
struct CdIterationOptions {
  LangevinOptions sampler;  // n_steps = k; the noise keys of the negatives' chains
  float energy_reg_weight = 0.001f;
  AdamOptions adam;
  float max_grad_norm = 1.0f;  // <= 0 disables clipping
};
// The caller's training state, in device memory.
struct CdDeviceState {
  float* params = nullptr;       // num_parameters() floats, read and updated in place
  float* adam_m = nullptr;       // first moments, same size (zero-initialised by the caller)
  float* adam_v = nullptr;       // second moments
  int64_t* adam_step = nullptr;  // Adam's step count (one int64), incremented by each update
};
// Negatives start at the data batch and run sampler.n_steps chains; then loss, gradients,
// clipping and the Adam step, as CDTrainer::step. data: batch x D (ldd >= D). Outputs (device,
// each may be null): loss (1 float: the CD loss at the current parameters), negatives
// (batch x D, contiguous), grad_norm (1 float, before clipping). A non-finite loss leaves the
// parameters, moments and step count unchanged (the loss is still written). model.params is
// ignored (state.params is the model's parameters).
std::size_t cd_iteration_workspace_size(const MlpView& model, int64_t batch, int k_steps);
void cd_iteration(const MlpView& model, const float* data, int64_t ldd, int64_t batch,
                  const CdIterationOptions& options, const CdDeviceState& state, float* loss,
                  float* negatives, float* grad_norm, void* workspace, std::size_t workspace_bytes,
                  cudaStream_t stream);

}  // namespace cuebm
