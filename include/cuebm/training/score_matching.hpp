// Score-matching losses of an MLP energy (TorchEBM 0.3.17's ScoreMatching, SlicedScoreMatching
// and DenosingScoreMatching) and their parameter gradients, on the CPU backend or a CUDA device.
//
// Notation: g(x) = dE/dx (TorchEBM's "score"; the model's score is -g for p ~ exp(-E)), H(x) the
// input Hessian, d the dimension; every loss is a mean over the batch's rows.
//  - kScoreMatching, kExact:  mean( 0.5 |g|^2 - tr H ), Hyvarinen's objective. tr H comes from
//    forward passes carrying first and second directional derivatives along the d unit
//    vectors, exact to float rounding. ReLU and LeakyReLU have a zero second derivative almost
//    everywhere, so their tr H is 0 (as in PyTorch): the loss is then 0.5 mean |g|^2 (plus the
//    regularisation), which only pushes the energy towards flat, and such a model learns
//    nothing useful from exact score matching. Use a smooth activation (SiLU, softplus, tanh,
//    GELU) with score matching.
//  - kScoreMatching, kTorchEbmApprox: TorchEBM's "approx": tr H replaced by
//    (g(x + delta) - g(x)) . delta / (eps^2 d), delta ~ N(0, eps^2 I), eps = 1e-5: that estimates
//    tr H / d (off by the factor d) and cancels catastrophically in float32. Offered only to
//    reproduce TorchEBM; not recommended.
//  - kSlicedScoreMatching: mean over rows and n_projections directions v of
//    ( -v^T H v + 0.5 (g . v)^2 ) (TorchEBM's v . d(s . v)/dx + 0.5 (s . v)^2 with s = -g);
//    v: rademacher (sign of a normal draw), sphere (a normal draw scaled to unit length) or
//    gaussian.
//  - kDenoisingScoreMatching: x~ = x + n, n ~ N(0, sigma^2 I);
//    kCorrect: mean 0.5 |-g(x~) + n / sigma^2|^2, denoising score matching for p ~ exp(-E);
//    kTorchEbm: mean 0.5 |g(x~) + n / sigma^2|^2, TorchEBM's sign, which trains E towards
//    +log q (the inverted density). Offered only to reproduce TorchEBM.
//  - regularization_strength lambda > 0 adds lambda mean |g(x)|^2 at the clean rows x (also for
//    denoising score matching, as TorchEBM).
// The parameter gradient is that of the returned loss, as PyTorch's backward would give it.
// The output layer's bias never enters any of these losses: its gradient is 0.
//
// Random draws (projections, denoising noise, the approx delta) come from Philox keyed by
// (seed, iteration, row), so they do not depend on the thread count and a GPU can reproduce
// them (kernels/training/score_matching.cuh). Results are also independent of the thread
// count: the batch is reduced in an order fixed by the number of rows alone.
//
// On a CUDA device (kernels/training/score_matching_kernels.cu) every row runs the same per-row
// math, one row per GPU thread, and the batch is reduced in the CPU's grouping without atomics:
// results are reproducible bit for bit, independent of the block size, and agree with the CPU's
// to float rounding of the gradient's group sums (device math functions may differ from the
// host's in the last bit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/cuda_stream.hpp"
#include "cuebm/runtime/device.hpp"

namespace cuebm {

namespace detail {
class CudaScoreLoss;  // host/training/cuda_score_matching.hpp

// Owns a ScoreLoss's device half; copying makes a fresh one of the same shape (so ScoreLoss
// stays copyable and two copies never share a workspace).
class CudaScoreLossHandle {
 public:
  CudaScoreLossHandle();
  explicit CudaScoreLossHandle(std::unique_ptr<CudaScoreLoss> impl);
  CudaScoreLossHandle(const CudaScoreLossHandle& other);
  CudaScoreLossHandle& operator=(const CudaScoreLossHandle& other);
  CudaScoreLossHandle(CudaScoreLossHandle&& other) noexcept;
  CudaScoreLossHandle& operator=(CudaScoreLossHandle&& other) noexcept;
  ~CudaScoreLossHandle();
  CudaScoreLoss* get() const { return impl_.get(); }

 private:
  std::unique_ptr<CudaScoreLoss> impl_;
};
}  // namespace detail

enum class ScoreLossKind { kScoreMatching, kSlicedScoreMatching, kDenoisingScoreMatching };
enum class HessianMethod { kExact, kTorchEbmApprox };
enum class ProjectionType { kRademacher, kSphere, kGaussian };
enum class DenoisingSign { kCorrect, kTorchEbm };

// TorchEBM's fixed finite-difference scale of the "approx" Hessian trace.
inline constexpr float kTorchEbmApproxEpsilon = 1e-5f;

struct ScoreLossOptions {
  ScoreLossKind kind = ScoreLossKind::kScoreMatching;
  HessianMethod hessian_method = HessianMethod::kExact;  // kScoreMatching
  int n_projections = 5;                                 // kSlicedScoreMatching
  ProjectionType projection_type = ProjectionType::kRademacher;
  float noise_scale = 0.01f;  // kDenoisingScoreMatching: sigma
  DenoisingSign denoising_sign = DenoisingSign::kCorrect;
  float regularization_strength = 0.0f;  // lambda >= 0
  uint64_t seed = 0;                     // keys the random draws
};

// Throws InvalidArgument naming the bad option: n_projections >= 1, noise_scale finite and > 0,
// regularization_strength finite and >= 0, enums in range.
void validate_score_loss_options(const ScoreLossOptions& options);

// Names for command lines and logs ("sm", "ssm", "dsm"; "exact", "torchebm_approx";
// "rademacher", "sphere", "gaussian"; "correct", "torchebm"). Parsing is case-insensitive and
// throws InvalidArgument naming the value and the valid names.
ScoreLossKind parse_score_loss_kind(std::string_view name);
std::string score_loss_kind_name(ScoreLossKind kind);
HessianMethod parse_hessian_method(std::string_view name);
std::string hessian_method_name(HessianMethod method);
ProjectionType parse_projection_type(std::string_view name);
std::string projection_type_name(ProjectionType type);
DenoisingSign parse_denoising_sign(std::string_view name);
std::string denoising_sign_name(DenoisingSign sign);

// One score-matching loss for one MLP shape, with the workspace its evaluations need, on one
// device. evaluate() allocates nothing for batches of up to reserved_rows() rows (the
// constructor's max_rows, or the largest batch seen so far). One evaluation at a time.
class ScoreLoss {
 public:
  // Validates the options and the device (check_device); sizes the workspace for batches of up
  // to max_rows rows (0: on the first evaluate).
  ScoreLoss(const MlpSpec& spec, const ScoreLossOptions& options, int64_t max_rows = 0,
            Device device = Device::cpu());

  const ScoreLossOptions& options() const { return options_; }
  const MlpSpec& spec() const { return spec_; }
  const Device& device() const { return device_; }
  std::size_t num_parameters() const { return num_params_; }
  int64_t reserved_rows() const { return reserved_rows_; }
  void reserve(int64_t max_rows);
  // Per-row scratch of the row math (floats), for sizing GPU buffers.
  std::size_t row_scratch_floats() const { return row_floats_; }

  // The loss at the n rows of x (row-major, n x dim), with the draws of `iteration`; writes
  // the gradient of the loss with respect to the parameters (params.size() floats, PyTorch
  // order) to grad when grad is not null. params: an MLP of this spec (Mlp::parameters()).
  double evaluate(std::span<const float> params, const float* x, int64_t n, uint64_t iteration,
                  float* grad = nullptr);
  double evaluate(const Mlp& model, const float* x, int64_t n, uint64_t iteration,
                  float* grad = nullptr);

  // CUDA device only (InvalidArgument on the CPU): the same loss with params
  // (num_parameters() floats), x (n x dim, row-major) and grad (num_parameters() floats, or
  // null) in this device's memory, enqueued on `stream` after what is already queued there.
  // 1 <= n <= reserved_rows() (reserve() first): nothing is allocated. Without loss_out the loss
  // is copied back and the stream synchronised once, and it is returned; with loss_out (device,
  // one double) nothing is synchronised, the loss lands there in stream order and NaN is
  // returned. The values of x and params are not checked here (non-finite inputs give a
  // non-finite loss); grad is written in stream order.
  double evaluate_on_device(const float* params, const float* x, int64_t n, uint64_t iteration,
                            float* grad, cudaStream_t stream, double* loss_out = nullptr);

 private:
  MlpSpec spec_;
  ScoreLossOptions options_;
  Device device_;
  detail::CudaScoreLossHandle cuda_;  // set on a CUDA device
  std::vector<int> widths_;
  std::size_t num_params_ = 0;
  std::size_t row_floats_ = 0;
  int64_t reserved_rows_ = 0;
  std::vector<float> scratch_;        // per chunk: row scratch
  std::vector<float> grad_partials_;  // per chunk: num_params_ floats
  std::vector<double> loss_partials_;
  std::vector<double> grad_sum_;  // the chunks' partials added in chunk order
  std::vector<float> weights_t_;  // each layer's weight transposed (the forward passes read it)
};

}  // namespace cuebm
