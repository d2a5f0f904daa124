// The stream-ordered API (cuebm/stream_api.hpp) on the device: the general MLP path of
// kernels/models/device_model.cuh (GenericModel, run_chain) on the caller's parameters and
// workspace. Only kernels are enqueued: the model description and the per-step sizes travel to the
// workspace as kernel parameters, so nothing is allocated, copied from pageable memory or
// synchronised, and the calls can be captured into a CUDA graph. Every reduction has a fixed
// order (no atomics), so replays are bit-identical.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "host/training/stream_api_impl.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/runtime/cuda_check.cuh"
#include "kernels/sampling/chains.cuh"
#include "kernels/sampling/fused_chain.cuh"
#include "kernels/training/optim.cuh"

namespace cuebm::detail {
namespace {

constexpr int kThreads = 128;
constexpr int kStepChunk = 128;
constexpr int kReduceThreads = 256;

struct MetaParam {
  int64_t v[kStreamMetaCapacity];
  int len;
};
struct StepParam {
  float eta[kStepChunk];
  float coef[kStepChunk];
  int count;
  int first;
};

unsigned grid_for(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

template <class T>
T* at(char* ws, std::size_t offset) {
  return reinterpret_cast<T*>(ws + offset);
}

void check_stream(cudaStream_t stream, const char* who) {
  // cudaStreamGetDevice is not permitted on a capturing stream (it fails and invalidates the
  // capture): a capturing stream is not checked; the launches it records name it.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUEBM_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;
  int current = 0, owner = 0;
  CUEBM_CUDA_CHECK(cudaGetDevice(&current));
  CUEBM_CUDA_CHECK(cudaStreamGetDevice(stream, &owner));
  if (owner != current)
    throw InvalidArgument(std::string(who) + ": stream belongs to device " + std::to_string(owner) +
                          " but the current device is " + std::to_string(current) +
                          " (call cudaSetDevice first)");
}

__global__ void fill_meta_kernel(MetaParam p, int64_t* out) {
  const int i = threadIdx.x;
  if (i < p.len) out[i] = p.v[i];
}

__global__ void fill_steps_kernel(StepParam p, float* eta, float* coef) {
  const int i = threadIdx.x;
  if (i < p.count) {
    eta[p.first + i] = p.eta[i];
    coef[p.first + i] = p.coef[i];
  }
}

__global__ void copy_rows_kernel(const float* src, int64_t lds, float* dst, int64_t ldd, int64_t n,
                                 int dim) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * dim) return;
  const int64_t r = i / dim, d = i % dim;
  dst[r * ldd + d] = src[r * lds + d];
}

void copy_rows(const float* src, int64_t lds, float* dst, int64_t ldd, int64_t n, int dim,
               cudaStream_t stream) {
  copy_rows_kernel<<<grid_for(n * dim, 256), 256, 0, stream>>>(src, lds, dst, ldd, n, dim);
  CUEBM_CUDA_CHECK_LAUNCH();
}

GenericNet upload_meta(const MlpShape& s, const float* params, char* ws, const WsLayout& lay,
                       cudaStream_t stream) {
  MetaParam p{};
  p.len = static_cast<int>(s.meta.size());
  std::copy(s.meta.begin(), s.meta.end(), p.v);
  int64_t* meta = at<int64_t>(ws, lay.meta);
  fill_meta_kernel<<<1, kStreamMetaCapacity, 0, stream>>>(p, meta);
  CUEBM_CUDA_CHECK_LAUNCH();
  return GenericNet{params, meta, s.n_lin};
}

void upload_steps(const CustomChainSteps& steps, char* ws, const WsLayout& lay,
                  cudaStream_t stream) {
  const int n = static_cast<int>(steps.eta.size());
  for (int t0 = 0; t0 < n; t0 += kStepChunk) {
    StepParam p{};
    p.count = std::min(kStepChunk, n - t0);
    p.first = t0;
    for (int t = 0; t < p.count; ++t) {
      p.eta[t] = steps.eta[t0 + t];
      p.coef[t] = steps.noise_coef[t0 + t];
    }
    fill_steps_kernel<<<1, kStepChunk, 0, stream>>>(p, at<float>(ws, lay.eta),
                                                    at<float>(ws, lay.coef));
    CUEBM_CUDA_CHECK_LAUNCH();
  }
}

template <Activation A>
__global__ void __launch_bounds__(kThreads)
    eval_kernel(GenericNet net, int dim, const float* x, int64_t ldx, int64_t n, float* e,
                float* grad, int64_t ldg, float* scratch, int64_t ld) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row >= n) return;
  GenericModel<A> m{net, scratch + row, ld, dim};
  for (int i = 0; i < dim; ++i) m.x(i) = x[row * ldx + i];
  const float en = m.forward();
  if (e) e[row] = en;
  if (grad)
    m.backward([&](int q, float4 g) {
      const float gv[4] = {g.x, g.y, g.z, g.w};
      for (int c = 0; c < 4 && 4 * q + c < dim; ++c) grad[row * ldg + 4 * q + c] = gv[c];
    });
}

// The chains of langevin_sample's general path (run_chain) on rows [0, a.n_total).
template <Activation A>
__global__ void __launch_bounds__(kThreads)
    chain_kernel(ChainArgs a, GenericNet net, float* scratch, int64_t ld) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if ((row & ~int64_t{31}) >= a.n_total) return;
  const bool valid = row < a.n_total;
  GenericModel<A> m{net, scratch + row, ld, a.dim};
  for (int i = 0; i < a.dim; ++i) m.x(i) = valid ? a.x[row * a.dim + i] : 0.0f;
  run_chain(m, a, row, valid);
}

void launch_chain(const MlpShape& s, Activation act, const GenericNet& net, float* x, int64_t n,
                  const LangevinOptions& o, char* ws, const WsLayout& lay, cudaStream_t stream) {
  if (o.n_steps == 0) return;
  const ChainArgs a =
      make_chain_args(o, x, n, s.dim, o.n_steps, at<float>(ws, lay.eta), at<float>(ws, lay.coef));
  dispatch_activation(act, [&]<Activation A>() {
    chain_kernel<A><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
        a, net, at<float>(ws, lay.scratch), lay.ld);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
}

// ---- CD ----
// Energies of the positives (rows < batch, from data) and negatives (rows >= batch), keeping
// the activations and derivatives in the per-row storage for the backward pass.
template <Activation A>
__global__ void __launch_bounds__(kThreads)
    cd_forward_kernel(GenericNet net, int dim, const float* data, int64_t ldd, const float* neg,
                      int64_t batch, float* energy, float* scratch, int64_t ld) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row >= 2 * batch) return;
  GenericModel<A> m{net, scratch + row, ld, dim};
  const float* src = row < batch ? data + row * ldd : neg + (row - batch) * dim;
  for (int i = 0; i < dim; ++i) m.x(i) = src[i];
  energy[row] = m.forward();
}

// One block: the CD loss (sums in double, fixed order) and the per-row coefficients dL/dE.
__global__ void __launch_bounds__(kReduceThreads)
    cd_loss_kernel(const float* energy, int64_t batch, float reg_weight, float* coeff,
                   float* scalars, float* loss_out) {
  __shared__ double part[4][kReduceThreads];
  const int t = threadIdx.x;
  double s[4] = {0, 0, 0, 0};  // sum E+, sum E-, sum E+^2, sum E-^2
  const float inv_n = 1.0f / static_cast<float>(batch);
  for (int64_t r = t; r < 2 * batch; r += kReduceThreads) {
    const bool pos = r < batch;
    const double e = energy[r];
    s[pos ? 0 : 1] += e;
    s[pos ? 2 : 3] += e * e;
    coeff[r] = cd_coefficient(energy[r], pos, reg_weight, inv_n);
  }
  for (int k = 0; k < 4; ++k) part[k][t] = s[k];
  __syncthreads();
  for (int w = kReduceThreads / 2; w > 0; w /= 2) {
    if (t < w)
      for (int k = 0; k < 4; ++k) part[k][t] += part[k][t + w];
    __syncthreads();
  }
  if (t == 0) {
    const double n = static_cast<double>(batch);
    const double loss =
        part[0][0] / n - part[1][0] / n + reg_weight * (part[2][0] / n + part[3][0] / n);
    scalars[0] = static_cast<float>(loss);
    if (loss_out) *loss_out = static_cast<float>(loss);
  }
}

template <Activation A>
__global__ void __launch_bounds__(kThreads)
    cd_backward_kernel(GenericNet net, int dim, int64_t rows, const float* coeff, float* scratch,
                       int64_t ld) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row >= rows) return;
  GenericModel<A> m{net, scratch + row, ld, dim};
  m.scale_output_delta(coeff[row]);
  m.backward_hidden();
}

// One thread per parameter: its gradient summed over all rows in index order.
__global__ void cd_param_grad_kernel(MetaParam meta, int n_lin, int64_t n_params, int64_t rows,
                                     const float* coeff, const float* scratch, int64_t ld,
                                     float* grad) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= n_params) return;
  const GenericMetaView mv{meta.v, n_lin};
  int l = 0;
  while (l + 1 < n_lin && p >= mv.w_off(l + 1)) ++l;
  const bool is_bias = p >= mv.b_off(l);
  const int n_in = mv.width(l);
  const int64_t j = is_bias ? p - mv.b_off(l) : (p - mv.w_off(l)) / n_in;
  const int64_t k = is_bias ? 0 : (p - mv.w_off(l)) % n_in;
  const bool output = l == n_lin - 1;
  // d(L)/d(pre-activation of unit j of layer l) per row, and the input it multiplies.
  const float* delta = output ? nullptr : scratch + (mv.d_col(l) + j) * ld;
  const float* in = l == 0 ? scratch + k * ld : scratch + (mv.h_col(l - 1) + k) * ld;
  float s = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float d = output ? coeff[r] : delta[r];
    s = is_bias ? s + d : fmaf(d, in[r], s);
  }
  grad[p] = s;
}

// One block: the gradient norm (double, fixed order), the clipping scale, Adam's step
// constants; increments the step unless the loss is not finite.
__global__ void __launch_bounds__(kReduceThreads)
    cd_norm_kernel(const float* grad, int64_t n_params, float max_norm, AdamOptions adam,
                   int64_t* adam_step, float* scalars, float* grad_norm_out) {
  __shared__ double part[kReduceThreads];
  const int t = threadIdx.x;
  double s = 0;
  for (int64_t i = t; i < n_params; i += kReduceThreads)
    s += static_cast<double>(grad[i]) * grad[i];
  part[t] = s;
  __syncthreads();
  for (int w = kReduceThreads / 2; w > 0; w /= 2) {
    if (t < w) part[t] += part[t + w];
    __syncthreads();
  }
  if (t != 0) return;
  const double norm = sqrt(part[0]);
  if (grad_norm_out) *grad_norm_out = static_cast<float>(norm);
  const bool skip = !isfinite(scalars[0]);
  scalars[1] = static_cast<float>(norm);
  scalars[2] =
      max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
  scalars[5] = skip ? 1.0f : 0.0f;
  if (skip) return;
  const int64_t step = *adam_step + 1;
  *adam_step = step;
  const double bc1 = 1.0 - pow(static_cast<double>(adam.beta1), static_cast<double>(step));
  const double bc2 = 1.0 - pow(static_cast<double>(adam.beta2), static_cast<double>(step));
  scalars[3] = static_cast<float>(adam.lr / bc1);
  scalars[4] = static_cast<float>(sqrt(bc2));
}

__global__ void cd_adam_kernel(float* params, float* m, float* v, const float* grad,
                               int64_t n_params, AdamOptions adam, const float* scalars) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n_params || scalars[5] != 0.0f) return;
  const AdamStepConstants c{adam.lr,           adam.beta1, adam.beta2, adam.eps,
                            adam.weight_decay, scalars[3], scalars[4]};
  adam_update(params[i], m[i], v[i], grad[i], scalars[2], c);
}

}  // namespace

void stream_mlp_energy(const MlpShape& s, Activation act, const float* params, const float* x,
                       int64_t ldx, int64_t n, float* e, float* grad, int64_t ldg, char* ws,
                       const WsLayout& lay, cudaStream_t stream) {
  check_stream(stream, "mlp_energy");
  const GenericNet net = upload_meta(s, params, ws, lay, stream);
  dispatch_activation(act, [&]<Activation A>() {
    eval_kernel<A><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
        net, s.dim, x, ldx, n, e, grad, ldg, at<float>(ws, lay.scratch), lay.ld);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
}

void stream_langevin(const MlpShape& s, Activation act, const float* params, float* x, int64_t ldx,
                     int64_t n, const LangevinOptions& o, const CustomChainSteps& steps, char* ws,
                     const WsLayout& lay, cudaStream_t stream) {
  check_stream(stream, "langevin_chain (stream API)");
  if (o.n_steps == 0) return;
  const GenericNet net = upload_meta(s, params, ws, lay, stream);
  upload_steps(steps, ws, lay, stream);
  float* state = x;
  if (ldx != s.dim) {  // run_chain reads and writes contiguous rows
    state = at<float>(ws, lay.xpack);
    copy_rows(x, ldx, state, s.dim, n, s.dim, stream);
  }
  launch_chain(s, act, net, state, n, o, ws, lay, stream);
  if (ldx != s.dim) copy_rows(state, s.dim, x, ldx, n, s.dim, stream);
}

void stream_cd(const MlpShape& s, Activation act, const float* data, int64_t ldd, int64_t batch,
               const CdIterationOptions& o, const CustomChainSteps& steps,
               const CdDeviceState& state, float* loss, float* negatives, float* grad_norm,
               char* ws, const WsLayout& lay, cudaStream_t stream) {
  check_stream(stream, "cd_iteration");
  const GenericNet net = upload_meta(s, state.params, ws, lay, stream);
  upload_steps(steps, ws, lay, stream);
  float* neg = at<float>(ws, lay.neg);
  copy_rows(data, ldd, neg, s.dim, batch, s.dim, stream);
  launch_chain(s, act, net, neg, batch, o.sampler, ws, lay, stream);
  if (negatives) copy_rows(neg, s.dim, negatives, s.dim, batch, s.dim, stream);
  float* energy = at<float>(ws, lay.energy);
  float* coeff = at<float>(ws, lay.coeff);
  float* grad = at<float>(ws, lay.grad);
  float* scalars = at<float>(ws, lay.scalars);
  float* scratch = at<float>(ws, lay.scratch);
  const int64_t rows = 2 * batch;
  dispatch_activation(act, [&]<Activation A>() {
    cd_forward_kernel<A><<<grid_for(rows, kThreads), kThreads, 0, stream>>>(
        net, s.dim, data, ldd, neg, batch, energy, scratch, lay.ld);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
  cd_loss_kernel<<<1, kReduceThreads, 0, stream>>>(energy, batch, o.energy_reg_weight, coeff,
                                                   scalars, loss);
  CUEBM_CUDA_CHECK_LAUNCH();
  dispatch_activation(act, [&]<Activation A>() {
    cd_backward_kernel<A><<<grid_for(rows, kThreads), kThreads, 0, stream>>>(
        net, s.dim, rows, coeff, scratch, lay.ld);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
  MetaParam meta{};
  meta.len = static_cast<int>(s.meta.size());
  std::copy(s.meta.begin(), s.meta.end(), meta.v);
  const int64_t n_params = static_cast<int64_t>(s.n_params);
  cd_param_grad_kernel<<<grid_for(n_params, kThreads), kThreads, 0, stream>>>(
      meta, s.n_lin, n_params, rows, coeff, scratch, lay.ld, grad);
  CUEBM_CUDA_CHECK_LAUNCH();
  cd_norm_kernel<<<1, kReduceThreads, 0, stream>>>(grad, n_params, o.max_grad_norm, o.adam,
                                                   state.adam_step, scalars, grad_norm);
  CUEBM_CUDA_CHECK_LAUNCH();
  cd_adam_kernel<<<grid_for(n_params, 256), 256, 0, stream>>>(
      state.params, state.adam_m, state.adam_v, grad, n_params, o.adam, scalars);
  CUEBM_CUDA_CHECK_LAUNCH();
}

}  // namespace cuebm::detail
