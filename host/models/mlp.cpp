#include "cuebm/models/mlp.hpp"

#include <algorithm>
#include <cmath>

#include "cuebm/runtime/error.hpp"
#include "host/models/mlp_block.hpp"
#include "host/models/parallel.hpp"
#include "host/runtime/random.hpp"

namespace cuebm {

void validate_mlp_spec(const MlpSpec& spec) {
  if (spec.input_dim < 1)
    throw InvalidArgument("MLP: input dimension must be >= 1, got " +
                          std::to_string(spec.input_dim));
  if (spec.hidden.empty()) throw InvalidArgument("MLP: at least one hidden layer is required");
  for (std::size_t i = 0; i < spec.hidden.size(); ++i)
    if (spec.hidden[i] < 1)
      throw InvalidArgument("MLP: hidden width " + std::to_string(i) + " must be >= 1, got " +
                            std::to_string(spec.hidden[i]));
}

Mlp::Mlp(const MlpSpec& spec, uint64_t seed) : spec_(spec) {
  validate_mlp_spec(spec);
  widths_.push_back(spec.input_dim);
  widths_.insert(widths_.end(), spec.hidden.begin(), spec.hidden.end());
  widths_.push_back(1);
  std::size_t offset = 0;
  for (int l = 0; l < num_linear_layers(); ++l) {
    const int in = widths_[l], out = widths_[l + 1];
    const std::string prefix = "network." + std::to_string(2 * l);
    info_.push_back({prefix + ".weight", {out, in}, offset, static_cast<std::size_t>(out) * in});
    weight_offsets_.push_back(offset);
    offset += info_.back().size;
    info_.push_back({prefix + ".bias", {out}, offset, static_cast<std::size_t>(out)});
    bias_offsets_.push_back(offset);
    offset += out;
  }
  params_.resize(offset);
  // nn.Linear: kaiming_uniform_(a = sqrt 5) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
  // weight; the bias uses the same bound.
  for (int l = 0; l < num_linear_layers(); ++l) {
    RandomStream rng(seed, StreamTag::kParams, static_cast<uint64_t>(l));
    const double bound = 1.0 / std::sqrt(static_cast<double>(widths_[l]));
    for (int t = 0; t < 2; ++t) {
      const ParameterInfo& p = info_[2 * l + t];
      for (std::size_t i = 0; i < p.size; ++i)
        params_[p.offset + i] = static_cast<float>((2.0 * rng.uniform_double() - 1.0) * bound);
    }
  }
  layout_ = std::make_shared<detail::MlpBlockLayout>(widths_);
}

int64_t Mlp::forward_macs() const {
  int64_t macs = 0;
  for (int l = 0; l < num_linear_layers(); ++l) macs += int64_t{widths_[l]} * widths_[l + 1];
  return macs;
}

std::string Mlp::name() const {
  std::string s = "mlp(" + std::to_string(widths_[0]);
  for (std::size_t i = 1; i < widths_.size(); ++i) s.append("-").append(std::to_string(widths_[i]));
  return s + ", " + activation_name(spec_.activation) + ")";
}

std::size_t Mlp::block_workspace_floats() const { return layout_->floats; }

namespace {
detail::MlpBlockArgs block_args(const std::vector<int>& widths,
                                const detail::MlpBlockLayout& layout, const float* params,
                                const std::vector<std::size_t>& w_off,
                                const std::vector<std::size_t>& b_off, Activation act) {
  return {widths, layout, params, w_off.data(), b_off.data(), act};
}
}  // namespace

void Mlp::block_energy(const float* x_t, float* e, float* work) const {
  const auto args = block_args(widths_, *layout_, params_.data(), weight_offsets_, bias_offsets_,
                               spec_.activation);
  detail::mlp_block_forward(args, x_t, e, work);
}

void Mlp::block_gradient(const float* x_t, float* grad_t, float* e, float* work) const {
  const auto args = block_args(widths_, *layout_, params_.data(), weight_offsets_, bias_offsets_,
                               spec_.activation);
  detail::mlp_block_forward(args, x_t, e, work);
  detail::mlp_block_backward(args, x_t, nullptr, grad_t, nullptr, work);
}

void Mlp::block_parameter_gradient(const float* x_t, const float* coeff_t, float* param_grad,
                                   bool first, float* work) const {
  const auto args = block_args(widths_, *layout_, params_.data(), weight_offsets_, bias_offsets_,
                               spec_.activation);
  detail::mlp_block_backward(args, x_t, coeff_t, nullptr, param_grad, work, first);
}

void Mlp::gradient_pass(const float* x, int64_t n, RowCoefficients coefficients, float* e,
                        float* grad) const {
  const int d = dim();
  const std::size_t p = num_parameters();
  const auto args = block_args(widths_, *layout_, params_.data(), weight_offsets_, bias_offsets_,
                               spec_.activation);
  // Chunks of blocks fixed by n alone, each with its own partial sum, reduced in order:
  // the result does not depend on the thread count.
  const int64_t blocks = detail::num_blocks(n);
  const int64_t chunks = detail::gradient_chunks(blocks);
  const int64_t per_chunk = (blocks + chunks - 1) / chunks;
  thread_local std::vector<float> partial;
  if (partial.size() < static_cast<std::size_t>(chunks) * p) partial.resize(chunks * p);
  float* partials = partial.data();
  detail::parallel_for(chunks, [&](int64_t c) {
    float* acc = partials + c * p;
    const int64_t b0 = c * per_chunk, b1 = std::min(blocks, (c + 1) * per_chunk);
    // A chunk's first block writes its partial (no clearing pass); a chunk past the last
    // block (n just above a multiple of 64 blocks) is zero.
    if (b0 >= b1) std::fill(acc, acc + p, 0.0f);
    float* scratch = detail::thread_workspace(layout_->floats + (d + 1) * kRowBlock);
    float* x_t = scratch + layout_->floats;
    float* c_t = x_t + d * kRowBlock;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t row0 = b * kRowBlock;
      const int rows = static_cast<int>(std::min<int64_t>(kRowBlock, n - row0));
      detail::load_block(x, row0, rows, d, x_t);
      float e_t[kRowBlock];
      detail::mlp_block_forward(args, x_t, e_t, scratch);
      if (e) std::copy_n(e_t, rows, e + row0);
      coefficients(row0, rows, e_t, c_t);
      std::fill(c_t + rows, c_t + kRowBlock, 0.0f);
      block_parameter_gradient(x_t, c_t, acc, b == b0, scratch);
    }
  });
  detail::sum_partials(partials, chunks, p, grad);
}

void Mlp::parameter_gradient(const float* x, int64_t n, const float* coeff, float* grad) const {
  if (n < 1)
    throw InvalidArgument("Mlp::parameter_gradient: batch must have >= 1 rows, got " +
                          std::to_string(n));
  if (!x || !coeff || !grad) throw InvalidArgument("Mlp::parameter_gradient: null pointer");
  gradient_pass(
      x, n,
      [coeff](int64_t row0, int rows, const float*, float* c) {
        std::copy_n(coeff + row0, rows, c);
      },
      nullptr, grad);
}

void Mlp::energy_and_parameter_gradient(const float* x, int64_t n, RowCoefficients coefficients,
                                        float* e, float* grad) const {
  if (n < 1)
    throw InvalidArgument("Mlp::energy_and_parameter_gradient: batch must have >= 1 rows, got " +
                          std::to_string(n));
  if (!x || !e || !grad) throw InvalidArgument("Mlp::energy_and_parameter_gradient: null pointer");
  gradient_pass(x, n, coefficients, e, grad);
}

}  // namespace cuebm
