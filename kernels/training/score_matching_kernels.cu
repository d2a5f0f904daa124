// The score-matching losses on the device (cuebm/training/score_matching.hpp): one fused kernel
// per loss and activation, one row per thread, running the CPU's per-row math
// (kernels/training/score_matching.cuh: Taylor-mode forward, hand-derived reverse pass, Philox
// draws keyed by the row) with its scratch in global memory in column layout (element i of
// local row r at [i * ld + r], so a warp's accesses are contiguous). Each thread also writes its
// row's loss and, when a gradient is asked for, its row's parameter gradient as a column of the
// same layout.
//
// DETERMINISTIC REDUCTION, in the CPU's grouping (host/training/score_matching.cpp): the n rows
// form min(n, 64) groups of ceil(n / groups) consecutive rows. A group's gradient is the float
// sum of its rows' gradients in row order (sm_group_kernel, one thread per parameter, its
// running sum kept in the group's partials across row chunks, so the launch plan never changes
// the order); the batch gradient is the double sum of the groups' partials in group order,
// times 1/n, rounded to float (sm_finish_kernel). The loss: each group's double sum of its
// rows' float losses in row order, the groups added in order, times 1/n (sm_loss_kernel), as
// the CPU adds them. Only the gradient's grouping differs from the CPU's: the CPU accumulates a
// group's rows straight into one float sum, the GPU rounds each row's gradient first, so the two
// agree to float rounding of those sums (bit for bit with groups of one row, n <= 64, where the
// device math equals the host's). No atomics: the same inputs give the same bits on every run,
// block size and schedule.
//
// Rows are processed in launches of at most row_chunk rows (their scratch and gradient columns
// bound the memory), all sized by reserve(); evaluate_device allocates nothing and
// synchronises at most once.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "host/training/cuda_score_matching.hpp"
#include "kernels/models/activation.cuh"
#include "kernels/models/device_model.cuh"
#include "kernels/runtime/cuda_check.cuh"
#include "kernels/training/score_matching.cuh"

namespace cuebm::detail {
namespace {

// The CPU backend's kMaxChunks: rows are reduced in at most this many groups.
constexpr int64_t kMaxGroups = 64;
// Threads per block of the per-parameter kernels (their order of work is per thread).
constexpr int kParamBlock = 256;

struct SmKernelArgs {
  SmNet net;           // device pointers
  SmChannelCounts ch;  // the loss's channels
  SmRowParams p;
  const float* x;   // n x D, row-major
  float* row_loss;  // n floats
  float* scratch;   // row_floats columns of ld
  float* row_grad;  // num_params columns of ld; null: no gradient
  int64_t ld;
  int64_t num_params;
};

// Rows [row0, row0 + rows) of the batch: local row r uses column r of the scratch and of the
// gradient columns. No block synchronisation: a thread past the end returns.
template <ScoreLossKind K, Activation A>
__global__ void __launch_bounds__(kMaxRowBlock)
    sm_row_kernel(SmKernelArgs a, int64_t row0, int64_t rows) {
  const int64_t local = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (local >= rows) return;
  SmLayout L = SmLayout::make(a.net.widths, a.net.n_lin, a.ch);
  // What sm_channel_counts gives these losses, as constants, so the compiler drops the unused
  // second-order and dense-M code (and its local memory).
  if constexpr (K != ScoreLossKind::kSlicedScoreMatching) L.dense = false;
  if constexpr (K == ScoreLossKind::kDenoisingScoreMatching) {
    L.S = 0;
    L.Q = 0;
  }
  SmRowParams p = a.p;
  p.kind = K;  // a constant: the other losses' branches fold away
  const SmBuf<SmStrided> s{a.scratch + local, {a.ld}};
  const SmBuf<SmStrided> g{a.row_grad ? a.row_grad + local : nullptr, {a.ld}};
  if (g.p)
    for (int64_t i = 0; i < a.num_params; ++i) g[i] = 0.0f;
  const int64_t row = row0 + local;
  a.row_loss[row] =
      sm_row_loss<A>(a.net, L, p, a.x + row * L.D, static_cast<uint64_t>(row), s, 1.0f, g);
}

// wt (each layer's weight transposed, score_matching.cuh's SmNet::wt) from params.
__global__ void sm_transpose_kernel(const int* widths, int n_lin, const float* params, float* wt) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  int64_t off = 0;
  for (int l = 0; l < n_lin; ++l) {
    const int n_in = widths[l], n_out = widths[l + 1];
    const int64_t size = static_cast<int64_t>(n_out) * n_in;
    for (int64_t e = first; e < size; e += stride) {
      const int64_t j = e / n_in, k = e % n_in;
      wt[off + k * n_out + j] = params[off + e];
    }
    off += static_cast<int64_t>(n_out) * (n_in + 1);
  }
}

// Adds the gradient columns of rows [row0, row0 + rows) into their groups' partials (groups of
// per_group rows; partials: group g's parameter i at g * num_params + i), in row order. A group
// that starts in this chunk starts from its first row's value.
__global__ void sm_group_kernel(const float* row_grad, int64_t ld, int64_t num_params, int64_t row0,
                                int64_t rows, int64_t per_group, float* partials) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= num_params) return;
  const float* col = row_grad + i * ld;
  int64_t local = 0;
  while (local < rows) {
    const int64_t row = row0 + local, group = row / per_group;
    const int64_t end = std::min(rows, (group + 1) * per_group - row0);
    float* part = partials + group * num_params + i;
    float acc = row == group * per_group ? col[local++] : *part;
    for (; local < end; ++local) acc += col[local];
    *part = acc;
  }
}

// grad[i] = (sum over the groups in order of partial[g][i], in double) / n, rounded to float.
__global__ void sm_finish_kernel(const float* partials, int64_t num_params, int64_t groups,
                                 double inv_n, float* grad) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= num_params) return;
  double sum = 0.0;
  for (int64_t g = 0; g < groups; ++g) sum += partials[g * num_params + i];
  grad[i] = static_cast<float>(sum * inv_n);
}

// One block of kMaxGroups threads: thread g adds group g's row losses in order (double), then
// thread 0 adds the groups in order and writes the mean.
__global__ void __launch_bounds__(kMaxGroups)
    sm_loss_kernel(const float* row_loss, int64_t n, int64_t per_group, double* out) {
  __shared__ double group_sum[kMaxGroups];
  const int g = threadIdx.x;
  const int64_t r0 = std::min(n, g * per_group), r1 = std::min(n, (g + 1) * per_group);
  double sum = 0.0;
  for (int64_t r = r0; r < r1; ++r) sum += row_loss[r];
  group_sum[g] = sum;
  __syncthreads();
  if (g != 0) return;
  double total = 0.0;
  for (int i = 0; i < kMaxGroups; ++i) total += group_sum[i];
  *out = total * (1.0 / static_cast<double>(n));
}

// Threads per block of the row kernel: the test knob, else the largest block (up to 128) whose
// grid still covers every SM, since a batch of a few hundred rows is few warps. Its rows are
// independent: the choice changes no number.
int row_threads(int64_t rows) {
  const int knob = block_size_knob();
  if (knob > 0) return knob;
  return spread_row_block(rows, device_launch_limits(current_device()).sm_count, 128);
}

unsigned blocks_of(int64_t work, int threads) {
  return static_cast<unsigned>(std::max<int64_t>(1, (work + threads - 1) / threads));
}

template <ScoreLossKind K>
void launch_rows(Activation act, unsigned blocks, int threads, cudaStream_t stream,
                 const SmKernelArgs& a, int64_t row0, int64_t rows) {
  dispatch_activation(act, [&]<Activation A>() {
    sm_row_kernel<K, A><<<blocks, threads, 0, stream>>>(a, row0, rows);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
}

class CudaScoreLossImpl final : public CudaScoreLoss {
 public:
  CudaScoreLossImpl(const MlpSpec& spec, const ScoreLossOptions& options, int device,
                    int64_t max_rows)
      : spec_(spec), options_(options), device_(device) {
    const DeviceGuard guard(device_);
    widths_.push_back(spec.input_dim);
    widths_.insert(widths_.end(), spec.hidden.begin(), spec.hidden.end());
    widths_.push_back(1);
    n_lin_ = static_cast<int>(widths_.size()) - 1;
    for (int l = 0; l < n_lin_; ++l)
      num_params_ += static_cast<int64_t>(widths_[l + 1]) * (widths_[l] + 1);
    bool curved = false;
    dispatch_activation(spec.activation,
                        [&]<Activation A>() { curved = activation_has_curvature<A>(); });
    channels_ = sm_channel_counts(sm_row_params(options, 0), spec.input_dim, curved);
    row_floats_ = SmLayout::make(widths_.data(), n_lin_, channels_).total;
    stream_ = std::make_unique<Stream>();
    CUEBM_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    // On the loss's stream, waited for here: a plain cudaMemcpy from pageable memory may land
    // after work queued on another (non-blocking) stream, such as a caller's.
    widths_d_.resize(widths_.size());
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(widths_d_.data(), widths_.data(), widths_.size() * sizeof(int),
                                     cudaMemcpyHostToDevice, stream_->get()));
    CUEBM_CUDA_CHECK(cudaStreamSynchronize(stream_->get()));
    wt_d_.resize(static_cast<std::size_t>(num_params_));
    partials_d_.resize(static_cast<std::size_t>(kMaxGroups * num_params_));
    params_d_.resize(static_cast<std::size_t>(num_params_));
    grad_d_.resize(static_cast<std::size_t>(num_params_));
    loss_d_.resize(1);
    loss_h_.resize(1);
    if (max_rows > 0) reserve(max_rows);
  }

  CudaScoreLossImpl(const CudaScoreLossImpl&) = delete;
  CudaScoreLossImpl& operator=(const CudaScoreLossImpl&) = delete;
  ~CudaScoreLossImpl() override {
    if (done_) cudaEventDestroy(done_);  // nothing to report errors to from a destructor
  }

  std::unique_ptr<CudaScoreLoss> clone() const override {
    return std::make_unique<CudaScoreLossImpl>(spec_, options_, device_, reserved_);
  }

  int64_t reserved_rows() const override { return reserved_; }

  void reserve(int64_t max_rows) override {
    if (max_rows <= reserved_) return;
    const DeviceGuard guard(device_);
    chunk_ = row_chunk(max_rows, row_floats_ + num_params_);
    ld_ = (chunk_ + 31) / 32 * 32;
    scratch_d_.resize(static_cast<std::size_t>(ld_ * row_floats_));
    row_grad_d_.resize(static_cast<std::size_t>(ld_ * num_params_));
    row_loss_d_.resize(static_cast<std::size_t>(max_rows));
    x_d_.resize(static_cast<std::size_t>(max_rows * spec_.input_dim));
    reserved_ = max_rows;
  }

  double evaluate_host(const float* params, const float* x, int64_t n, uint64_t iteration,
                       float* grad) override {
    const DeviceGuard guard(device_);
    reserve(n);
    const cudaStream_t s = stream_->get();
    after_previous_evaluation(s);
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(params_d_.data(), params, params_d_.bytes(), cudaMemcpyHostToDevice, s));
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(x_d_.data(), x,
                                     static_cast<std::size_t>(n * spec_.input_dim) * sizeof(float),
                                     cudaMemcpyHostToDevice, s));
    enqueue(params_d_.data(), x_d_.data(), n, iteration, grad ? grad_d_.data() : nullptr,
            loss_d_.data(), s);
    if (grad)
      CUEBM_CUDA_CHECK(
          cudaMemcpyAsync(grad, grad_d_.data(), grad_d_.bytes(), cudaMemcpyDeviceToHost, s));
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(loss_h_.data(), loss_d_.data(), sizeof(double), cudaMemcpyDeviceToHost, s));
    CUEBM_CUDA_CHECK(cudaStreamSynchronize(s));
    return loss_h_[0];
  }

  double evaluate_device(const float* params, const float* x, int64_t n, uint64_t iteration,
                         float* grad, cudaStream_t stream, double* loss_out) override {
    const DeviceGuard guard(device_);
    after_previous_evaluation(stream);
    enqueue(params, x, n, iteration, grad, loss_out ? loss_out : loss_d_.data(), stream);
    if (loss_out) return std::numeric_limits<double>::quiet_NaN();
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(loss_h_.data(), loss_d_.data(), sizeof(double),
                                     cudaMemcpyDeviceToHost, stream));
    CUEBM_CUDA_CHECK(cudaStreamSynchronize(stream));
    return loss_h_[0];
  }

 private:
  // The workspace is shared by every evaluation: one may still be queued on another stream (an
  // evaluate_on_device that returned without waiting), so stream s waits for its end (an event,
  // no host wait; legal during capture).
  void after_previous_evaluation(cudaStream_t s) {
    CUEBM_CUDA_CHECK(cudaStreamWaitEvent(s, done_, 0));
  }

  // The whole evaluation on stream s: transpose, the row chunks (and their group sums), then
  // the gradient and the loss. n <= reserved_.
  void enqueue(const float* params, const float* x, int64_t n, uint64_t iteration, float* grad,
               double* loss, cudaStream_t s) {
    const int64_t groups = std::min(n, kMaxGroups), per_group = (n + groups - 1) / groups;
    sm_transpose_kernel<<<blocks_of(num_params_, kParamBlock), kParamBlock, 0, s>>>(
        widths_d_.data(), n_lin_, params, wt_d_.data());
    CUEBM_CUDA_CHECK_LAUNCH();
    SmKernelArgs a{};
    a.net = {params, wt_d_.data(), widths_d_.data(), n_lin_};
    a.ch = channels_;
    a.p = sm_row_params(options_, iteration);
    a.x = x;
    a.row_loss = row_loss_d_.data();
    a.scratch = scratch_d_.data();
    a.row_grad = grad ? row_grad_d_.data() : nullptr;
    a.ld = ld_;
    a.num_params = num_params_;
    for (int64_t row0 = 0; row0 < n; row0 += chunk_) {
      const int64_t rows = std::min(chunk_, n - row0);
      const int threads = row_threads(rows);
      const unsigned blocks = blocks_of(rows, threads);
      switch (options_.kind) {
        case ScoreLossKind::kScoreMatching:
          launch_rows<ScoreLossKind::kScoreMatching>(spec_.activation, blocks, threads, s, a, row0,
                                                     rows);
          break;
        case ScoreLossKind::kSlicedScoreMatching:
          launch_rows<ScoreLossKind::kSlicedScoreMatching>(spec_.activation, blocks, threads, s, a,
                                                           row0, rows);
          break;
        case ScoreLossKind::kDenoisingScoreMatching:
          launch_rows<ScoreLossKind::kDenoisingScoreMatching>(spec_.activation, blocks, threads, s,
                                                              a, row0, rows);
          break;
      }
      if (grad) {
        sm_group_kernel<<<blocks_of(num_params_, kParamBlock), kParamBlock, 0, s>>>(
            row_grad_d_.data(), ld_, num_params_, row0, rows, per_group, partials_d_.data());
        CUEBM_CUDA_CHECK_LAUNCH();
      }
    }
    if (grad) {
      sm_finish_kernel<<<blocks_of(num_params_, kParamBlock), kParamBlock, 0, s>>>(
          partials_d_.data(), num_params_, (n + per_group - 1) / per_group,
          1.0 / static_cast<double>(n), grad);
      CUEBM_CUDA_CHECK_LAUNCH();
    }
    sm_loss_kernel<<<1, kMaxGroups, 0, s>>>(row_loss_d_.data(), n, per_group, loss);
    CUEBM_CUDA_CHECK_LAUNCH();
    CUEBM_CUDA_CHECK(cudaEventRecord(done_, s));
  }

  MlpSpec spec_;
  ScoreLossOptions options_;
  int device_;
  std::vector<int> widths_;
  int n_lin_ = 0;
  int64_t num_params_ = 0;
  SmChannelCounts channels_{};
  int64_t row_floats_ = 0;
  int64_t reserved_ = 0, chunk_ = 0, ld_ = 0;
  std::unique_ptr<Stream> stream_;
  cudaEvent_t done_ = nullptr;  // recorded after each evaluation's last kernel
  DeviceBuffer<int> widths_d_;
  DeviceBuffer<float> wt_d_, partials_d_, params_d_, grad_d_;
  DeviceBuffer<float> scratch_d_, row_grad_d_, row_loss_d_, x_d_;
  DeviceBuffer<double> loss_d_;
  PinnedBuffer<double> loss_h_;
};

}  // namespace

std::unique_ptr<CudaScoreLoss> make_cuda_score_loss(const MlpSpec& spec,
                                                    const ScoreLossOptions& options, int device,
                                                    int64_t max_rows) {
  return std::make_unique<CudaScoreLossImpl>(spec, options, device, max_rows);
}

}  // namespace cuebm::detail
