// The MLP energy: Linear(D, h1), act, ..., Linear(hL, 1), as TorchEBM's MLPEnergy.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cuebm/models/activation.hpp"
#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/function_ref.hpp"

namespace cuebm {

namespace detail {
struct MlpBlockLayout;
}

struct MlpSpec {
  int input_dim = 2;
  std::vector<int> hidden = {64, 64};
  Activation activation = Activation::kReLU;
};

// One parameter tensor as PyTorch names it in a module holding `network = nn.Sequential(...)`.
struct ParameterInfo {
  std::string name;            // "network.0.weight", "network.0.bias", "network.2.weight", ...
  std::vector<int64_t> shape;  // [out, in] for weights, [out] for biases
  std::size_t offset = 0;      // into the flat parameter vector
  std::size_t size = 0;
};

class Mlp : public Energy {
 public:
  // PyTorch's default nn.Linear initialisation, weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
  // drawn from a Philox stream keyed by `seed`.
  Mlp(const MlpSpec& spec, uint64_t seed);

  const MlpSpec& spec() const { return spec_; }
  // {D, h1, ..., hL, 1}
  const std::vector<int>& layer_widths() const { return widths_; }
  int num_linear_layers() const { return static_cast<int>(widths_.size()) - 1; }

  // All parameters, flat, in PyTorch's state_dict order (weight then bias, layer by layer).
  std::span<float> parameters() { return params_; }
  std::span<const float> parameters() const { return params_; }
  std::size_t num_parameters() const { return params_.size(); }
  const std::vector<ParameterInfo>& parameter_info() const { return info_; }
  std::size_t weight_offset(int layer) const { return info_[2 * layer].offset; }
  std::size_t bias_offset(int layer) const { return info_[2 * layer + 1].offset; }

  // Multiply-adds of one forward pass for one row.
  int64_t forward_macs() const;

  int dim() const override { return spec_.input_dim; }
  std::string name() const override;

  // Gradient of sum_i coeff[i] * E(x_i) with respect to the parameters, written to grad
  // (num_parameters() floats). The sum is reduced in an order fixed by n alone.
  void parameter_gradient(const float* x, int64_t n, const float* coeff, float* grad) const;

  // Sets the weights c[0 .. rows) of rows row0 .. row0 + rows - 1 from their energies e.
  using RowCoefficients = FunctionRef<void(int64_t row0, int rows, const float* e, float* c)>;
  // energy() and parameter_gradient() in one forward pass, for weights that depend on the
  // energies (CD's loss): writes E(x_i) to e and the gradient of sum_i c_i E(x_i) to grad, with
  // c_i from `coefficients`. The same bits as energy() followed by parameter_gradient().
  void energy_and_parameter_gradient(const float* x, int64_t n, RowCoefficients coefficients,
                                     float* e, float* grad) const;

  std::size_t block_workspace_floats() const override;
  void block_energy(const float* x_t, float* e, float* work) const override;
  void block_gradient(const float* x_t, float* grad_t, float* e, float* work) const override;
  // After block_energy or block_gradient of x_t in work: adds the gradient of
  // sum_r coeff_t[r] E(x_r) over the block's kRowBlock lanes to param_grad (first: writes it,
  // the bits of adding it to zeros). The block step of parameter_gradient().
  void block_parameter_gradient(const float* x_t, const float* coeff_t, float* param_grad,
                                bool first, float* work) const;

 private:
  // Both gradients' pass: per block, the forward pass (E into e when not null), the weights from
  // `coefficients`, the backward pass into the chunk's partial; chunks are fixed by n alone and
  // summed in order, so the result does not depend on the thread count.
  void gradient_pass(const float* x, int64_t n, RowCoefficients coefficients, float* e,
                     float* grad) const;

  MlpSpec spec_;
  std::vector<int> widths_;
  std::vector<ParameterInfo> info_;
  std::vector<float> params_;
  std::vector<std::size_t> weight_offsets_, bias_offsets_;
  std::shared_ptr<const detail::MlpBlockLayout> layout_;
};

// Validates a spec: input_dim >= 1, at least one hidden layer, widths >= 1.
void validate_mlp_spec(const MlpSpec& spec);

}  // namespace cuebm
