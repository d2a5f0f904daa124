// Adam and gradient-norm clipping with torch.optim / torch.nn.utils semantics.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cuebm {

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // added to the gradient, as torch.optim.Adam
};

class Adam {
 public:
  Adam(std::size_t n_params, const AdamOptions& options);
  // One step; grad is read-only (weight decay is applied on the fly).
  void step(std::span<float> params, std::span<const float> grad);
  int64_t steps() const { return t_; }
  const AdamOptions& options() const { return options_; }
  std::span<const float> first_moment() const { return m_; }
  std::span<const float> second_moment() const { return v_; }
  // Restores a saved state (checkpoints).
  void load_state(int64_t steps, std::span<const float> m, std::span<const float> v);

 private:
  AdamOptions options_;
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

// L2 norm of grad, computed in double.
double grad_norm(std::span<const float> grad);
// torch.nn.utils.clip_grad_norm_: if norm > max_norm, scale grad by max_norm / (norm + 1e-6).
// Returns the norm before clipping.
double clip_grad_norm(std::span<float> grad, double max_norm);

}  // namespace cuebm
