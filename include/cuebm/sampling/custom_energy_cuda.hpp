// User-defined energies on a CUDA device: the header-only, stream-ordered counterpart of
// langevin_chain<Energy> (cuebm/custom_energy.hpp, where the Energy contract is documented).
// Include it from a .cu file compiled by nvcc; the kernel is instantiated for the user's type.
//
//   langevin_chain_cuda<MaxDim>(energy, dim, x, ldx, n, options, stream)
//  - x: n chains on the current device, row i at x + i * ldx (ldx >= dim floats), updated in
//    place; the initial state is whatever x holds (use gaussian_initial_state on the host and
//    copy it for langevin_chain's N(0, I) start).
//  - one thread per chain; the state and the gradient stay in the thread (MaxDim floats each,
//    dim <= MaxDim), noise keyed as langevin_sample: (seed, first_chain + i, step_offset + t),
//    so a chain's result does not depend on n, the launch or the backend (up to float rounding
//    and the device's __sincosf in the Box-Muller transform: the CPU and CUDA chains agree to
//    about 1e-5 for well-conditioned energies).
//  - stream-ordered: kernels only, enqueued on `stream`, which must belong to the current
//    device. No allocation, no synchronisation, no cudaSetDevice; safe in CUDA graph capture
//    (step sizes are passed by value, at most kCustomStepsPerLaunch steps per kernel).
//  - options: every field except noise (a host buffer), thin and diagnostics, which throw
//    InvalidArgument. Divergence is not detected (that would need a synchronisation): check
//    the result when it matters.
//  - throws InvalidArgument for a null x, ldx < dim, dim > MaxDim, n < 1, bad options or a
//    stream of another device; CudaError when the launch fails.
#pragma once

#if !defined(__CUDACC__)
#error "cuebm/custom_energy_cuda.hpp must be compiled by nvcc (use custom_energy.hpp otherwise)"
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "cuebm/runtime/device_random.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/custom_energy.hpp"
#include "cuebm/sampling/langevin.hpp"

namespace cuebm {

// Steps one kernel launch runs (its step sizes travel as a kernel parameter).
inline constexpr int kCustomStepsPerLaunch = 128;

namespace detail {

struct CustomStepChunk {
  float eta[kCustomStepsPerLaunch];
  float coef[kCustomStepsPerLaunch];
  int count;
  uint64_t first_step;  // step_offset + index of the chunk's first step
};

template <int MaxDim, class Energy>
__global__ void __launch_bounds__(128)
    custom_langevin_kernel(Energy energy, int dim, float* x, int64_t ldx, int64_t n,
                           CustomStepChunk chunk, uint64_t seed, uint64_t first_chain, bool clamp,
                           float lo, float hi) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float xs[MaxDim], g[MaxDim];
  float* row = x + i * ldx;
  for (int d = 0; d < dim; ++d) xs[d] = row[d];
  const int q_blocks = (dim + 3) / 4;
  for (int t = 0; t < chunk.count; ++t) {
    energy.grad(xs, g);
    const float eta = chunk.eta[t], coef = chunk.coef[t];
    for (int q = 0; q < q_blocks; ++q) {
      float eps[4];
      rng::langevin_noise4(seed, first_chain + static_cast<uint64_t>(i), chunk.first_step + t, dim,
                           q, eps);
      for (int k = 0; k < 4 && 4 * q + k < dim; ++k) {
        const int d = 4 * q + k;
        float xi = xs[d] - eta * g[d] + coef * eps[k];
        if (clamp) xi = xi < lo ? lo : (xi > hi ? hi : xi);
        xs[d] = xi;
      }
    }
  }
  for (int d = 0; d < dim; ++d) row[d] = xs[d];
}

inline void check_stream_device(cudaStream_t stream, const char* who) {
  // cudaStreamGetDevice is not permitted on a capturing stream (it fails and invalidates the
  // capture), so a capturing stream is not checked.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  cudaError_t st = cudaStreamIsCapturing(stream, &capture);
  if (st == cudaSuccess && capture != cudaStreamCaptureStatusNone) return;
  int current = 0, owner = 0;
  if (st == cudaSuccess) st = cudaGetDevice(&current);
  if (st == cudaSuccess) st = cudaStreamGetDevice(stream, &owner);
  if (st != cudaSuccess)
    throw CudaError(std::string(who) +
                    ": cannot query the stream's device: " + cudaGetErrorString(st));
  if (owner != current)
    throw InvalidArgument(std::string(who) + ": stream belongs to device " + std::to_string(owner) +
                          " but the current device is " + std::to_string(current) +
                          " (call cudaSetDevice first)");
}

}  // namespace detail

template <int MaxDim = 32, CustomEnergy Energy>
void langevin_chain_cuda(const Energy& energy, int dim, float* x, int64_t ldx, int64_t n,
                         const LangevinOptions& options, cudaStream_t stream) {
  constexpr const char* kWho = "langevin_chain_cuda";
  static_assert(MaxDim >= 1, "MaxDim must be positive");
  const detail::CustomChainSteps steps = detail::custom_chain_steps(options, dim, n, kWho);
  const std::string w(kWho);
  if (!x) throw InvalidArgument(w + ": x is null");
  if (dim > MaxDim)
    throw InvalidArgument(w + ": dim " + std::to_string(dim) + " exceeds MaxDim " +
                          std::to_string(MaxDim) + " (pass a larger MaxDim template argument)");
  if (ldx < dim)
    throw InvalidArgument(w + ": ldx " + std::to_string(ldx) + " is smaller than dim " +
                          std::to_string(dim));
  if (options.noise)
    throw InvalidArgument(w + ": options.noise (a host buffer) is not supported on the device");
  if (options.thin > 0 || options.diagnostics)
    throw InvalidArgument(w + ": thin and diagnostics are not supported on the device");
  detail::check_stream_device(stream, kWho);
  constexpr int kThreads = 128;
  const unsigned grid = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  for (int t0 = 0; t0 < options.n_steps; t0 += kCustomStepsPerLaunch) {
    detail::CustomStepChunk chunk{};
    chunk.count = std::min(kCustomStepsPerLaunch, options.n_steps - t0);
    chunk.first_step = options.step_offset + static_cast<uint64_t>(t0);
    for (int t = 0; t < chunk.count; ++t) {
      chunk.eta[t] = steps.eta[t0 + t];
      chunk.coef[t] = steps.noise_coef[t0 + t];
    }
    detail::custom_langevin_kernel<MaxDim, Energy><<<grid, kThreads, 0, stream>>>(
        energy, dim, x, ldx, n, chunk, options.seed, options.first_chain, steps.clamp,
        steps.clamp_min, steps.clamp_max);
    const cudaError_t st = cudaGetLastError();
    if (st != cudaSuccess) throw CudaError(w + ": kernel launch failed: " + cudaGetErrorString(st));
  }
}

}  // namespace cuebm
