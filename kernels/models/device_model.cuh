// An energy on the device, and how its kernels are launched. Device-side models: the fused MLP
// (hidden layers of one width W, known at compile time), the general MLP (any widths, runtime
// loops) and the analytic energies, behind one per-row interface the Langevin, energy and CD
// kernels share:
//   float& x(i)        coordinate i of this row's state
//   float forward()    E(x), keeping what backward needs
//   backward(f)        after forward: calls f(q, g) for q = 0 .. ceil(D/4) - 1 in order, g the
//                      float4 of dE/dx for coordinates 4q .. 4q + 3 (entries >= D are 0)
//
//
// The models: kernels/models/fused_mlp.cuh, generic_mlp.cuh, analytic_model.cuh. This file: the
// host-side DeviceModel (weights uploaded once), the launch planner's device half (limits of
// the current device, the test knobs; the rule itself is host/models/launch_plan.hpp), and the
// energy/gradient launches.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "cuebm/models/activation.hpp"
#include "cuebm/models/energy.hpp"
#include "host/models/launch_plan.hpp"
#include "kernels/models/analytic_model.cuh"
#include "kernels/models/fused_mlp.cuh"
#include "kernels/models/generic_mlp.cuh"
#include "kernels/runtime/cuda_check.cuh"

namespace cuebm::detail {

// Host-side description of an energy on the device (weights uploaded once).
struct DeviceModel {
  enum class Kind { kFused, kGeneric, kAnalytic };
  Kind kind = Kind::kGeneric;
  int dim = 0;
  Activation act = Activation::kReLU;
  // MLPs: flat parameters (PyTorch order) on the device.
  DeviceBuffer<float> flat;
  std::size_t n_params = 0;
  // Fused.
  FusedLayout lay;
  DeviceBuffer<float> packed;
  // Generic.
  DeviceBuffer<int64_t> meta;
  std::vector<int64_t> host_meta;  // the same on the host (GenericMetaView over it)
  int n_lin = 0;
  int64_t generic_cols = 0;  // columns of per-row storage
  // Analytic.
  AnalyticParams ap{};
  DeviceBuffer<float> mean, precision;
};

// Builds the device description of `energy` (Mlp or AnalyticEnergy; anything else throws
// InvalidArgument). Uploads synchronously on `stream`.
void make_device_model(const Energy& energy, DeviceModel& out, cudaStream_t stream);
// Which MLP path a model of these widths takes ("fused<W>" or "general").
bool fused_eligible(const std::vector<int>& widths, int& width);
// The packed layout of the fused MLP of hidden width `width` (one of the fused widths).
FusedLayout fused_layout_for(int width, int dim, int hidden_layers);

// Threads per block and shared memory for fused kernel `kernel` on n rows on the current device
// (host/models/launch_plan.hpp: the rule, and FusedLaunch); threads == 0 when the per-row storage
// does not fit (use the general path). Honours set_cuda_block_size_for_testing.
FusedLaunch plan_fused_launch(const FusedLayout& lay, int64_t n, FusedKernel kernel);
// cudaGetDevice, checked.
int current_device();
// The limits of `device` (cached per device: the attributes do not change).
const LaunchLimits& device_launch_limits(int device);
// Threads per block of the general and analytic row kernels.
int row_block_size();
// Current test knob (0 = automatic).
int block_size_knob();
bool general_path_forced();
// Rows processed per launch of the general/analytic kernels (their storage is per launch).
int64_t row_chunk(int64_t n, int64_t per_row_floats);

// Raises `kernel`'s dynamic shared-memory limit to the current device's opt-in maximum before
// a launch. Every caller sets the same value: setting each launch's own size instead would let
// another host thread lower the limit between this thread's set and its launch. Set per launch
// (not cached) because cudaDeviceReset restores the default.
template <class Kernel>
void allow_opt_in_shared_memory(Kernel* kernel) {
  const int limit = static_cast<int>(device_launch_limits(current_device()).smem_optin_per_block);
  CUEBM_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
}

// Energies (and gradients when grad != null) of n rows, row-major x on the device.
void launch_eval(const DeviceModel& m, const float* x, int64_t n, float* e, float* grad,
                 float* scratch, int64_t scratch_floats, cudaStream_t stream);
// Scratch floats launch_eval needs for n rows.
int64_t eval_scratch_floats(const DeviceModel& m, int64_t n);

template <int W, Activation A>
__global__ void __launch_bounds__(kMaxRowBlock, 1)
    fused_eval_kernel(const float* __restrict__ x, int64_t n, float* __restrict__ e,
                      float* __restrict__ grad, FusedLayout lay, const float* __restrict__ packed,
                      bool in_smem) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const float* wts = load_weights(packed, lay.total, in_smem, smem);
  const int T = blockDim.x, D = lay.dim;
  const int64_t row = blockIdx.x * static_cast<int64_t>(T) + threadIdx.x;
  if (row >= n) return;  // no block synchronisation after this point
  float* col = smem + (in_smem ? lay.total : 0) + threadIdx.x;
  FusedModel<W, A> m{wts, lay, col, col + D * T, col + (D + lay.hidden_layers * W) * T, T};
  for (int i = 0; i < D; ++i) m.x(i) = x[row * D + i];
  const float ev = m.forward();
  if (e) e[row] = ev;
  if (grad)
    m.backward([&](int q, float4 g) {
      const float gv[4] = {g.x, g.y, g.z, g.w};
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (4 * q + c < D) grad[row * D + 4 * q + c] = gv[c];
    });
}

template <int W>
void launch_fused_eval(Activation act, const FusedLaunch& fl, unsigned blocks, const float* x,
                       int64_t n, float* e, float* grad, const FusedLayout& lay,
                       const float* packed, cudaStream_t stream) {
  dispatch_activation(act, [&]<Activation A>() {
    allow_opt_in_shared_memory(fused_eval_kernel<W, A>);
    fused_eval_kernel<W, A><<<blocks, fl.threads, fl.smem_bytes, stream>>>(
        x, n, e, grad, lay, packed, fl.weights_in_smem);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
}

#define CUEBM_FUSED_EVAL_INSTANCES(EXTERN, W)                                         \
  EXTERN template void launch_fused_eval<W>(Activation, const FusedLaunch&, unsigned, \
                                            const float*, int64_t, float*, float*,    \
                                            const FusedLayout&, const float*, cudaStream_t);
#define CUEBM_EXTERN extern
CUEBM_FUSED_EVAL_INSTANCES(CUEBM_EXTERN, 16)
CUEBM_FUSED_EVAL_INSTANCES(CUEBM_EXTERN, 32)
CUEBM_FUSED_EVAL_INSTANCES(CUEBM_EXTERN, 64)
CUEBM_FUSED_EVAL_INSTANCES(CUEBM_EXTERN, 128)
CUEBM_FUSED_EVAL_INSTANCES(CUEBM_EXTERN, 256)
#undef CUEBM_EXTERN

}  // namespace cuebm::detail
