#include "options.hpp"

#include <utility>

namespace cuebm::python {

ScoreLossOptions score_loss_options(const std::string& hessian_method, int n_projections,
                                    const std::string& projection_type, float noise_scale,
                                    const std::string& denoising_sign,
                                    float regularization_strength, ScoreLossKind kind,
                                    uint64_t seed) {
  return {.kind = kind,
          .hessian_method = parse_hessian_method(hessian_method),
          .n_projections = n_projections,
          .projection_type = parse_projection_type(projection_type),
          .noise_scale = noise_scale,
          .denoising_sign = parse_denoising_sign(denoising_sign),
          .regularization_strength = regularization_strength,
          .seed = seed};
}

NegativeSamplerOptions negative_sampler_options(const std::string& sampler, float hmc_step_size,
                                                int leapfrog, std::vector<float> mass, int replicas,
                                                double t_max, int swap_every) {
  return {.kind = parse_negative_sampler(sampler),
          .hmc_step_size = hmc_step_size,
          .leapfrog = leapfrog,
          .mass = std::move(mass),
          .replicas = replicas,
          .t_max = t_max,
          .swap_every = swap_every};
}

}  // namespace cuebm::python
