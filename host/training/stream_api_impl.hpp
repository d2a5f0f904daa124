// Internals of the stream-ordered API (cuebm/stream_api.hpp): validation and workspace layout
// (host/training/stream_api_common.cpp, every build) and the launchers
// (kernels/training/stream_api.cu in the CUDA build, host/training/stream_api_stub.cpp otherwise).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuebm/sampling/custom_energy.hpp"
#include "cuebm/training/stream_api.hpp"

namespace cuebm::detail {

inline constexpr int kStreamMaxLinear = 12;  // linear layers (11 hidden)
inline constexpr int kStreamMetaCapacity = 64;

// The general-path description of an MLP (see GenericNet in kernels/models/device_model.cuh).
struct MlpShape {
  std::vector<int> widths;
  int n_lin = 0, dim = 0;
  int64_t cols = 0;  // per-row storage: x, then per hidden layer its deltas and activations
  std::size_t n_params = 0;
  std::vector<int64_t> meta;  // widths, weight offsets, bias offsets, delta and activation cols
};
MlpShape mlp_shape(const MlpView& model, const char* who);

// Byte offsets into the workspace, each 256-byte aligned; 0-sized parts have offset 0.
struct WsLayout {
  std::size_t meta = 0, eta = 0, coef = 0, xpack = 0, neg = 0, energy = 0, coeff = 0, grad = 0,
              scalars = 0, scratch = 0, total = 0;
  int64_t ld = 0;  // column stride of the per-row storage (rows rounded up to 32)
};
WsLayout energy_layout(const MlpShape& s, int64_t n);
WsLayout langevin_layout(const MlpShape& s, int64_t n, int n_steps, int64_t ldx);
WsLayout cd_layout(const MlpShape& s, int64_t batch, int k_steps);

void require_ptr(const void* p, const char* name, const char* who);
void require_ld(int64_t ld, int row_length, const char* name, const char* who);
void require_rows(int64_t n, const char* name, const char* who);
void require_workspace(const void* ws, std::size_t bytes, std::size_t needed, const char* who);

// Launchers: check the stream's device, then enqueue. `ws` is the validated workspace.
void stream_mlp_energy(const MlpShape& s, Activation act, const float* params, const float* x,
                       int64_t ldx, int64_t n, float* e, float* grad, int64_t ldg, char* ws,
                       const WsLayout& lay, cudaStream_t stream);
void stream_langevin(const MlpShape& s, Activation act, const float* params, float* x, int64_t ldx,
                     int64_t n, const LangevinOptions& o, const CustomChainSteps& steps, char* ws,
                     const WsLayout& lay, cudaStream_t stream);
void stream_cd(const MlpShape& s, Activation act, const float* data, int64_t ldd, int64_t batch,
               const CdIterationOptions& o, const CustomChainSteps& steps,
               const CdDeviceState& state, float* loss, float* negatives, float* grad_norm,
               char* ws, const WsLayout& lay, cudaStream_t stream);

}  // namespace cuebm::detail
