// The score-matching losses' device half (kernels/training/score_matching_kernels.cu), as
// ScoreLoss (cuebm/training/score_matching.hpp) sees it.
// Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
#pragma once

#include <cstdint>
#include <memory>

#include "cuebm/models/mlp.hpp"
#include "cuebm/training/score_matching.hpp"

namespace cuebm::detail {

// One loss for one MLP shape on one device, with its device workspace. Options and spec are
// validated by the caller (ScoreLoss). Not thread-safe: one evaluation at a time.
class CudaScoreLoss {
 public:
  virtual ~CudaScoreLoss() = default;
  // A fresh workspace of the same shape, options, device and reserved rows.
  virtual std::unique_ptr<CudaScoreLoss> clone() const = 0;
  // Sizes the workspace for batches of up to max_rows rows (allocates; synchronises).
  virtual void reserve(int64_t max_rows) = 0;
  virtual int64_t reserved_rows() const = 0;
  // Host arrays in and out (validated by the caller): uploads params and x on the loss's own
  // stream, runs, downloads the loss and grad (when not null), and synchronises once. Reserves
  // n rows first when fewer are reserved.
  virtual double evaluate_host(const float* params, const float* x, int64_t n, uint64_t iteration,
                               float* grad) = 0;
  // Device arrays (ScoreLoss::evaluate_on_device's contract), n <= reserved_rows(): enqueues
  // the evaluation on `stream` and allocates nothing. Without loss_out, copies the loss back
  // and synchronises the stream once, returning it; with loss_out, returns NaN unsynchronised.
  virtual double evaluate_device(const float* params, const float* x, int64_t n, uint64_t iteration,
                                 float* grad, cudaStream_t stream, double* loss_out) = 0;
};

std::unique_ptr<CudaScoreLoss> make_cuda_score_loss(const MlpSpec& spec,
                                                    const ScoreLossOptions& options, int device,
                                                    int64_t max_rows);

}  // namespace cuebm::detail
