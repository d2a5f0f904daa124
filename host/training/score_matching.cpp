#include "cuebm/training/score_matching.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>

#include "cuebm/runtime/error.hpp"
#include "host/models/parallel.hpp"
#include "host/training/cuda_score_matching.hpp"
#include "host/training/score_matching_block.hpp"
#include "kernels/training/score_matching.cuh"

namespace cuebm {
namespace {

// Batches are split into at most this many chunks of consecutive rows, fixed by n alone; each
// chunk sums its rows in order into its own partials, and the partials are added in chunk
// order, so the result does not depend on the thread count.
constexpr int64_t kMaxChunks = 64;

int64_t num_chunks(int64_t n) { return std::min(n, kMaxChunks); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <class E, std::size_t N>
E parse_name(std::string_view what, std::string_view name, const char* const (&names)[N],
             const E (&values)[N]) {
  const std::string l = lower(name);
  for (std::size_t i = 0; i < N; ++i)
    if (l == names[i]) return values[i];
  std::string valid;
  for (std::size_t i = 0; i < N; ++i) valid += (i ? ", " : "") + std::string(names[i]);
  throw InvalidArgument("unknown " + std::string(what) + " '" + std::string(name) +
                        "' (valid: " + valid + ")");
}

const char* const kLossNames[] = {"sm", "ssm", "dsm"};
const ScoreLossKind kLossValues[] = {ScoreLossKind::kScoreMatching,
                                     ScoreLossKind::kSlicedScoreMatching,
                                     ScoreLossKind::kDenoisingScoreMatching};
const char* const kHessianNames[] = {"exact", "torchebm_approx"};
const HessianMethod kHessianValues[] = {HessianMethod::kExact, HessianMethod::kTorchEbmApprox};
const char* const kProjectionNames[] = {"rademacher", "sphere", "gaussian"};
const ProjectionType kProjectionValues[] = {ProjectionType::kRademacher, ProjectionType::kSphere,
                                            ProjectionType::kGaussian};
const char* const kSignNames[] = {"correct", "torchebm"};
const DenoisingSign kSignValues[] = {DenoisingSign::kCorrect, DenoisingSign::kTorchEbm};

template <class E, std::size_t N>
std::string name_of(E value, const char* const (&names)[N], const E (&values)[N]) {
  for (std::size_t i = 0; i < N; ++i)
    if (values[i] == value) return names[i];
  return "unknown";
}

detail::SmChannelCounts channel_counts(const ScoreLossOptions& o, const MlpSpec& spec) {
  const detail::SmRowParams p = detail::sm_row_params(o, 0);
  const bool curved = detail::dispatch_activation(
      spec.activation, []<Activation A>() { return detail::activation_has_curvature<A>(); });
  return detail::sm_channel_counts(p, spec.input_dim, curved);
}

template <Activation A>
void run_rows(const detail::SmNet& net, const detail::SmLayout& layout,
              const detail::SmRowParams& p, const float* x, int64_t row0, int64_t row1,
              float* scratch, float* grad, double& loss) {
  const detail::SmBuf<detail::SmDense> s{scratch, {}}, g{grad, {}};
  const int d = layout.D;
  for (int64_t r = row0; r < row1; ++r)
    loss += detail::sm_row_loss<A>(net, layout, p, x + r * d, static_cast<uint64_t>(r), s, 1.0f, g);
}

}  // namespace

void validate_score_loss_options(const ScoreLossOptions& o) {
  const auto kind = static_cast<int>(o.kind);
  if (kind < 0 || kind > 2)
    throw InvalidArgument("score loss: unknown loss kind " + std::to_string(kind));
  const auto hm = static_cast<int>(o.hessian_method);
  if (hm < 0 || hm > 1)
    throw InvalidArgument("score loss: unknown hessian_method " + std::to_string(hm));
  const auto pt = static_cast<int>(o.projection_type);
  if (pt < 0 || pt > 2)
    throw InvalidArgument("score loss: unknown projection_type " + std::to_string(pt));
  const auto ds = static_cast<int>(o.denoising_sign);
  if (ds < 0 || ds > 1)
    throw InvalidArgument("score loss: unknown denoising_sign " + std::to_string(ds));
  if (o.n_projections < 1)
    throw InvalidArgument("score loss: n_projections must be >= 1, got " +
                          std::to_string(o.n_projections));
  if (!std::isfinite(o.noise_scale) || o.noise_scale <= 0.0f)
    throw InvalidArgument("score loss: noise_scale must be finite and > 0, got " +
                          std::to_string(o.noise_scale));
  if (!std::isfinite(o.regularization_strength) || o.regularization_strength < 0.0f)
    throw InvalidArgument("score loss: regularization_strength must be finite and >= 0, got " +
                          std::to_string(o.regularization_strength));
}

ScoreLossKind parse_score_loss_kind(std::string_view name) {
  return parse_name("score loss", name, kLossNames, kLossValues);
}
std::string score_loss_kind_name(ScoreLossKind kind) {
  return name_of(kind, kLossNames, kLossValues);
}
HessianMethod parse_hessian_method(std::string_view name) {
  return parse_name("hessian method", name, kHessianNames, kHessianValues);
}
std::string hessian_method_name(HessianMethod method) {
  return name_of(method, kHessianNames, kHessianValues);
}
ProjectionType parse_projection_type(std::string_view name) {
  return parse_name("projection type", name, kProjectionNames, kProjectionValues);
}
std::string projection_type_name(ProjectionType type) {
  return name_of(type, kProjectionNames, kProjectionValues);
}
DenoisingSign parse_denoising_sign(std::string_view name) {
  return parse_name("denoising sign", name, kSignNames, kSignValues);
}
std::string denoising_sign_name(DenoisingSign sign) {
  return name_of(sign, kSignNames, kSignValues);
}

namespace detail {
CudaScoreLossHandle::CudaScoreLossHandle() = default;
CudaScoreLossHandle::CudaScoreLossHandle(std::unique_ptr<CudaScoreLoss> impl)
    : impl_(std::move(impl)) {}
CudaScoreLossHandle::CudaScoreLossHandle(const CudaScoreLossHandle& other)
    : impl_(other.impl_ ? other.impl_->clone() : nullptr) {}
CudaScoreLossHandle& CudaScoreLossHandle::operator=(const CudaScoreLossHandle& other) {
  if (this != &other) impl_ = other.impl_ ? other.impl_->clone() : nullptr;
  return *this;
}
CudaScoreLossHandle::CudaScoreLossHandle(CudaScoreLossHandle&& other) noexcept = default;
CudaScoreLossHandle& CudaScoreLossHandle::operator=(CudaScoreLossHandle&& other) noexcept = default;
CudaScoreLossHandle::~CudaScoreLossHandle() = default;
}  // namespace detail

ScoreLoss::ScoreLoss(const MlpSpec& spec, const ScoreLossOptions& options, int64_t max_rows,
                     Device device)
    : spec_(spec), options_(options), device_(device) {
  validate_mlp_spec(spec);
  validate_score_loss_options(options);
  if (max_rows < 0)
    throw InvalidArgument("ScoreLoss: max_rows must be >= 0, got " + std::to_string(max_rows));
  check_device(device);
  widths_.push_back(spec.input_dim);
  widths_.insert(widths_.end(), spec.hidden.begin(), spec.hidden.end());
  widths_.push_back(1);
  for (std::size_t l = 0; l + 1 < widths_.size(); ++l)
    num_params_ += static_cast<std::size_t>(widths_[l + 1]) * (widths_[l] + 1);
  const detail::SmChannelCounts ch = channel_counts(options, spec);
  const int n_lin = static_cast<int>(widths_.size()) - 1;
  row_floats_ = static_cast<std::size_t>(detail::SmLayout::make(widths_.data(), n_lin, ch).total);
  if (device.is_cuda()) {
#if CUEBM_HAVE_CUDA
    cuda_ = detail::CudaScoreLossHandle(
        detail::make_cuda_score_loss(spec, options, device.index, max_rows));
    reserved_rows_ = max_rows;
#endif
    return;
  }
  grad_sum_.resize(num_params_);
  weights_t_.resize(num_params_);
  if (max_rows > 0) reserve(max_rows);
}

void ScoreLoss::reserve(int64_t max_rows) {
  if (max_rows <= reserved_rows_) return;
  if (cuda_.get()) {
    cuda_.get()->reserve(max_rows);
    reserved_rows_ = max_rows;
    return;
  }
  const auto chunks = static_cast<std::size_t>(num_chunks(max_rows));
  if (scratch_.size() < chunks * row_floats_) scratch_.resize(chunks * row_floats_);
  if (grad_partials_.size() < chunks * num_params_) grad_partials_.resize(chunks * num_params_);
  if (loss_partials_.size() < chunks) loss_partials_.resize(chunks);
  reserved_rows_ = max_rows;
}

double ScoreLoss::evaluate(const Mlp& model, const float* x, int64_t n, uint64_t iteration,
                           float* grad) {
  if (model.layer_widths() != widths_ || model.spec().activation != spec_.activation)
    throw InvalidArgument("ScoreLoss::evaluate: model " + model.name() +
                          " does not match the loss's MLP shape");
  return evaluate(model.parameters(), x, n, iteration, grad);
}

double ScoreLoss::evaluate(std::span<const float> params, const float* x, int64_t n,
                           uint64_t iteration, float* grad) {
  if (n < 1)
    throw InvalidArgument("ScoreLoss::evaluate: batch must have >= 1 rows, got " +
                          std::to_string(n));
  if (!x) throw InvalidArgument("ScoreLoss::evaluate: x is null");
  if (params.size() != num_params_)
    throw InvalidArgument("ScoreLoss::evaluate: expected " + std::to_string(num_params_) +
                          " parameters, got " + std::to_string(params.size()));
  const int d = spec_.input_dim;
  for (int64_t i = 0; i < n * d; ++i)
    if (!std::isfinite(x[i]))
      throw InvalidArgument("ScoreLoss::evaluate: x has a non-finite value at row " +
                            std::to_string(i / d) + ", column " + std::to_string(i % d));
  for (std::size_t i = 0; i < params.size(); ++i)
    if (!std::isfinite(params[i]))
      throw InvalidArgument("ScoreLoss::evaluate: parameter " + std::to_string(i) +
                            " is not finite");
  reserve(n);
  if (cuda_.get()) return cuda_.get()->evaluate_host(params.data(), x, n, iteration, grad);

  const detail::SmChannelCounts ch = channel_counts(options_, spec_);
  const int n_lin = static_cast<int>(widths_.size()) - 1;
  const detail::SmLayout layout = detail::SmLayout::make(widths_.data(), n_lin, ch);
  detail::sm_transpose_weights(widths_.data(), n_lin, params.data(), weights_t_.data());
  const detail::SmNet net{params.data(), weights_t_.data(), widths_.data(), n_lin};
  const detail::SmRowParams p = detail::sm_row_params(options_, iteration);
  const int64_t chunks = num_chunks(n);
  const int64_t per_chunk = (n + chunks - 1) / chunks;
  const std::size_t np = num_params_;
  float* scratch = scratch_.data();
  float* partials = grad_partials_.data();
  double* losses = loss_partials_.data();
  if (detail::sm_block_supported(p)) {
    // Blocks of up to kRowBlock rows, each task owning whole chunks (as many as fit in one
    // block, or one), so the chunk sums are those of the row-at-a-time loop below.
    const int64_t chunks_per_task = std::max<int64_t>(1, kRowBlock / per_chunk);
    const int64_t tasks = (chunks + chunks_per_task - 1) / chunks_per_task;
    const std::size_t block_floats = detail::sm_block_floats(layout);
    const detail::SmBlockGradient block_grad{grad ? partials : nullptr, np, per_chunk};
    detail::parallel_for(tasks, [&](int64_t task) {
      const int64_t c0 = task * chunks_per_task, c1 = std::min(chunks, c0 + chunks_per_task);
      // A chunk's partial is written by its first rows' gradient pass; empty chunks are 0.
      if (grad)
        for (int64_t c = c0; c < c1; ++c)
          if (c * per_chunk >= n) std::fill(partials + c * np, partials + (c + 1) * np, 0.0f);
      for (int64_t c = c0; c < c1; ++c) losses[c] = 0.0;
      float* work = detail::thread_workspace(block_floats);
      float row_loss[kRowBlock];
      const int64_t end = std::min(n, c1 * per_chunk);
      for (int64_t r0 = std::min(n, c0 * per_chunk); r0 < end; r0 += kRowBlock) {
        const int rows = static_cast<int>(std::min<int64_t>(kRowBlock, end - r0));
        detail::sm_block_loss(spec_.activation, net, layout, p, x, r0, rows, work, row_loss,
                              block_grad);
        for (int r = 0; r < rows; ++r) losses[(r0 + r) / per_chunk] += row_loss[r];
      }
    });
  } else {
    detail::parallel_for(chunks, [&](int64_t c) {
      float* acc = grad ? partials + c * np : nullptr;
      if (acc) std::fill(acc, acc + np, 0.0f);
      double loss = 0.0;
      const int64_t r0 = std::min(n, c * per_chunk), r1 = std::min(n, (c + 1) * per_chunk);
      detail::dispatch_activation(spec_.activation, [&]<Activation A>() {
        run_rows<A>(net, layout, p, x, r0, r1, scratch + c * row_floats_, acc, loss);
      });
      losses[c] = loss;
    });
  }
  double total = 0.0;
  for (int64_t c = 0; c < chunks; ++c) total += losses[c];
  const double inv_n = 1.0 / static_cast<double>(n);
  if (grad) {
    // Each entry adds the chunks in chunk order; slices of the entries run in parallel.
    constexpr std::size_t kSlice = 2048;
    double* sum = grad_sum_.data();
    detail::parallel_for(static_cast<int64_t>((np + kSlice - 1) / kSlice), [&](int64_t s) {
      const std::size_t i0 = static_cast<std::size_t>(s) * kSlice, i1 = std::min(np, i0 + kSlice);
      std::fill(sum + i0, sum + i1, 0.0);
      for (int64_t c = 0; c < chunks; ++c)
        for (std::size_t i = i0; i < i1; ++i) sum[i] += partials[c * np + i];
      for (std::size_t i = i0; i < i1; ++i) grad[i] = static_cast<float>(sum[i] * inv_n);
    });
  }
  return total * inv_n;
}

double ScoreLoss::evaluate_on_device(const float* params, const float* x, int64_t n,
                                     uint64_t iteration, float* grad, cudaStream_t stream,
                                     double* loss_out) {
  if (!cuda_.get())
    throw InvalidArgument("ScoreLoss::evaluate_on_device: this loss runs on " +
                          device_.to_string() + ", not on a CUDA device");
  if (n < 1 || n > reserved_rows_)
    throw InvalidArgument("ScoreLoss::evaluate_on_device: batch must have 1 to reserved_rows() = " +
                          std::to_string(reserved_rows_) + " rows, got " + std::to_string(n));
  if (!params) throw InvalidArgument("ScoreLoss::evaluate_on_device: params is null");
  if (!x) throw InvalidArgument("ScoreLoss::evaluate_on_device: x is null");
  return cuda_.get()->evaluate_device(params, x, n, iteration, grad, stream, loss_out);
}

}  // namespace cuebm
