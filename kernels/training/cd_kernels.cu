// One CD / PCD iteration on the device, reproducing host/training/cd_trainer.cpp:
//   batch upload (pinned, async) -> negatives (copy of the batch, or gather from the device
//   replay buffer + nudge, with the row choices and nudge normals drawn on the host from the
//   same RandomStream as the CPU and uploaded asynchronously) -> k steps of the negative
//   sampler (Langevin, or MALA, HMC or tempering through kernels/training/device_negatives.cuh:
//   one launch, and one for the acceptance rate) -> energies, CD coefficients and back-propagated
//   deltas of all 2B rows (one kernel, general MLP storage) -> loss (one block, fixed-order double
//   reduction) -> weight gradients as cuBLAS GEMMs over the stored activations and deltas
//   (deterministic, and fast for any widths) -> global norm and clip scale (one block, fixed order)
//   -> Adam (skipped on the device when the loss is not finite) -> FIFO scatter into the buffer ->
//   repack of the fused weights.
// With a score-matching loss (sm, ssm, dsm) the iteration is: batch upload -> the ScoreLoss's
// fused kernels (score_matching.hpp, evaluate_on_device: loss and parameter gradient, on the
// trainer's stream over the device-resident parameters) -> the batch's energies (launch_eval) and
// the statistics (one block) -> the same clipping, Adam and repack; no negatives, no buffer.
// Nothing is allocated and the host does not wait inside the iteration; it synchronises once at
// the end, after copying back the kStats doubles of StepStats (48 bytes, pinned). The model's
// parameters, Adam's moments, the negatives and the replay buffer stay on the device: the host
// mirrors (the Mlp's parameters, CDTrainer's Adam, negatives and buffer) are refreshed only by
// sync_to_host, which CDTrainer's accessors and CDTrainer::sync_to_host call (one download and
// one synchronisation, of what is stale and asked for). Host writes to the model (and to the
// optimiser once handed out) are detected against what the host last saw and uploaded first.
#include <cublas_v2.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "host/models/cuda_models.hpp"
#include "host/runtime/cuda_device.hpp"
#include "host/runtime/device_reduce.hpp"
#include "host/runtime/random.hpp"
#include "host/sampling/cuda_langevin.hpp"
#include "host/sampling/cuda_tempering.hpp"
#include "host/sampling/langevin_options.hpp"
#include "host/training/cuda_trainer.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/chains.cuh"
#include "kernels/sampling/fused_chain.cuh"
#include "kernels/training/device_negatives.cuh"
#include "kernels/training/optim.cuh"

namespace cuebm::detail {
namespace {

// Must equal the constants of host/training/cd_trainer.cpp.
constexpr uint64_t kBufferChainBase = uint64_t{1} << 40;
constexpr uint64_t kBufferInitSubsequence = uint64_t{1} << 62;

constexpr int kReduceThreads = 256;
// stats: [0] loss, [1] mean E+, [2] mean E-, [3] grad norm, [4] 1 when the loss is finite,
// [5] the negatives' acceptance rate. [0..4] are written every step (cd_loss_kernel, then
// grad_norm_kernel overwrites [3]), [5] by MALA, HMC and tempering steps and set to NaN once for
// Langevin; all six are copied back: nothing uninitialised crosses to the host.
constexpr int kStats = 6;
constexpr int kStatAcceptance = 5;

std::atomic<int64_t> g_d2h_bytes{0}, g_h2d_bytes{0}, g_syncs{0};

class CublasHandle {
 public:
  CublasHandle() { CUEBM_CUBLAS_CHECK(cublasCreate(&h_)); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  ~CublasHandle() {
    if (h_) cublasDestroy(h_);
  }
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

__device__ void block_sum(double* sh, double* v, int count) {
  // sh: count x kReduceThreads; fixed tree: the same order every run.
  const int t = threadIdx.x;
  for (int c = 0; c < count; ++c) sh[c * kReduceThreads + t] = v[c];
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s >>= 1) {
    if (t < s)
      for (int c = 0; c < count; ++c) sh[c * kReduceThreads + t] += sh[c * kReduceThreads + t + s];
    __syncthreads();
  }
  for (int c = 0; c < count; ++c) v[c] = sh[c * kReduceThreads];
}

// Energies of the 2 rows rows (positives first), their CD coefficients, and the deltas of every
// layer (scaled by the coefficient) in the general MLP's column storage.
template <Activation A>
__global__ void __launch_bounds__(kMaxRowBlock)
    cd_rows_kernel(const float* __restrict__ both, int64_t rows, GenericNet net, int dim,
                   float* scratch, int64_t ld, int64_t out_col, float reg_weight,
                   float* __restrict__ energies) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= 2 * rows) return;
  GenericModel<A> m{net, scratch + r, ld, dim};
  for (int i = 0; i < dim; ++i) m.x(i) = both[r * dim + i];
  const float e = m.forward();
  energies[r] = e;
  const float c = cd_coefficient(e, r < rows, reg_weight, 1.0f / static_cast<float>(rows));
  scratch[out_col * ld + r] = c;
  m.scale_output_delta(c);
  m.backward_hidden();
}

__global__ void __launch_bounds__(kReduceThreads)
    cd_loss_kernel(const float* __restrict__ e, int64_t rows, double w, double* stats) {
  __shared__ double sh[4 * kReduceThreads];
  double v[4] = {0, 0, 0, 0};
  for (int64_t i = threadIdx.x; i < rows; i += kReduceThreads) {
    const double p = e[i], n = e[rows + i];
    v[0] += p;
    v[1] += n;
    v[2] += p * p;
    v[3] += n * n;
  }
  block_sum(sh, v, 4);
  if (threadIdx.x == 0) {
    const double inv = 1.0 / static_cast<double>(rows);
    const double loss = v[0] * inv - v[1] * inv + w * (v[2] * inv + v[3] * inv);
    stats[0] = loss;
    stats[1] = v[0] / static_cast<double>(rows);
    stats[2] = v[1] / static_cast<double>(rows);
    stats[3] = 0.0;
    stats[4] = isfinite(loss) ? 1.0 : 0.0;
  }
}

// Score matching's statistics: the loss (computed on the device by ScoreLoss), mean E(x_data),
// no negatives (E- NaN).
__global__ void __launch_bounds__(kReduceThreads)
    score_stats_kernel(const float* __restrict__ e, int64_t rows, const double* loss,
                       double* stats) {
  __shared__ double sh[kReduceThreads];
  double v[1] = {0};
  for (int64_t i = threadIdx.x; i < rows; i += kReduceThreads) v[0] += e[i];
  block_sum(sh, v, 1);
  if (threadIdx.x == 0) {
    const double l = *loss;
    stats[0] = l;
    stats[1] = v[0] / static_cast<double>(rows);
    stats[2] = NAN;
    stats[3] = 0.0;
    stats[4] = isfinite(l) ? 1.0 : 0.0;
  }
}

__global__ void __launch_bounds__(kReduceThreads)
    grad_norm_kernel(const float* __restrict__ g, int64_t n, double max_norm, double* stats,
                     float* scale) {
  __shared__ double sh[kReduceThreads];
  double v[1] = {0};
  for (int64_t i = threadIdx.x; i < n; i += kReduceThreads)
    v[0] += static_cast<double>(g[i]) * g[i];
  block_sum(sh, v, 1);
  if (threadIdx.x == 0) {
    const double norm = sqrt(v[0]);
    stats[3] = norm;
    // clip_grad_norm (optim.cpp): scale by max_norm / (norm + 1e-6) when norm > max_norm.
    *scale = max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
  }
}

__global__ void adam_kernel(float* __restrict__ p, float* __restrict__ m, float* __restrict__ v,
                            const float* __restrict__ g, int64_t n, const float* scale,
                            const double* stats, AdamStepConstants c) {
  if (stats[4] == 0.0) return;  // non-finite loss: the update is skipped
  const float s = *scale;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    adam_update(p[i], m[i], v[i], g[i], s, c);
}

__global__ void nudge_rows_kernel(const int64_t* refresh, int64_t n_new, int dim,
                                  const float* __restrict__ normals, bool reinit,
                                  float* __restrict__ neg) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n_new * dim) return;
  const int64_t j = i / dim, k = i % dim;
  float& x = neg[refresh[j] * dim + k];
  x = reinit ? normals[i] : fmaf(0.01f, normals[i], x);
}

// FIFO write of the negatives (cd_trainer.cpp write_buffer), only when the update was made.
__global__ void scatter_rows_kernel(const float* __restrict__ neg, int64_t rows, int dim,
                                    float* __restrict__ buffer, int64_t size, int64_t ptr,
                                    bool per_chain, const double* stats) {
  if (stats[4] == 0.0) return;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (per_chain) {
    if (i < rows * dim) buffer[i] = neg[i];
  } else if (rows >= size) {
    if (i < size * dim) buffer[i] = neg[(rows - size) * dim + i];
  } else if (i < rows * dim) {
    const int64_t r = i / dim, k = i % dim;
    buffer[((ptr + r) % size) * dim + k] = neg[i];
  }
}

// Makes `device` current and returns the previous one.
int make_current(int device) {
  int previous = 0;
  CUEBM_CUDA_CHECK(cudaGetDevice(&previous));
  CUEBM_CUDA_CHECK(cudaSetDevice(device));
  return previous;
}

unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>(std::max<int64_t>(1, (n + threads - 1) / threads));
}

class CudaCDTrainer final : public CudaCDTrainerImpl {
 public:
  CudaCDTrainer(Mlp& model, Adam& adam, const TrainerOptions& options, int64_t max_batch,
                int device)
      : model_(model),
        adam_(adam),
        o_(options),
        max_batch_(max_batch),
        device_(device),
        previous_device_(make_current(device)) {
    cudaStream_t s = stream_.get();
    CUEBM_CUBLAS_CHECK(cublasSetStream(handle_.get(), s));
    CUEBM_CUBLAS_CHECK(cublasSetMathMode(handle_.get(), CUBLAS_DEFAULT_MATH));  // no TF32
    make_device_model(model, dm_, s);
    dim_ = model.dim();
    P_ = static_cast<int64_t>(model.num_parameters());
    if (score_matching_) {
      init_score_matching(max_batch);
      CUEBM_CUDA_CHECK(cudaSetDevice(previous_device_));
      return;
    }
    const bool persistent = o_.cd.persistent;
    buffer_size_ = persistent ? o_.cd.buffer_size : 0;

    ld_ = (2 * max_batch + 31) / 32 * 32;
    out_col_ = dm_.generic_cols;
    cd_scratch_.resize(ld_ * (dm_.generic_cols + 1));
    if (o_.negatives.kind == NegativeSampler::langevin) {
      const int64_t chain_rows =
          std::max(max_batch, persistent && o_.cd.init_steps > 0 ? buffer_size_ : int64_t{0});
      chain_scratch_floats_ = eval_scratch_floats(dm_, chain_rows);
      chain_scratch_.resize(chain_scratch_floats_);
    } else {  // the replay buffer is initialised in batches of at most max_batch rows
      negatives_.emplace(dm_, o_, max_batch, s);
    }
    both_.resize(2 * max_batch * dim_);
    energies_.resize(2 * max_batch);
    grad_.resize(P_);
    m_.resize(P_);
    v_.resize(P_);
    stats_.resize(kStats);
    scale_.resize(1);
    ones_.resize(2 * max_batch);
    const StepArrays k_steps = make_step_arrays(o_.sampler, o_.cd.k_steps);
    eta_.resize(k_steps.eta.size());
    coef_.resize(k_steps.eta.size());
    if (persistent) {
      buffer_.resize(buffer_size_ * dim_);
      rows_idx_.resize(2 * max_batch);
      nudge_.resize(max_batch * dim_);
      pin_rows_.resize(2 * max_batch);
      pin_nudge_.resize(max_batch * dim_);
      pin_buffer_.resize(buffer_size_ * dim_);
      if (o_.cd.init_steps > 0) {
        const StepArrays init = make_step_arrays(o_.sampler, o_.cd.init_steps);
        init_eta_.resize(init.eta.size());
        init_coef_.resize(init.eta.size());
        upload(init_eta_, init.eta.data(), s);
        upload(init_coef_, init.noise_coef.data(), s);
      }
    }
    pin_batch_.resize(max_batch * dim_);
    pin_stats_.resize(kStats);
    pin_params_.resize(P_);
    pin_m_.resize(P_);
    pin_v_.resize(P_);
    pin_neg_.resize(max_batch * dim_);

    const std::vector<float> ones(2 * max_batch, 1.0f);
    upload(ones_, ones.data(), s);
    const std::vector<double> no_stats(kStats, NAN);  // Langevin's acceptance stays NaN
    upload(stats_, no_stats.data(), s);
    upload(eta_, k_steps.eta.data(), s);
    upload(coef_, k_steps.noise_coef.data(), s);
    shadow_params_.assign(model.parameters().begin(), model.parameters().end());
    shadow_m_.assign(adam.first_moment().begin(), adam.first_moment().end());
    shadow_v_.assign(adam.second_moment().begin(), adam.second_moment().end());
    adam_steps_ = shadow_steps_ = adam.steps();
    upload(m_, shadow_m_.data(), s);
    upload(v_, shadow_v_.data(), s);
    synchronize(s);
    CUEBM_CUDA_CHECK(cudaSetDevice(previous_device_));
  }

  void load_buffer(const std::vector<float>& buffer, bool ready) override {
    DeviceGuard g(device_);
    buffer_stale_ = false;  // the host's buffer is the state now
    if (!ready || static_cast<int64_t>(buffer.size()) != buffer_size_ * dim_) return;
    // From pageable memory: staged at the call, ahead of the next step on the same stream.
    upload(buffer_, buffer.data(), stream_.get());
  }

  void optimizer_handed_out() override { adam_handed_out_ = true; }

  StepStats step(const float* batch, int64_t rows, CudaTrainerState& st) override {
    if (score_matching_) return score_matching_step(batch, rows, st);
    DeviceGuard g(device_);
    cudaStream_t s = stream_.get();
    const int d = dim_;
    adopt_host_changes(s);

    std::memcpy(pin_batch_.data(), batch, rows * d * sizeof(float));
    h2d(both_.data(), pin_batch_.data(), rows * d, s);
    float* neg = both_.data() + rows * d;
    if (o_.cd.persistent) {
      if (!st.buffer_ready) init_buffer(st);
      start_negatives(rows, st, neg);
    } else {
      CUEBM_CUDA_CHECK(cudaMemcpyAsync(neg, both_.data(), rows * d * sizeof(float),
                                       cudaMemcpyDeviceToDevice, s));
    }

    const uint64_t step_offset = static_cast<uint64_t>(st.iteration) * o_.cd.k_steps;
    if (negatives_) {  // batch row i is chain i, as on the CPU
      negatives_->run(neg, rows, 0, step_offset, false, s);
      negatives_->acceptance(rows, stats_.data() + kStatAcceptance, s);
    } else {
      ChainArgs a = chain_args(neg, rows, eta_.data(), coef_.data(), o_.cd.k_steps);
      a.step_offset = step_offset;
      launch_chains(dm_, a, chain_scratch_.data(), chain_scratch_floats_, s);
    }

    // Energies, coefficients, deltas.
    const int rows_block = spread_row_block(2 * rows, device_launch_limits(device_).sm_count, 128);
    const GenericNet net{dm_.flat.data(), dm_.meta.data(), dm_.n_lin};
    dispatch_activation(dm_.act, [&]<Activation A>() {
      cd_rows_kernel<A><<<blocks_for(2 * rows, rows_block), rows_block, 0, s>>>(
          both_.data(), rows, net, d, cd_scratch_.data(), ld_, out_col_, o_.cd.energy_reg_weight,
          energies_.data());
      CUEBM_CUDA_CHECK_LAUNCH();
    });
    cd_loss_kernel<<<1, kReduceThreads, 0, s>>>(
        energies_.data(), rows, static_cast<double>(o_.cd.energy_reg_weight), stats_.data());
    CUEBM_CUDA_CHECK_LAUNCH();

    // Weight gradients: dW_l^T (in x out, column-major = W_l's row-major layout) =
    // H_l^T (in x 2B) * Delta_l (2B x out); db_l = Delta_l^T * ones.
    const GenericMetaView mv{dm_.host_meta.data(), dm_.n_lin};
    const float one = 1.0f, zero = 0.0f;
    const int k = static_cast<int>(2 * rows);
    for (int l = 0; l < dm_.n_lin; ++l) {
      const int in = mv.width(l), out = mv.width(l + 1);
      const float* h = cd_scratch_.data() + (l == 0 ? 0 : mv.h_col(l - 1)) * ld_;
      const float* dl = cd_scratch_.data() + (l + 1 < dm_.n_lin ? mv.d_col(l) : out_col_) * ld_;
      CUEBM_CUBLAS_CHECK(cublasSgemm(handle_.get(), CUBLAS_OP_T, CUBLAS_OP_N, in, out, k, &one, h,
                                     static_cast<int>(ld_), dl, static_cast<int>(ld_), &zero,
                                     grad_.data() + mv.w_off(l), in));
      CUEBM_CUBLAS_CHECK(cublasSgemv(handle_.get(), CUBLAS_OP_T, k, out, &one, dl,
                                     static_cast<int>(ld_), ones_.data(), 1, &zero,
                                     grad_.data() + mv.b_off(l), 1));
    }
    const int64_t t = clip_and_adam(s);
    if (o_.cd.persistent) {
      const int64_t n_el = std::max(rows, buffer_size_) * d;
      scatter_rows_kernel<<<blocks_for(n_el, 256), 256, 0, s>>>(neg, rows, d, buffer_.data(),
                                                                buffer_size_, st.buffer_ptr,
                                                                o_.cd.per_chain, stats_.data());
      CUEBM_CUDA_CHECK_LAUNCH();
    }
    if (dm_.kind == DeviceModel::Kind::kFused)
      launch_pack_fused(dm_.lay, dm_.flat.data(), dm_.packed.data(), s);

    // The one synchronisation: kStats doubles of statistics. The parameters, Adam's moments,
    // the negatives and the replay buffer stay on the device; their host mirrors are stale
    // until sync_to_host.
    download(pin_stats_.data(), stats_.data(), kStats, s);
    synchronize(s);
    neg_rows_ = rows;
    neg_stale_ = true;

    StepStats stats = finish_step(t, st, /*with_negatives=*/true);
    if (stats.skipped) return stats;
    if (o_.cd.persistent) {
      buffer_stale_ = true;
      if (!o_.cd.per_chain && rows < buffer_size_)
        st.buffer_ptr = (st.buffer_ptr + rows) % buffer_size_;
    }
    return stats;
  }

  void sync_to_host(unsigned mirrors, std::vector<float>& negatives,
                    std::vector<float>& buffer) override {
    DeviceGuard g(device_);
    cudaStream_t s = stream_.get();
    adopt_host_changes(s);  // a host write is kept, not overwritten by the device's copy
    const bool model = (mirrors & kMirrorModel) && model_stale_;
    const bool adam = (mirrors & kMirrorOptimizer) && adam_stale_;
    const bool negs = (mirrors & kMirrorNegatives) && neg_stale_;
    const bool buf = (mirrors & kMirrorBuffer) && buffer_stale_;
    if (!model && !adam && !negs && !buf) return;
    if (model) download(pin_params_.data(), dm_.flat.data(), P_, s);
    if (adam) {
      download(pin_m_.data(), m_.data(), P_, s);
      download(pin_v_.data(), v_.data(), P_, s);
    }
    if (negs) download(pin_neg_.data(), both_.data() + neg_rows_ * dim_, neg_rows_ * dim_, s);
    if (buf) download(pin_buffer_.data(), buffer_.data(), buffer_size_ * dim_, s);
    synchronize(s);
    if (model) {
      std::copy_n(pin_params_.data(), P_, model_.parameters().data());
      std::copy_n(pin_params_.data(), P_, shadow_params_.data());
      model_stale_ = false;
    }
    if (adam) {
      std::copy_n(pin_m_.data(), P_, shadow_m_.data());
      std::copy_n(pin_v_.data(), P_, shadow_v_.data());
      adam_.load_state(adam_steps_, shadow_m_, shadow_v_);
      shadow_steps_ = adam_steps_;
      adam_stale_ = false;
    }
    if (negs) {
      std::copy_n(pin_neg_.data(), neg_rows_ * dim_, negatives.data());
      neg_stale_ = false;
    }
    if (buf) {
      buffer.assign(pin_buffer_.data(), pin_buffer_.data() + buffer_size_ * dim_);
      buffer_stale_ = false;
    }
  }

 private:
  template <class T>
  static void h2d(T* dst, const T* src, int64_t count, cudaStream_t s) {
    g_h2d_bytes += count * static_cast<int64_t>(sizeof(T));
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyHostToDevice, s));
  }
  template <class T>
  static void upload(DeviceBuffer<T>& dst, const T* src, cudaStream_t s) {
    h2d(dst.data(), src, static_cast<int64_t>(dst.size()), s);
  }
  template <class T>
  static void download(T* dst, const T* src, int64_t count, cudaStream_t s) {
    g_d2h_bytes += count * static_cast<int64_t>(sizeof(T));
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyDeviceToHost, s));
  }
  static void synchronize(cudaStream_t s) {
    ++g_syncs;
    CUEBM_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  // Global norm and clip scale of grad_, then Adam (skipped on the device when stats_[4] says
  // the loss is not finite). Returns Adam's step count after this step, for the caller to adopt
  // once it knows the step was taken.
  int64_t clip_and_adam(cudaStream_t s) {
    grad_norm_kernel<<<1, kReduceThreads, 0, s>>>(
        grad_.data(), P_, static_cast<double>(o_.max_grad_norm), stats_.data(), scale_.data());
    CUEBM_CUDA_CHECK_LAUNCH();
    // Adam's step count lives here (the host Adam is a mirror, refreshed by sync_to_host).
    const int64_t t = adam_steps_ + 1;
    const AdamOptions& ao = adam_.options();
    const double bc1 = 1.0 - std::pow(static_cast<double>(ao.beta1), static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(static_cast<double>(ao.beta2), static_cast<double>(t));
    const AdamStepConstants c{ao.lr,
                              ao.beta1,
                              ao.beta2,
                              ao.eps,
                              ao.weight_decay,
                              static_cast<float>(ao.lr / bc1),
                              static_cast<float>(std::sqrt(bc2))};
    adam_kernel<<<blocks_for(P_, 256), 256, 0, s>>>(
        dm_.flat.data(), m_.data(), v_.data(), grad_.data(), P_, scale_.data(), stats_.data(), c);
    CUEBM_CUDA_CHECK_LAUNCH();
    return t;
  }

  // The score-matching trainer's device state (the constructor's CD allocations are skipped):
  // the ScoreLoss's workspace for max_batch rows, the batch, its energies, the gradient, Adam's
  // moments and the statistics.
  void init_score_matching(int64_t max_batch) {
    cudaStream_t s = stream_.get();
    score_.emplace(model_.spec(), o_.score, max_batch, Device::cuda(device_));
    eval_scratch_floats_ = eval_scratch_floats(dm_, max_batch);
    eval_scratch_.resize(eval_scratch_floats_);
    both_.resize(max_batch * dim_);
    energies_.resize(max_batch);
    grad_.resize(P_);
    m_.resize(P_);
    v_.resize(P_);
    stats_.resize(kStats);
    scale_.resize(1);
    loss_.resize(1);
    pin_batch_.resize(max_batch * dim_);
    pin_stats_.resize(kStats);
    pin_params_.resize(P_);
    pin_m_.resize(P_);
    pin_v_.resize(P_);
    const std::vector<double> no_stats(kStats, NAN);  // no acceptance rate: stays NaN
    upload(stats_, no_stats.data(), s);
    shadow_params_.assign(model_.parameters().begin(), model_.parameters().end());
    shadow_m_.assign(adam_.first_moment().begin(), adam_.first_moment().end());
    shadow_v_.assign(adam_.second_moment().begin(), adam_.second_moment().end());
    adam_steps_ = shadow_steps_ = adam_.steps();
    upload(m_, shadow_m_.data(), s);
    upload(v_, shadow_v_.data(), s);
    synchronize(s);
  }

  // cd_trainer.cpp score_matching_step on the device, with one synchronisation.
  StepStats score_matching_step(const float* batch, int64_t rows, CudaTrainerState& st) {
    DeviceGuard g(device_);
    cudaStream_t s = stream_.get();
    adopt_host_changes(s);
    std::memcpy(pin_batch_.data(), batch, rows * dim_ * sizeof(float));
    h2d(both_.data(), pin_batch_.data(), rows * dim_, s);
    score_->evaluate_on_device(dm_.flat.data(), both_.data(), rows,
                               static_cast<uint64_t>(st.iteration), grad_.data(), s, loss_.data());
    launch_eval(dm_, both_.data(), rows, energies_.data(), nullptr, eval_scratch_.data(),
                eval_scratch_floats_, s);
    score_stats_kernel<<<1, kReduceThreads, 0, s>>>(energies_.data(), rows, loss_.data(),
                                                    stats_.data());
    CUEBM_CUDA_CHECK_LAUNCH();
    const int64_t t = clip_and_adam(s);
    if (dm_.kind == DeviceModel::Kind::kFused)
      launch_pack_fused(dm_.lay, dm_.flat.data(), dm_.packed.data(), s);
    download(pin_stats_.data(), stats_.data(), kStats, s);
    synchronize(s);  // the one synchronisation

    return finish_step(t, st, /*with_negatives=*/false);
  }

  // The step's statistics, downloaded and synchronised, as StepStats; counts the iteration. A
  // non-finite loss means the device skipped Adam: warn, or throw after more than
  // max_nonfinite_steps in a row, and return with `skipped` set. Otherwise adopt Adam's step
  // count t (from clip_and_adam) and mark the model's and Adam's host mirrors stale.
  // with_negatives: CD's message names E- and the chains; score matching's only E.
  StepStats finish_step(int64_t t, CudaTrainerState& st, bool with_negatives) {
    StepStats stats;
    stats.loss = pin_stats_[0];
    stats.pos_energy = pin_stats_[1];
    stats.neg_energy = pin_stats_[2];
    stats.acceptance = pin_stats_[kStatAcceptance];
    ++st.iteration;
    if (pin_stats_[4] == 0.0) {
      stats.skipped = true;
      ++st.consecutive_nonfinite;
      const std::string energies = with_negatives
                                       ? "E+ mean " + std::to_string(stats.pos_energy) +
                                             ", E- mean " + std::to_string(stats.neg_energy)
                                       : "E mean " + std::to_string(stats.pos_energy);
      st.on_warning("iteration " + std::to_string(st.iteration - 1) + ": loss is not finite (" +
                    energies + "); update skipped");
      if (st.consecutive_nonfinite > o_.max_nonfinite_steps)
        throw NumericalError("CDTrainer: " + std::to_string(st.consecutive_nonfinite) +
                             " consecutive iterations with a non-finite loss (last at iteration " +
                             std::to_string(st.iteration - 1) + "); the model" +
                             (with_negatives ? " or the chains diverged: reduce lr or step_size"
                                             : " diverged: reduce lr"));
      return stats;
    }
    st.consecutive_nonfinite = 0;
    stats.grad_norm = pin_stats_[3];
    adam_steps_ = t;
    model_stale_ = adam_stale_ = true;
    return stats;
  }

  // The trainer's chains: its own seed, chain ids and step offsets (set by the callers), the
  // sampler's clamping.
  ChainArgs chain_args(float* x, int64_t rows, const float* eta, const float* coef,
                       int n_steps) const {
    ChainArgs a = make_chain_args(o_.sampler, x, rows, dim_, n_steps, eta, coef);
    a.seed = o_.seed;
    a.step_offset = 0;
    a.first_chain = 0;
    return a;
  }

  // The host copies are authoritative where the host changed them since it last saw them (the
  // shadows): a checkpoint loaded into the model or the optimiser. They are uploaded. The
  // model's parameters are the caller's Mlp, writable at any time: compared on every step (a
  // host-side memcmp, no device traffic). Adam is reachable only through
  // CDTrainer::optimizer(): compared on every step and sync once it has been handed out.
  void adopt_host_changes(cudaStream_t s) {
    const std::size_t bytes = P_ * sizeof(float);
    if (std::memcmp(model_.parameters().data(), shadow_params_.data(), bytes) != 0) {
      shadow_params_.assign(model_.parameters().begin(), model_.parameters().end());
      upload(dm_.flat, shadow_params_.data(), s);  // pageable: staged at the call
      if (dm_.kind == DeviceModel::Kind::kFused)
        launch_pack_fused(dm_.lay, dm_.flat.data(), dm_.packed.data(), s);
      model_stale_ = false;
    }
    if (adam_handed_out_) {  // stays set: the caller may hold the reference and write later
      if (adam_.steps() != shadow_steps_ ||
          std::memcmp(adam_.first_moment().data(), shadow_m_.data(), bytes) != 0 ||
          std::memcmp(adam_.second_moment().data(), shadow_v_.data(), bytes) != 0) {
        shadow_m_.assign(adam_.first_moment().begin(), adam_.first_moment().end());
        shadow_v_.assign(adam_.second_moment().begin(), adam_.second_moment().end());
        adam_steps_ = shadow_steps_ = adam_.steps();
        upload(m_, shadow_m_.data(), s);
        upload(v_, shadow_v_.data(), s);
        adam_stale_ = false;
      }
    }
  }

  // cd_trainer.cpp init_buffer: 0.01 N(0, I) from the same stream, then init_steps chains.
  // Once per run: the chains' result comes back to the host for the finiteness check (the
  // host mirror is current afterwards).
  void init_buffer(CudaTrainerState& st) {
    cudaStream_t s = stream_.get();
    const int64_t size = buffer_size_;
    st.buffer.resize(size * dim_);
    RandomStream rng(o_.seed, StreamTag::kBuffer, kBufferInitSubsequence);
    for (float& v : st.buffer) v = 0.01f * rng.normal();
    upload(buffer_, st.buffer.data(), s);
    if (negatives_ && o_.cd.init_steps > 0) {
      // cd_trainer.cpp: in chunks of at most max_batch chains keyed by their rows, no
      // finiteness check (MCMC keeps a finite start finite or rejects).
      const int64_t chunk = std::min(max_batch_, size);
      for (int64_t first = 0; first < size; first += chunk)
        negatives_->run(buffer_.data() + first * dim_, std::min(chunk, size - first),
                        kBufferChainBase + static_cast<uint64_t>(first) * negatives_->ids_per_row(),
                        0, true, s);
      download(st.buffer.data(), buffer_.data(), size * dim_, s);
      synchronize(s);
      buffer_stale_ = false;
      st.buffer_ptr = 0;
      st.buffer_ready = true;
      return;
    }
    if (o_.cd.init_steps > 0) {
      ChainArgs a =
          chain_args(buffer_.data(), size, init_eta_.data(), init_coef_.data(), o_.cd.init_steps);
      a.first_chain = kBufferChainBase;
      launch_chains(dm_, a, chain_scratch_.data(), chain_scratch_floats_, s);
      download(st.buffer.data(), buffer_.data(), size * dim_, s);
    }
    synchronize(s);
    buffer_stale_ = false;
    for (int64_t i = 0; i < size * dim_; ++i)
      if (!std::isfinite(st.buffer[i]))
        throw NumericalError("CDTrainer: replay-buffer initialisation diverged (row " +
                             std::to_string(i / dim_) + " not finite after " +
                             std::to_string(o_.cd.init_steps) + " steps); reduce step_size");
    st.buffer_ptr = 0;
    st.buffer_ready = true;
  }

  // cd_trainer.cpp start_negatives, with the same draws in the same order.
  void start_negatives(int64_t rows, CudaTrainerState& st, float* neg) {
    cudaStream_t s = stream_.get();
    const int d = dim_;
    const int64_t size = buffer_size_;
    RandomStream rng(o_.seed, StreamTag::kBuffer, static_cast<uint64_t>(st.iteration));
    std::vector<int64_t>& start = st.start_rows;
    if (o_.cd.per_chain) {
      for (int64_t i = 0; i < rows; ++i) start[i] = i;
    } else if (size < rows) {
      if (!st.warned_small_buffer) {
        st.on_warning("replay buffer (" + std::to_string(size) +
                      " rows) is smaller than the batch (" + std::to_string(rows) +
                      "): drawing start rows uniformly at random");
        st.warned_small_buffer = true;
      }
      for (int64_t i = 0; i < rows; ++i) start[i] = static_cast<int64_t>(rng.uniform_int(size));
    } else {
      const int64_t stride = size / rows;
      for (int64_t i = 0; i < rows; ++i)
        start[i] = (i * stride + static_cast<int64_t>(rng.uniform_int(stride))) % size;
    }
    std::copy_n(start.data(), rows, pin_rows_.data());
    int64_t n_new = 0;
    if (!o_.cd.per_chain) {
      n_new = std::max<int64_t>(
          1, static_cast<int64_t>(std::floor(static_cast<double>(rows) * o_.cd.new_sample_ratio)));
      std::vector<int64_t>& refresh = st.refresh_rows;
      for (int64_t i = 0; i < rows; ++i) refresh[i] = i;
      for (int64_t j = 0; j < n_new; ++j)
        std::swap(refresh[j], refresh[j + rng.uniform_int(rows - j)]);
      for (int64_t j = 0; j < n_new; ++j) pin_rows_[rows + j] = refresh[j];
      for (int64_t i = 0; i < n_new * d; ++i) pin_nudge_[i] = rng.normal();
    }
    h2d(rows_idx_.data(), pin_rows_.data(), rows + n_new, s);
    device_gather_rows(buffer_.data(), rows_idx_.data(), rows, d, neg, s);
    if (n_new > 0) {
      h2d(nudge_.data(), pin_nudge_.data(), n_new * d, s);
      nudge_rows_kernel<<<blocks_for(n_new * d, 256), 256, 0, s>>>(
          rows_idx_.data() + rows, n_new, d, nudge_.data(), o_.cd.reinit_from_noise, neg);
      CUEBM_CUDA_CHECK_LAUNCH();
    }
  }

  Mlp& model_;
  Adam& adam_;
  TrainerOptions o_;
  bool score_matching_ = is_score_matching(o_.loss);
  int64_t max_batch_;
  int device_;
  int previous_device_;  // made current while the members below are created, then restored
  Stream stream_;
  CublasHandle handle_;
  DeviceModel dm_;
  int dim_ = 0;
  int64_t P_ = 0;
  int64_t buffer_size_ = 0;
  int64_t ld_ = 0, out_col_ = 0;
  int64_t chain_scratch_floats_ = 0;
  DeviceBuffer<float> cd_scratch_, chain_scratch_, both_, energies_, grad_, m_, v_, scale_, ones_;
  DeviceBuffer<float> eta_, coef_, init_eta_, init_coef_, buffer_, nudge_;
  DeviceBuffer<double> stats_;
  DeviceBuffer<int64_t> rows_idx_;
  std::optional<DeviceNegatives> negatives_;  // MALA, HMC and tempering negatives
  std::optional<ScoreLoss> score_;            // score-matching losses
  DeviceBuffer<float> eval_scratch_;          // score matching: the batch's energies
  int64_t eval_scratch_floats_ = 0;
  DeviceBuffer<double> loss_;  // score matching: the loss, written by ScoreLoss on the device
  PinnedBuffer<float> pin_batch_, pin_params_, pin_m_, pin_v_, pin_neg_, pin_nudge_, pin_buffer_;
  PinnedBuffer<double> pin_stats_;
  PinnedBuffer<int64_t> pin_rows_;
  // What the host last saw of the model and the optimiser (written by the host or synced to
  // it): a host copy that differs was changed by the host and is uploaded.
  std::vector<float> shadow_params_, shadow_m_, shadow_v_;
  int64_t shadow_steps_ = 0;
  int64_t adam_steps_ = 0;  // Adam's step count on the device (the host Adam may lag)
  int64_t neg_rows_ = 0;    // rows of the last step's negatives (both_ + neg_rows_ * dim_)
  // Host mirrors that lag the device (refreshed by sync_to_host).
  bool model_stale_ = false, adam_stale_ = false, neg_stale_ = false, buffer_stale_ = false;
  bool adam_handed_out_ = false;  // CDTrainer::optimizer() gave the host a mutable Adam
};

}  // namespace

CudaTrainerTraffic cuda_trainer_traffic_for_testing() {
  return {g_d2h_bytes.load(), g_h2d_bytes.load(), g_syncs.load()};
}

std::unique_ptr<CudaCDTrainerImpl> make_cuda_trainer(Mlp& model, Adam& adam,
                                                     const TrainerOptions& options,
                                                     int64_t max_batch, int device) {
  if (options.loss == TrainingLoss::cd && options.negatives.kind == NegativeSampler::tempering &&
      options.negatives.replicas > kMaxCudaReplicas)
    throw InvalidArgument("CDTrainer: the CUDA trainer's tempering negatives run at most " +
                          std::to_string(kMaxCudaReplicas) +
                          " replicas per chain (a chain's replicas are threads of one block), "
                          "got " +
                          std::to_string(options.negatives.replicas) +
                          ": use fewer or train on the CPU");
  return std::make_unique<CudaCDTrainer>(model, adam, options, max_batch, device);
}

}  // namespace cuebm::detail
